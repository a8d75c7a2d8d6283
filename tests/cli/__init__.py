"""CLI tests, and the list of every command path, read from the Typer app itself."""

from __future__ import annotations

import re


def command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """(path, click command) of every command under ``group`` (a click Group), groups that run on
    their own (``invoke_without_command``) included: a new command is listed without a test edit."""
    out = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if hasattr(cmd, "commands"):
            if getattr(cmd, "invoke_without_command", False):
                out.append((path, cmd))
            out += command_paths(cmd, path)
        else:
            out.append((path, cmd))
    return out


DATABASE_LINE = re.compile(r"memctl: database \S+")


def only_database_line(stderr: str) -> bool:
    """True when stderr holds just the line naming the database (masked), as on every clean run."""
    return DATABASE_LINE.fullmatch(stderr.rstrip("\n")) is not None and stderr.count("\n") == 1


def one_error_line(stderr: str) -> str:
    """The single ``memctl: error:`` line of a failed run (besides the database line, if it got that far)."""
    lines = [line for line in stderr.splitlines() if not DATABASE_LINE.fullmatch(line)]
    assert len(lines) == 1 and lines[0].startswith("memctl: error: "), stderr
    return lines[0]
