"""Throughput under concurrency: an asyncpg pool, prepared statements, pgvector's binary codec.

Per level: a pool of that many connections (each with pgvector's codec registered and the
approximate query prepared), a warm-up, then every connection loops over the queries for a fixed
window. Client and server share the machine, so QPS flattens once the cores are busy.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from memctl.bench.measure import percentiles_ms
from memctl.bench.sql import Settings, set_statements
from memctl.bench.types import ConcurrencyLevel
from memctl.progress import Progress


async def _worker(pool: asyncpg.Pool, sql: str, queries: np.ndarray, args: tuple, offset: int,
                  warm_until: float, stop_at: float, latencies: list[float], errors: list[str]) -> None:
    async with pool.acquire() as conn:
        stmt = await conn.prepare(sql)
        i = offset
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            vec = queries[i % len(queries)]
            i += 1
            try:
                await stmt.fetch(vec, *args)
            except (asyncpg.PostgresError, OSError) as exc:
                errors.append(str(exc).splitlines()[0])
                continue
            if now >= warm_until:
                latencies.append(time.perf_counter() - now)


async def concurrency_bench(dsn: str, sql: str, args: tuple, queries: np.ndarray, levels: tuple[int, ...],
                            settings: Settings, ef_search: int, window_s: float, warmup_s: float,
                            progress: Progress) -> list[ConcurrencyLevel]:
    """QPS and p50/p95/p99 (ms) per pool size in ``levels``; ``settings`` apply on every connection,
    with ``hnsw.ef_search`` = ``ef_search``. ``window_s`` / ``warmup_s`` in seconds.

    ``dsn`` holds the password: it is only handed to asyncpg, never returned or printed.
    """

    async def init(conn: asyncpg.Connection) -> None:
        await register_vector(conn)
        values = {**settings, "hnsw.ef_search": int(ef_search), "plan_cache_mode": "force_custom_plan",
                  "application_name": "memctl bench-hnsw"}
        for stmt in set_statements(values):
            await conn.execute(stmt)

    out = []
    for n, level in enumerate(levels):
        async with asyncpg.create_pool(dsn, min_size=level, max_size=level, init=init) as pool:
            latencies: list[float] = []
            errors: list[str] = []
            start = time.perf_counter()
            warm_until, stop_at = start + warmup_s, start + warmup_s + window_s
            step = max(1, len(queries) // level)
            await asyncio.gather(*(_worker(pool, sql, queries, args, w * step, warm_until, stop_at, latencies, errors)
                                   for w in range(level)))
        lat = np.array(latencies) if latencies else np.array([np.nan])
        p50, p95, p99 = percentiles_ms(lat)
        out.append(ConcurrencyLevel(level, ef_search, window_s, len(latencies), len(errors),
                                    round(len(latencies) / window_s, 1), p50, p95, p99))
        progress("concurrency", n + 1, len(levels))
    return out
