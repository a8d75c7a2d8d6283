"""``memctl maintain``: one run of the tasks, in order, under the maintain lock."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db.engine import first_error_line
from memctl.db.locks import advisory_lock
from memctl.db.names import checked
from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError, NotFound
from memctl.maintenance import history, housekeeping, tasks
from memctl.maintenance.batches import UnsafeStatement
from memctl.maintenance.types import TASKS, MaintainOptions, MaintainResult, TaskResult
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA
from memctl.progress import Progress, no_progress

LOCK_NAME = "maintain"
DATA_TASKS = {"retention": tasks.retention, "expire": tasks.expire, "purge": tasks.purge,
              "consolidation": tasks.consolidation}


def check_options(opts: MaintainOptions) -> None:
    """Raise ConfigError for options no run can use."""
    unknown = [t for t in opts.tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}; tasks are {', '.join(TASKS)}")
    if opts.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if opts.max_runtime_s is not None and opts.max_runtime_s <= 0:
        raise ConfigError("--max-runtime must be positive")
    if opts.grace_s < 0 or opts.stale_s <= 0 or not 0 < opts.reindex_dead_share <= 1:
        raise ConfigError("--grace must be >= 0, --stale > 0 and --reindex-dead-share in (0, 1]")


async def _orgs(engine: AsyncEngine, slugs: tuple[str, ...] | None) -> list[tuple]:
    """(id, slug) of the organisations to maintain; NotFound for a slug that names none."""
    await ensure_migrated(engine)
    await require_all_rows(engine, "memctl maintain")
    async with engine.connect() as conn:
        rows = [tuple(r) for r in (await conn.execute(text(
            f"SELECT id, slug FROM {SCHEMA}.organizations ORDER BY slug"))).all()]
    if slugs is None:
        return rows
    known = {slug: (oid, slug) for oid, slug in rows}
    missing = [s for s in slugs if checked("organisation with slug", s) not in known]
    if missing:
        raise NotFound(f"no organisation with slug {missing[0]!r}")
    return [known[s] for s in slugs]


async def maintain(engine: AsyncEngine, opts: MaintainOptions | None = None,
                   progress: Progress = no_progress) -> MaintainResult:
    """Run ``opts.tasks`` in the order of :data:`TASKS`, one run at a time; each task's run (not a dry
    run's) is recorded for memctl stats (:mod:`memctl.maintenance.history`).

    Raises LockHeld (exit 75) at once when another run holds the maintain lock, NotFound for an
    unknown organisation or table, ConfigError for bad options, SchemaNotReady before migrate.
    A task that fails is recorded with its error (one line) and the next task still runs.
    """
    opts = opts or MaintainOptions()
    check_options(opts)
    started = time.monotonic()
    result = MaintainResult(opts.dry_run, opts.batch_size)
    async with advisory_lock(engine, LOCK_NAME, wait_s=0):
        orgs = await _orgs(engine, opts.orgs)
        named = await housekeeping.resolve_tables(engine, opts.tables) if opts.tables else []
        deadline = started + opts.max_runtime_s if opts.max_runtime_s else None
        todo = [t for t in TASKS if t in opts.tasks]
        with_data = any(t in DATA_TASKS for t in todo)
        touched: list[str] = []
        # a dry run changes nothing: the last real run is what a monitor needs (none below revision 0017)
        keep_history = not opts.dry_run and await history.recorded(engine)
        for i, name in enumerate(todo):
            t0, started_at = time.monotonic(), dt.datetime.now(dt.UTC)
            try:
                if name == "vacuum":
                    if named or with_data:
                        targets = named or list(dict.fromkeys(touched))
                        task = await housekeeping.vacuum(engine, targets, opts, deadline) if targets else \
                            TaskResult("vacuum", details=["nothing touched"])
                    else:
                        task = await housekeeping.vacuum(engine, [], opts, deadline)
                elif name == "reindex":
                    task = await housekeeping.reindex(engine, opts, deadline)
                else:
                    task = await DATA_TASKS[name](engine, orgs, opts, deadline)
            except (SQLAlchemyError, UnsafeStatement, OSError) as exc:
                task = TaskResult(name, error=str(exc) if isinstance(exc, UnsafeStatement) else first_error_line(exc))
            task.elapsed_s = round(time.monotonic() - t0, 3)
            if task.rows and name in DATA_TASKS:
                touched += task.tables
            result.tasks.append(task)
            if keep_history:
                await history.record(engine, task, started_at, dt.datetime.now(dt.UTC))
            progress("maintain", i + 1, len(todo))
    result.elapsed_s = round(time.monotonic() - started, 3)
    return result
