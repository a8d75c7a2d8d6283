"""The reference query of a bench-hnsw sweep: the machine's speed, measured beside each query.

Whole identical runs shifted by up to 2x on a shared 2-core machine (issue 15), with every repeat of a
run alike, so the spread inside one run cannot tell a slower machine from a slower index. After each
timed query the sweep times one exact top-k over a fixed temporary table of ``REFERENCE_ROWS`` of the
model's own vectors (same cast, same distance operator, a sequential scan: no index, no shared
buffers). Its cost does not depend on the HNSW index, the table's size or any ``hnsw.*`` setting, only
on how fast the server runs at that moment, so p50 / reference p50 is the index's own speed.

Measured here (200 queries at ef_search 40 over 3,000 rows, 12 rounds, three CPU burners started and
stopped between rounds): the query's p50 moved 0.67-1.51 ms, p50 / reference p50 only 1.26-1.45.
p95 follows the scheduler under load (p95 / reference p50 moved 1.7-8.0), so p95 alone cannot tell a
busy machine from a slower index; :mod:`memctl.bench.baseline` says how the comparison uses both.
"""

from __future__ import annotations

import asyncpg

from memctl.models import SCHEMA, ModelSpec

REFERENCE_ROWS = 1000
TABLE = "memctl_bench_reference"


async def reference_query(conn: asyncpg.Connection, model: ModelSpec,
                          k: int) -> asyncpg.prepared_stmt.PreparedStatement | None:
    """Create the session's temporary reference table (the first REFERENCE_ROWS of ``model``'s
    vectors in a fixed order: the same rows in every run over the same data) and prepare its query
    (one parameter: the query vector). None when the role may not create temporary tables or the
    server is a standby (the run then says so among the fingerprint's warnings, and a baseline
    comparison judges p95 alone)."""
    try:
        await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{TABLE}")
        await conn.execute(
            f"CREATE TEMP TABLE {TABLE} AS SELECT embedding::{model.cast_sql} AS v FROM {SCHEMA}.memory_embeddings "
            f"WHERE model_id = {int(model.id)} ORDER BY md5(memory_id::text) LIMIT {REFERENCE_ROWS}")
    except (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError):  # no TEMP; a standby
        return None
    return await conn.prepare(f"SELECT v {model.operator} $1 AS distance FROM pg_temp.{TABLE} "
                              f"ORDER BY v {model.operator} $1 LIMIT {int(k)}")


async def drop_reference(conn: asyncpg.Connection) -> None:
    """Drop the session's reference table (it would go with the session anyway)."""
    await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{TABLE}")
