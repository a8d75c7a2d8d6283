"""A scratch database for a benchmark: dropped (WITH FORCE) and created anew, migrated to head on request."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import URL

from memctl.db.engine import make_engine
from memctl.migration import runner


async def scratch_database(base: URL, name: str, *, migrate: bool = True) -> URL:
    """Drop and recreate database ``name`` on ``base``'s server; its URL (migrated to head if ``migrate``).
    ``name`` is a constant of the calling script, never user input."""
    admin = make_engine(base)
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = base.set(database=name)
    if migrate:
        engine = make_engine(url)
        try:
            await runner.upgrade(engine, "head")
        finally:
            await engine.dispose()
    return url
