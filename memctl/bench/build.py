"""--build: how long an HNSW build takes and how big it gets, on a scratch copy of the model's vectors.

Each (m, ef_construction) is built with the session's ``maintenance_work_mem`` and
``max_parallel_maintenance_workers`` (pgvector README, "Index Build Time"); progress comes from
``pg_stat_progress_create_index`` (polled on a second connection), and pgvector's notice
"hnsw graph no longer fits into maintenance_work_mem" is captured: past that point the build
slows down sharply. Recall@k of each build is measured at one ef_search against the exact top-k.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import numpy as np

from memctl.bench.copies import scratch_copy
from memctl.bench.measure import recall
from memctl.bench.sql import session_settings
from memctl.bench.truth import Truth
from memctl.bench.types import BuildPoint
from memctl.errors import ConfigError
from memctl.models import ModelSpec
from memctl.progress import Progress

GRAPH_NOTICE = "hnsw graph no longer fits into maintenance_work_mem"
RECALL_QUERIES = 200


def combos(model: ModelSpec, sweep_m: tuple[int, ...], sweep_ef: tuple[int, ...]) -> list[tuple[int, int]]:
    """(m, ef_construction) pairs to build: the sweeps' product (default: the model's own values),
    without pairs pgvector refuses (ef_construction < 2 * m). Raises ConfigError when none is left."""
    pairs = [(m, ef) for m in (sweep_m or (model.hnsw_m,)) for ef in (sweep_ef or (model.hnsw_ef_construction,))
             if 2 <= m <= 100 and 2 * m <= ef <= 1000]
    if not pairs:
        raise ConfigError("no buildable (m, ef_construction): pgvector needs 2 <= m <= 100 and "
                          "2 * m <= ef_construction <= 1000")
    return pairs


async def _poll(dsn: str, pid: int, label: str, progress: Progress, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            row = await conn.fetchrow("SELECT tuples_done, tuples_total, blocks_done, blocks_total "
                                      "FROM pg_stat_progress_create_index WHERE pid = $1", pid)
            if row is not None:
                done, total = ((row["tuples_done"], row["tuples_total"]) if row["tuples_total"]
                               else (row["blocks_done"], row["blocks_total"]))
                progress(label, int(done or 0), int(total or 0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    finally:
        await conn.close()


async def build_bench(conn: asyncpg.Connection, dsn: str, model: ModelSpec, pairs: list[tuple[int, int]],
                      maintenance_work_mem: str | None, parallel_workers: int | None, queries: np.ndarray,
                      truth: Truth | None, k: int, ef_search: int, progress: Progress) -> list[BuildPoint]:
    """Build every (m, ef_construction) in ``pairs`` on one scratch copy; seconds, bytes, recall@k.

    ``maintenance_work_mem`` (e.g. '256MB') and ``parallel_workers`` apply to the builds only.
    """
    settings = {"maintenance_work_mem": maintenance_work_mem,
                "max_parallel_maintenance_workers": None if parallel_workers is None else int(parallel_workers)}
    async with session_settings(conn, {k: v for k, v in settings.items() if v is not None}):
        return await _builds(conn, dsn, model, pairs, queries, truth, k, ef_search, progress)


async def _builds(conn: asyncpg.Connection, dsn: str, model: ModelSpec, pairs: list[tuple[int, int]],
                  queries: np.ndarray, truth: Truth | None, k: int, ef_search: int,
                  progress: Progress) -> list[BuildPoint]:
    mwm = await conn.fetchval("SHOW maintenance_work_mem")
    workers = int(await conn.fetchval("SHOW max_parallel_maintenance_workers"))
    notices: list[str] = []

    def on_notice(_conn, message) -> None:
        notices.append(message.message)

    out: list[BuildPoint] = []
    conn.add_log_listener(on_notice)
    try:
        async with scratch_copy(conn, model, "build") as copy:
            index = copy.qualified_index
            sample = queries[:RECALL_QUERIES]
            for m, ef_c in pairs:
                await conn.execute(f"DROP INDEX IF EXISTS {index}")
                notices.clear()
                stop = asyncio.Event()
                poller = asyncio.create_task(_poll(dsn, conn.get_server_pid(), f"build m={m} ef_construction={ef_c}",
                                                   progress, stop))
                t0 = time.perf_counter()
                try:
                    await conn.execute(copy.create_hnsw(model, m, ef_c))
                finally:
                    seconds = time.perf_counter() - t0
                    stop.set()
                    await poller
                size = int(await conn.fetchval("SELECT pg_relation_size($1::regclass)", index))
                build_recall = None
                if truth is not None:
                    await conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")  # restored by the caller's run
                    stmt = await conn.prepare(f"SELECT id AS memory_id, embedding {model.operator} $1 AS distance "
                                              f"FROM {copy.table} ORDER BY distance LIMIT {int(k)}")
                    hits = [recall(await stmt.fetch(v), truth.ids[i], truth.dists[i], k)[0]
                            for i, v in enumerate(sample)]
                    build_recall = round(float(np.mean(hits)), 4)
                out.append(BuildPoint(m, ef_c, mwm, workers, round(seconds, 3), size,
                                      round(size / max(copy.rows, 1), 1), ef_search, build_recall,
                                      any(GRAPH_NOTICE in n for n in notices), list(notices)))
            await conn.execute(f"DROP INDEX IF EXISTS {index}")
    finally:
        conn.remove_log_listener(on_notice)
    return out
