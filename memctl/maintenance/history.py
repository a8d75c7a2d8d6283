"""Each maintain task's runs, recorded in ``public.memctl_maintain_runs`` (revision 0017), for
``memctl stats`` and a monitor: when a task last ran, and whether it succeeded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl import installed_version
from memctl.maintenance.types import TaskResult

RUNS_TABLE = "public.memctl_maintain_runs"


def outcome(task: TaskResult) -> str:
    """'failed' (an error), 'stopped' (--max-runtime ended it first) or 'ok'."""
    return "failed" if task.error is not None else "stopped" if task.stopped_by_budget else "ok"


async def recorded(engine: AsyncEngine) -> bool:
    """True when the database keeps maintain's runs (revision 0017 and later)."""
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT to_regclass(:t)"), {"t": RUNS_TABLE})).scalar() is not None


async def record(engine: AsyncEngine, task: TaskResult, started_at: dt.datetime, finished_at: dt.datetime) -> None:
    """Append one run of ``task`` (the table must exist: :func:`recorded`)."""
    async with engine.begin() as conn:
        await conn.execute(text(
            f"INSERT INTO {RUNS_TABLE} (task, started_at, finished_at, outcome, rows, error, memctl_version) "
            "VALUES (:task, :started, :finished, :outcome, :rows, :error, :version)"),
            {"task": task.task, "started": started_at, "finished": finished_at, "outcome": outcome(task),
             "rows": task.rows, "error": task.error, "version": installed_version()})


@dataclass(frozen=True)
class LastRun:
    """A task's latest run (``finished_at``, ``outcome``, ``rows``, ``error``) and its latest successful
    one (``last_ok_at``; None if it never succeeded)."""

    task: str
    finished_at: dt.datetime
    outcome: str
    rows: int
    error: str | None
    last_ok_at: dt.datetime | None


async def last_runs(engine: AsyncEngine) -> list[LastRun]:
    """The latest run of every task that ever ran (none below revision 0017), by task name."""
    if not await recorded(engine):
        return []
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT DISTINCT ON (task) task, finished_at, outcome, rows, error, "
            f"(SELECT max(o.finished_at) FROM {RUNS_TABLE} o WHERE o.task = r.task AND o.outcome = 'ok') AS last_ok "
            f"FROM {RUNS_TABLE} r ORDER BY task, finished_at DESC"))).all()
    return [LastRun(r.task, r.finished_at, r.outcome, r.rows, r.error, r.last_ok) for r in rows]
