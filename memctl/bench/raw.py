"""--vs-raw: memctl's query path against a bare asyncpg loop on a plain ``vector(d)`` copy.

Both run the same queries interleaved (per query, each goes first every other time) at the same
ef_search, so
drift in the machine's load affects both alike; the ratio of their p50s is the cost of memctl's
path (expression index on a partial model_id predicate, prepared statement, distance returned)
plus its harness.
"""

from __future__ import annotations

import time

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from memctl.bench.copies import scratch_copy
from memctl.bench.measure import percentiles_ms
from memctl.bench.sql import explain, summary, uses_index
from memctl.bench.types import RawComparison
from memctl.models import ModelSpec

WARMUP = 20


async def raw_comparison(conn: asyncpg.Connection, dsn: str, model: ModelSpec, approx_sql: str, args: tuple,
                         queries: np.ndarray, k: int, ef_search: int) -> RawComparison:
    """Interleave memctl's prepared query on ``conn`` with a bare ``fetch`` on a new connection to a
    scratch copy indexed with the model's m / ef_construction. Latencies in ms."""
    async with scratch_copy(conn, model, "raw") as copy:
        await conn.execute(copy.create_hnsw(model, model.hnsw_m, model.hnsw_ef_construction))
        await conn.execute(f"ANALYZE {copy.table}")
        raw_sql = f"SELECT id FROM {copy.table} ORDER BY embedding {model.operator} $1 LIMIT {int(k)}"
        bare = await asyncpg.connect(dsn)
        try:
            await register_vector(bare)
            await bare.execute(f"SET hnsw.ef_search = {int(ef_search)}")
            plan = await explain(bare, raw_sql, (queries[0],))
            await conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
            stmt = await conn.prepare(approx_sql)
            for vec in queries[:WARMUP]:
                await stmt.fetch(vec, *args)
                await bare.fetch(raw_sql, vec)
            harness = np.empty(len(queries))
            raw = np.empty(len(queries))
            for i, vec in enumerate(queries):
                for which in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate who goes first
                    t = time.perf_counter()
                    if which == 0:
                        await stmt.fetch(vec, *args)
                        harness[i] = time.perf_counter() - t
                    else:
                        await bare.fetch(raw_sql, vec)
                        raw[i] = time.perf_counter() - t
        finally:
            await bare.close()
    h50, h95, _ = percentiles_ms(harness)
    r50, r95, _ = percentiles_ms(raw)
    return RawComparison(ef_search, len(queries), h50, r50, h95, r95, round(h50 / r50, 3),
                         summary(plan), uses_index(plan, copy.index))
