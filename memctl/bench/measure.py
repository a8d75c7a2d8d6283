"""Time a batch of queries on one connection and score it against the exact top-k."""

from __future__ import annotations

import time

import asyncpg
import numpy as np

from memctl.bench.truth import Truth
from memctl.bench.types import DISTANCE_RTOL, Stats


def recall(got: list, truth_ids: list[str], truth_dists: np.ndarray, k: int) -> tuple[float, float, float]:
    """Recall@k of one query's rows ``got`` (records with ``memory_id`` and ``distance``, in rank
    order): by id overlap, by distance (a row counts when within float32 precision, DISTANCE_RTOL
    relative, of the k-th exact distance: ties are equivalent), and NDCG@k with binary relevance
    (a row is relevant when it is in the exact top-k; VectorDBBench's definition)."""
    expected = min(k, len(truth_ids))
    if expected == 0:
        return 1.0, 1.0, 1.0
    top = set(truth_ids[:k])
    by_id = len({str(r["memory_id"]) for r in got} & top) / expected
    kth = float(truth_dists[expected - 1])
    limit = kth + DISTANCE_RTOL * max(abs(kth), 1e-30)
    by_dist = min(sum(1 for r in got if r["distance"] is not None and r["distance"] <= limit), expected) / expected
    dcg = sum(1.0 / np.log2(i + 2) for i, r in enumerate(got[:k]) if str(r["memory_id"]) in top)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(expected))
    return by_id, by_dist, dcg / ideal


def percentiles_ms(latencies_s: np.ndarray) -> tuple[float, float, float]:
    """p50, p95, p99 of latencies in seconds, as milliseconds rounded to 3 places."""
    p50, p95, p99 = np.percentile(latencies_s * 1000.0, [50, 95, 99])
    return round(float(p50), 3), round(float(p95), 3), round(float(p99), 3)


async def measure(stmt: asyncpg.prepared_stmt.PreparedStatement, queries: np.ndarray, args: tuple,
                  truth: Truth, k: int, warmup: int = 0,
                  reference: asyncpg.prepared_stmt.PreparedStatement | None = None,
                  timings: list | None = None) -> Stats:
    """Run ``stmt`` once per query (after ``warmup`` unmeasured queries) and score every result.

    Latency is the client round trip of one ``fetch``; QPS is queries over the wall time (the
    reference queries' time excluded). With ``reference`` (a statement of one vector parameter, see
    :mod:`memctl.bench.reference`), each query is followed by one timed reference query: the
    machine's speed at the same moments. ``timings`` gets one ``(latencies, reference latencies or
    None)`` pair of (n,) float64 arrays in ms, query by query (:func:`memctl.bench.baseline.combine`
    reads them).
    """
    for vec in queries[:warmup]:
        await stmt.fetch(vec, *args)
        if reference is not None:
            await reference.fetch(vec)
    n = len(queries)
    ref = np.empty(n)
    lat = np.empty(n)
    by_id = np.empty(n)
    by_dist = np.empty(n)
    ndcg = np.empty(n)
    short = 0
    start = time.perf_counter()
    for i, vec in enumerate(queries):
        t = time.perf_counter()
        got = await stmt.fetch(vec, *args)
        lat[i] = time.perf_counter() - t
        if reference is not None:
            t = time.perf_counter()
            await reference.fetch(vec)
            ref[i] = time.perf_counter() - t
        by_id[i], by_dist[i], ndcg[i] = recall(got, truth.ids[i], truth.dists[i], k)
        short += len(got) < k
    wall = time.perf_counter() - start - (float(ref.sum()) if reference is not None else 0.0)
    p50, p95, p99 = percentiles_ms(lat)
    if timings is not None:
        timings.append((lat * 1000.0, ref * 1000.0 if reference is not None else None))
    return Stats(recall_mean=round(float(by_id.mean()), 4), recall_min=round(float(by_id.min()), 4),
                 recall_dist_mean=round(float(by_dist.mean()), 4), recall_dist_min=round(float(by_dist.min()), 4),
                 ndcg_mean=round(float(ndcg.mean()), 4),
                 p50_ms=p50, p95_ms=p95, p99_ms=p99, qps=round(n / wall, 1), short_share=round(short / n, 4))
