"""What every command shares: one ``asyncio.run``, the run's record, errors to exit codes, progress.

SQLAlchemy, the engine and the renderer are imported when a command runs, not when the CLI
loads, so ``memctl --help`` imports neither numpy nor SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from memctl import installed_version as memctl_version
from memctl.cli.options import Database, json_requested
from memctl.errors import ExitCode, MemctlError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


@dataclass
class Run:
    """One invocation at the CLI edge: the command, when it started, the database it used (masked).

    Every JSON document carries it (:meth:`record`), so a cron log says what ran where and how it ended.
    """

    command: str
    started_at: dt.datetime
    database: str | None = None

    def record(self, exit_code: int) -> dict[str, Any]:
        """The ``run`` object of a JSON document: times in ISO 8601 UTC, the exit code it ends with."""
        return {"command": self.command, "memctl_version": memctl_version(),
                "started_at": self.started_at.isoformat(), "finished_at": dt.datetime.now(dt.UTC).isoformat(),
                "database": self.database, "exit_code": int(exit_code)}


_current = Run("memctl", dt.datetime.now(dt.UTC))


def begin(command: str) -> None:
    """Start the record of a new invocation (the app's callback calls it before any command)."""
    global _current
    _current = Run(command, dt.datetime.now(dt.UTC))
    json_requested["value"] = False


def current_run() -> Run:
    """The record of the invocation in progress."""
    return _current


def confirm(question: str) -> bool:
    """Ask ``question`` on stderr and read the answer from stdin: True for y/yes. No answer (no
    stdin: cron, CI) is no, so a destructive step never runs unasked. Nothing goes to stdout."""
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer.endswith("\n"):
        sys.stderr.write("\n")  # end the prompt's line when stdin closed without one
    return answer.strip().lower() in ("y", "yes")


def _failure(exc: BaseException, url: URL | None) -> tuple[str, ExitCode]:
    """The one line (password scrubbed) and the exit code of a failure."""
    from memctl.db.engine import LOCK_NOT_AVAILABLE, first_error_line, scrub, sqlstate

    if isinstance(exc, MemctlError):
        return scrub(str(exc), url), ExitCode(exc.exit_code)
    if sqlstate(exc) == LOCK_NOT_AVAILABLE:
        return scrub(f"another session holds a lock this command needs, past lock_timeout: "
                     f"{first_error_line(exc)}; try later", url), ExitCode.LOCKED
    if isinstance(exc, OSError) and sqlstate(exc) is None and not hasattr(exc, "orig"):
        return f"cannot write or read: {exc.strerror or exc}", ExitCode.USAGE
    return scrub(f"database error: {first_error_line(exc)}", url), ExitCode.USAGE


def fail(exc: BaseException, url: URL | None = None) -> typer.Exit:
    """Print one error line (password scrubbed) on stderr and return the Exit to raise. Under
    --json a document ``{"error": ..., "run": {...}}`` goes to stdout too: a cron log that appends
    JSON records every run, the failed ones with their exit code (2, 75) included."""
    import json
    import os

    from memctl.cli import render

    message, code = _failure(exc, url)
    render.error(message)
    if json_requested["value"]:
        with contextlib.suppress(OSError):  # the failure may be that stdout cannot be written
            sys.stdout.write(json.dumps({"error": message, "run": _current.record(code)}) + os.linesep)
    return typer.Exit(code)



def finish(result: Any, clean: bool = True, *, as_json: bool = False, as_csv: bool = False) -> None:
    """Render ``result`` with the run's record and end the command: exit 0, or 1 (FINDINGS) unless
    ``clean`` (the command worked and found something)."""
    from memctl.cli import render

    code = ExitCode.CLEAN if clean else ExitCode.FINDINGS
    render.emit(result, as_json=as_json, as_csv=as_csv, run=_current.record(code))
    if code != ExitCode.CLEAN:
        raise typer.Exit(code)


def run_with_engine(db: Database, fn: Callable[[AsyncEngine, URL], Awaitable[T]]) -> T:
    """Resolve settings, open an engine, run ``fn(engine, url)`` in one ``asyncio.run``, dispose.

    Says on stderr which database it uses (masked), and when it starts the embedded server.
    MemctlError and database errors become one line on stderr and their exit code.
    """
    import asyncio

    import asyncpg
    from sqlalchemy.exc import SQLAlchemyError

    from memctl.cli import render
    from memctl.config import Settings, mask_url
    from memctl.db import embedded
    from memctl.db.engine import engine_for

    url: URL | None = None
    try:
        settings = Settings.resolve(db.database_url, db.connect_timeout)
        url = settings.database_url
        _current.database = mask_url(url) if url is not None else None
        server = embedded.status(settings.home) if url is None else None
        if server is not None and not server.running:
            render.note(f"memctl: starting the embedded server in {server.pgdata} "
                        "(no --database-url, MEMCTL_DATABASE_URL or DATABASE_URL)")

        async def main() -> T:
            nonlocal url
            async with engine_for(settings) as engine:
                url = engine.url
                _current.database = mask_url(url)
                render.note(f"memctl: database {_current.database}")
                return await fn(engine, engine.url)

        return asyncio.run(main())
    except (MemctlError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise fail(exc, url) from None  # asyncpg's own errors come from raw connections (bench, seed)


def run_plain(fn: Callable[[], T]) -> T:
    """Run a function that needs no database, mapping MemctlError to its exit code."""
    try:
        return fn()
    except MemctlError as exc:
        raise fail(exc) from None


@contextmanager
def progress_bar(enabled: bool = True, rate: str | None = None) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback drawn as a rich bar on stderr (silent when stderr is not a terminal);
    with ``rate`` (a unit, e.g. 'rows'), the speed in units/s and the time remaining too."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _phase, _done, _total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from memctl.cli import render

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:,.0f} {rate}/s" if task.speed else "")

    extra = [Rate(), TimeRemainingColumn()] if rate else []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), *extra,
                  console=render.stderr, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
