"""The table tasks of ``memctl maintain``: VACUUM (ANALYZE) and REINDEX of HNSW indexes.

pgvector's README ("Vacuuming") advises rebuilding an HNSW index before vacuuming a table with
many dead tuples: ``REINDEX INDEX CONCURRENTLY`` then ``VACUUM``. A failed concurrent reindex
leaves an INVALID ``<index>_ccnew`` copy, which is dropped first. Names come from the catalog
and are quoted.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.db.indexes import repair_invalid_indexes
from memctl.db.names import checked
from memctl.errors import NotFound
from memctl.maintenance.types import MaintainOptions, TaskResult
from memctl.models import SCHEMA

# live: the statistics' count, or pg_class.reltuples when that is larger. The statistics start at
# zero after a crash, pg_stat_reset() or CREATE DATABASE ... TEMPLATE, and the first dead tuples
# would otherwise read as a 100 % dead share and rebuild every HNSW index (measured: 202 s at 100k).
_HNSW = """
SELECT i.relname AS index, t.relname AS table, x.indisvalid AS valid,
       greatest(coalesce(s.n_live_tup, 0), t.reltuples, 0)::bigint AS live, coalesce(s.n_dead_tup, 0) AS dead
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_am am ON am.oid = i.relam
  LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid
 WHERE i.relnamespace = CAST(:schema AS regnamespace) AND am.amname = 'hnsw'
 ORDER BY i.relname
"""


def _q(conn: AsyncConnection, name: str) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return f"{quote(SCHEMA)}.{quote(name)}"


async def resolve_tables(engine: AsyncEngine, names: tuple[str, ...]) -> list[str]:
    """The tables of agent_memory named ``names`` (exact catalog names); NotFound for any other."""
    async with engine.connect() as conn:
        known = set((await conn.execute(text(
            "SELECT relname FROM pg_class WHERE relnamespace = CAST(:s AS regnamespace) AND relkind IN ('r', 'p')"),
            {"s": SCHEMA})).scalars())
    unknown = [n for n in names if checked(f"table in schema {SCHEMA}", n) not in known]
    if unknown:
        raise NotFound(f"no table {unknown[0]!r} in schema {SCHEMA}")
    return list(names)


async def _dead_tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = :s AND n_dead_tup > 0 ORDER BY relname"),
            {"s": SCHEMA})).scalars())


@asynccontextmanager
async def _server_warnings(conn: AsyncConnection) -> AsyncIterator[list[str]]:
    """The WARNINGs the server sends on ``conn`` while the body runs (asyncpg's log listener; they
    never become exceptions). VACUUM and REINDEX warn, not fail, when they skip a table they may not
    touch: "permission denied to vacuum ..., skipping it" (PostgreSQL docs, VACUUM)."""
    raw = (await conn.get_raw_connection()).driver_connection
    # A role, PGOPTIONS or the URL may raise client_min_messages above WARNING, and the skip would
    # go unseen: this session asks for warnings whatever the defaults say.
    await raw.execute("SET client_min_messages = warning")
    seen: list[str] = []

    def listen(_conn, message) -> None:
        if getattr(message, "severity", "") == "WARNING":
            seen.append(message.message)

    raw.add_log_listener(listen)
    try:
        yield seen
    finally:
        raw.remove_log_listener(listen)
        await raw.execute("RESET client_min_messages")


async def _vacuum(conn: AsyncConnection, table: str, warnings: list[str]) -> str | None:
    """VACUUM (ANALYZE) one table; the server's warning when it skipped it (else None)."""
    warnings.clear()
    await conn.exec_driver_sql(f"VACUUM (ANALYZE) {_q(conn, table)}")
    return warnings[0] if warnings else None


async def vacuum(engine: AsyncEngine, tables: list[str], opts: MaintainOptions, deadline: float | None) -> TaskResult:
    """VACUUM (ANALYZE) each of ``tables`` (those the run touched, --table, or any with dead tuples).

    A table PostgreSQL skipped (a WARNING such as "permission denied to vacuum") is not vacuumed:
    the task ends with an error naming it (exit 1), never "ok".
    """
    result = TaskResult("vacuum")
    targets = tables or await _dead_tables(engine)
    skipped: list[str] = []
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        async with _server_warnings(conn) as warnings:
            for name in targets:
                if deadline is not None and time.monotonic() >= deadline:
                    result.stopped_by_budget = True
                    break
                warning = None if opts.dry_run else await _vacuum(conn, name, warnings)
                if warning:
                    skipped.append(f"{name} ({warning})")
                else:
                    result.tables.append(name)
    result.details = [f"{'would vacuum' if opts.dry_run else 'vacuumed'} {', '.join(result.tables) or 'nothing'}"]
    if skipped:
        result.error = f"PostgreSQL skipped VACUUM of {'; '.join(skipped)}"
    return result


async def reindex(engine: AsyncEngine, opts: MaintainOptions, deadline: float | None) -> TaskResult:
    """Repair INVALID indexes (drop ``_ccnew`` leftovers, rebuild the rest), then REINDEX
    CONCURRENTLY each HNSW index whose table has a dead-tuple share of at least
    ``opts.reindex_dead_share``, and VACUUM that table."""
    result = TaskResult("reindex")
    result.details += await repair_invalid_indexes(engine, opts.dry_run)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for row in (await conn.execute(text(_HNSW), {"schema": SCHEMA})).all():
            if deadline is not None and time.monotonic() >= deadline:
                result.stopped_by_budget = True
                break
            verb = "would " if opts.dry_run else ""
            if not row.valid:  # repaired above
                continue
            share = row.dead / (row.live + row.dead) if row.live + row.dead else 0.0
            if share < opts.reindex_dead_share:
                continue
            if not opts.dry_run:
                await conn.exec_driver_sql(f"REINDEX INDEX CONCURRENTLY {_q(conn, row.index)}")
                async with _server_warnings(conn) as warnings:
                    if (warning := await _vacuum(conn, row.table, warnings)) is not None:
                        result.error = f"PostgreSQL skipped VACUUM of {row.table} after reindex: {warning}"
            result.indexes.append(row.index)
            result.tables.append(row.table)
            result.details.append(f"{verb}reindex {row.index} (dead share {share:.0%}) and vacuum {row.table}")
    return result
