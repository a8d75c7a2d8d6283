"""Who is blocking whom: the lock a backend waits for and the sessions that hold it.

Built on ``pg_locks`` (the ungranted lock: relation and mode) and ``pg_blocking_pids()`` joined
with ``pg_stat_activity`` (PostgreSQL docs, "Viewing Locks"). A :class:`BlockerWatch` polls this
for one backend while it runs, so a lock timeout can be reported with the table and the session
that caused it, after the wait itself has been cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_BLOCKERS = """
SELECT coalesce(w.relation::regclass::text, w.locktype) AS relation, w.mode AS wanted,
       a.pid, coalesce(a.usename, '') AS usename, coalesce(a.application_name, '') AS application,
       coalesce(a.state, '') AS state, left(coalesce(a.query, ''), 120) AS query,
       extract(epoch FROM now() - a.xact_start)::float AS xact_s
  FROM pg_locks w
 CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
  JOIN pg_stat_activity a ON a.pid = b.pid
 WHERE w.pid = :pid AND NOT w.granted
"""


@dataclass(frozen=True)
class Blocker:
    """A session holding a lock that backend ``waiter`` waits for.

    ``relation`` is the table (or lock type) waited on, ``wanted`` the lock mode requested,
    ``xact_s`` how long the blocker's transaction has been open (seconds; None when
    pg_stat_activity hides it from this role).
    """

    waiter: int
    relation: str
    wanted: str
    pid: int
    user: str
    application: str
    state: str
    query: str
    xact_s: float | None

    def describe(self) -> str:
        """One line: table, mode, and the blocking session."""
        app = f" {self.application!r}" if self.application else ""
        state = f", {self.state}" if self.state else ""
        age = "unknown" if self.xact_s is None else f"{self.xact_s:.1f} s"
        return (f"{self.relation} (this run wanted {self.wanted}) is held by pid {self.pid}{app} user {self.user!r}"
                f"{state}, transaction open {age}: {self.query!r}")


async def blockers_of(engine: AsyncEngine, pid: int) -> list[Blocker]:
    """The sessions blocking backend ``pid`` right now (empty when it waits for nothing)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(_BLOCKERS), {"pid": pid})).all()
    return [Blocker(pid, r.relation, r.wanted, r.pid, r.usename, r.application, r.state, r.query, r.xact_s)
            for r in rows]


class BlockerWatch:
    """Poll :func:`blockers_of` for one backend every ``interval_s`` seconds while a block runs.

    ``last`` keeps the most recent non-empty observation (the wait is gone once the lock
    timeout cancels it). Use as ``async with BlockerWatch(engine, pid) as watch: ...``. The watch
    stops between probes, never by cancelling one, so it leaves nothing in the server log.
    """

    def __init__(self, engine: AsyncEngine, pid: int, interval_s: float = 0.05) -> None:
        self.engine, self.pid, self.interval_s = engine, pid, interval_s
        self.last: list[Blocker] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a failed probe must never fail the run it watches
                found = await blockers_of(self.engine, self.pid)
                if found:
                    self.last = found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)

    async def __aenter__(self) -> BlockerWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *_exc) -> None:
        assert self._task is not None
        self._stop.set()
        await self._task
