"""What every command shares: one ``asyncio.run``, errors to exit codes, progress bars.

SQLAlchemy, the engine and the renderer are imported when a command runs, not when the CLI
loads, so ``memctl --help`` imports neither numpy nor SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from memctl.errors import ExitCode, MemctlError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def fail(exc: BaseException, url: URL | None = None) -> typer.Exit:
    """Print one error line (password scrubbed) and return the Exit to raise."""
    from memctl.cli import render
    from memctl.db.engine import first_error_line, scrub

    if isinstance(exc, MemctlError):
        render.error(scrub(str(exc), url))
        return typer.Exit(exc.exit_code)
    render.error(scrub(f"database error: {first_error_line(exc)}", url))
    return typer.Exit(ExitCode.USAGE)


def findings_exit(clean: bool) -> None:
    """End the command with exit 1 (FINDINGS) unless ``clean``: it worked and found something."""
    if not clean:
        raise typer.Exit(ExitCode.FINDINGS)


def run_with_engine(database_url: str | None, fn: Callable[[AsyncEngine, URL], Awaitable[T]]) -> T:
    """Resolve settings, open an engine, run ``fn(engine, url)`` in one ``asyncio.run``, dispose.

    MemctlError and database errors become one line on stderr and their exit code.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from memctl.config import Settings
    from memctl.db.engine import engine_for

    url: URL | None = None
    try:
        settings = Settings.resolve(database_url)
        url = settings.database_url

        async def main() -> T:
            nonlocal url
            async with engine_for(settings) as engine:
                url = engine.url
                return await fn(engine, engine.url)

        return asyncio.run(main())
    except (MemctlError, SQLAlchemyError, OSError) as exc:
        raise fail(exc, url) from None


def run_plain(fn: Callable[[], T]) -> T:
    """Run a function that needs no database, mapping MemctlError to its exit code."""
    try:
        return fn()
    except MemctlError as exc:
        raise fail(exc) from None


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback drawn as a rich bar on stderr (silent when stderr is not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _phase, _done, _total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from memctl.cli import render

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=render.stderr, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
