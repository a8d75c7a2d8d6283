"""What every command shares: settings, one ``asyncio.run``, errors to exit codes, progress bars."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl import render
from memctl.config import Settings
from memctl.database import engine_for, first_error_line, scrub
from memctl.errors import MemctlError

T = TypeVar("T")

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 75


def fail(exc: BaseException, url: URL | None = None) -> typer.Exit:
    """Print one error line (password scrubbed) and return the Exit to raise."""
    if isinstance(exc, MemctlError):
        render.error(scrub(str(exc), url))
        return typer.Exit(exc.exit_code)
    render.error(scrub(f"database error: {first_error_line(exc)}", url))
    return typer.Exit(EXIT_USAGE)


def run_with_engine(database_url: str | None, fn: Callable[[AsyncEngine, URL], Awaitable[T]]) -> T:
    """Resolve settings, open an engine, run ``fn(engine, url)`` in one ``asyncio.run``, dispose.

    MemctlError and database errors become one line on stderr and their exit code.
    """
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
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=render.stderr, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
