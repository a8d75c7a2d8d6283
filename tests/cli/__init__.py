"""CLI tests, and the list of every command path, read from the Typer app itself."""

from __future__ import annotations


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
