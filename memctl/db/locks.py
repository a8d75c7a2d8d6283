"""One memctl run at a time: session-level advisory locks on a dedicated connection.

A session-level ``pg_advisory_lock`` (PostgreSQL docs, "Advisory Locks") survives the commits a
run makes (each revision, ``CREATE INDEX CONCURRENTLY``, batched deletes), which a
transaction-level lock would not; it is released when the holding session ends, so a killed run
never leaves it behind. memctl polls ``pg_try_advisory_lock`` instead of blocking in
``pg_advisory_lock`` so a waiting run never leaves a cancelled statement in the server log.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.errors import LockHeld

POLL_S = 0.25


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (first 8 bytes of its BLAKE2b digest)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


async def lock_holder(conn: AsyncConnection, key: int) -> str | None:
    """Who holds advisory lock ``key``: 'pid N (application, user)', or None when nobody does.

    A bigint key is stored in ``pg_locks`` as classid = high 32 bits, objid = low 32 bits,
    objsubid = 1 (PostgreSQL docs, pg_locks).
    """
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = (await conn.execute(text(
        "SELECT l.pid, coalesce(nullif(a.application_name, ''), '?') AS app, a.usename"
        "  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        "   AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.database = ("
        "       SELECT oid FROM pg_database WHERE datname = current_database())"),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF})).first()
    return f"pid {row.pid} ({row.app}, {row.usename})" if row else None


@asynccontextmanager
async def advisory_lock(engine: AsyncEngine, name: str, wait_s: float = 0.0) -> AsyncIterator[None]:
    """Hold the session-level advisory lock ``name`` for the body, on a connection of its own.

    Waits up to ``wait_s`` seconds (0: try once), polling every 0.25 s. Raises :class:`LockHeld`
    (exit 75) naming the holder when the lock cannot be had in time. The lock is released, and
    its connection closed, when the body ends, however it ends.
    """
    key = lock_key(name)
    deadline = time.monotonic() + max(wait_s, 0.0)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT set_config('application_name', :a, false)"), {"a": f"memctl {name} lock"})
        await conn.commit()
        while True:
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            await conn.commit()
            if got:
                break
            if time.monotonic() >= deadline:
                holder = await lock_holder(conn, key)
                await conn.commit()
                waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
                raise LockHeld(f"another memctl {name} run holds the lock ({holder or 'holder gone'}){waited}; "
                               "try again later")
            await asyncio.sleep(POLL_S)
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()
