"""The README is a contract: every ``memctl ...`` it shows names a real command and real options of
that command (an option renamed in code but not in the README fails here), every command of the app
is documented, and every name its Python examples import from ``memctl`` exists (sqlite-utils'
test_docs is the model)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

import memctl
from memctl.cli import app
from tests.cli import command_paths

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
ROOT = typer.main.get_command(app)


def _snippets() -> list[str]:
    """Inline code spans and the lines of fenced code blocks."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", README, flags=re.S)
    return [*re.findall(r"`([^`]+)`", prose), *(line for block in blocks for line in block.splitlines())]


def _invocations() -> list[tuple[tuple[str, ...], list[str]]]:
    """(command path, options) of every ``memctl ...`` the README shows."""
    found = []
    for snippet in _snippets():
        for match in re.finditer(r"(?<![\w.-])memctl((?:\s+[^\s#>|&]+)*)", snippet.replace("\\|", " ")):
            tokens = [t.strip("[]()") for t in match.group(1).split()]
            path, command = [], ROOT
            for token in tokens:
                sub = getattr(command, "commands", {}).get(token)
                if sub is None:
                    break
                path.append(token)
                command = sub
            options = [re.sub(r"=.*", "", t) for t in tokens[len(path):] if re.fullmatch(r"--?[a-z][\w-]*(=.*)?", t)]
            if path or options:
                found.append((tuple(path), options))
    return found


def _options(path: tuple[str, ...]) -> set[str]:
    command = ROOT
    for name in path:
        command = command.commands[name]
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}


def test_every_command_and_option_in_the_readme_exists():
    invocations = _invocations()
    assert len(invocations) > 30  # the parser finds them: an empty list would prove nothing
    wrong = sorted({(" ".join(p), o) for p, opts in invocations for o in opts if o not in _options(p)})
    assert not wrong, f"README options the app does not have: {wrong}"


def test_every_command_of_the_app_is_in_the_readme():
    documented = {p for p, _ in _invocations()}
    paths = {p for p, _ in command_paths(ROOT) if p[0] != "upgrade"}  # upgrade is migrate's other name
    assert not paths - documented, f"commands missing from the README: {sorted(paths - documented)}"


def test_python_examples_import_what_memctl_exports():
    names = {n.strip() for imp in re.findall(r"from memctl import ([\w, ]+)", README) for n in imp.split(",")}
    assert names and not [n for n in names if not hasattr(memctl, n)]


def test_a_renamed_option_would_fail():
    # The check above is not vacuous: an option the app lacks is reported.
    assert "--no-such-option" not in _options(("maintain",)) and "--dry-run" in _options(("maintain",))
