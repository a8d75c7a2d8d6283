"""``bench-hnsw``: recall@k against exact search, latency and QPS of a model's HNSW index.

Queries run on the schema's real query path: the partial expression index of a registered
model, ``ORDER BY embedding::vector(d) <=> $1 LIMIT k`` with ``model_id = <id>`` (schema.md
"Embeddings"). Ground truth is exact top-k computed in the database with index scans disabled.
Before anything is timed, ``EXPLAIN (FORMAT JSON)`` must show the approximate query on the
model's HNSW index and the truth query off it; otherwise the run is INVALID and not measured.
With an organisation filter, ``hnsw.iterative_scan = relaxed_order`` is set and the results
are re-sorted through a MATERIALIZED CTE with ``ORDER BY distance + 0`` (pgvector README,
"Iterative Index Scans").
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl import registry
from memctl.errors import ConfigError, DatasetError, NotFound
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.progress import Progress, no_progress

DEFAULT_EF_SEARCH = (10, 20, 40, 80, 160, 320)
WARMUP_QUERIES = 20
# Exact search: no index scan at all (so never HNSW), whatever was forced for the approximate runs.
TRUTH_SETTINGS = ("SET LOCAL enable_indexscan = off", "SET LOCAL enable_seqscan = on",
                  "SET LOCAL enable_bitmapscan = on", "SET LOCAL enable_sort = on")
# Approximate runs with force_index: every path but an ordered index scan is disabled (a B-tree
# scan on model_id needs a Sort by distance; only the HNSW scan returns rows in distance order).
FORCE_INDEX_SETTINGS = ("SET enable_seqscan = off", "SET enable_bitmapscan = off", "SET enable_sort = off")


async def _exact_mode(conn: asyncpg.Connection) -> None:
    for stmt in TRUTH_SETTINGS:
        await conn.execute(stmt)


@dataclass(frozen=True)
class SweepPoint:
    """Measurements at one ``hnsw.ef_search``. Latencies in ms (client round trip), QPS on one connection.

    ``recall_mean``/``recall_min`` are recall@k by id overlap over the queries; ``short_share`` is
    the share of queries that returned fewer than k rows.
    """

    ef_search: int
    recall_mean: float
    recall_min: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    qps: float
    short_share: float


@dataclass(frozen=True)
class PlanCheck:
    """Whether the approximate query uses the model's HNSW index and the truth query does not."""

    index: str
    approximate_uses_index: bool
    truth_avoids_index: bool
    approximate_plan: str
    truth_plan: str

    @property
    def ok(self) -> bool:
        """True when both plans are as required."""
        return self.approximate_uses_index and self.truth_avoids_index


@dataclass
class BenchResult:
    """A bench-hnsw run. ``valid`` is False (and ``points`` empty) when the plan check failed."""

    model: str
    model_id: int
    index: str
    k: int
    queries: int
    rows: int
    org: str | None
    iterative_scan: str
    truth_seconds: float
    plan: PlanCheck
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the plan check passed and the sweep was measured."""
        return self.plan.ok


def _plan_nodes(plan: dict[str, Any]):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _plan_summary(plan: dict[str, Any]) -> str:
    return " > ".join(
        n["Node Type"] + (f" on {n['Index Name']}" if "Index Name" in n else "") for n in _plan_nodes(plan))


def _uses_index(plan: dict[str, Any], index: str) -> bool:
    return any(n.get("Index Name") == index for n in _plan_nodes(plan))


def _filter(model: ModelSpec, org_id: uuid.UUID | None, org_param: int) -> str:
    """WHERE clause of the model's rows (model_id a literal, so the partial index applies), with
    ``org_id = $<org_param>`` when an organisation is given."""
    return f"model_id = {int(model.id)}" + (f" AND org_id = ${org_param}" if org_id else "")


class _Queries:
    """SQL of the approximate and exact queries for one model (model_id is a literal: partial index)."""

    def __init__(self, model: ModelSpec, k: int, org_id: uuid.UUID | None):
        expr = f"embedding::{model.cast_sql} {model.operator} $1"
        where = _filter(model, org_id, 2)
        base = (f"SELECT memory_id, {expr} AS distance FROM {SCHEMA}.memory_embeddings "
                f"WHERE {where} ORDER BY distance LIMIT {int(k)}")
        # pgvector: with iterative scans in relaxed order, re-sort the materialised result.
        self.approx = (f"WITH r AS MATERIALIZED ({base}) SELECT memory_id, distance FROM r "
                       f"ORDER BY distance + 0") if org_id else base
        self.truth = base
        self.args = (org_id,) if org_id else ()


async def _explain(conn: asyncpg.Connection, sql: str, args: tuple) -> dict[str, Any]:
    raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


async def _sample_queries(conn: asyncpg.Connection, model: ModelSpec, n: int,
                          org_id: uuid.UUID | None) -> np.ndarray:
    where = _filter(model, org_id, 2)
    rows = await conn.fetch(f"SELECT embedding FROM {SCHEMA}.memory_embeddings WHERE {where} "
                            f"ORDER BY md5(memory_id::text) LIMIT $1", n, *((org_id,) if org_id else ()))
    vecs = [r[0].to_numpy() if hasattr(r[0], "to_numpy") else r[0] for r in rows]  # pgvector Vector
    return np.array(vecs, dtype=np.float32).reshape(len(rows), model.dim)


async def bench_hnsw(engine: AsyncEngine, *, model_name: str | None = None, queries: np.ndarray | None = None,
                     num_queries: int = 200, k: int = 10, ef_search: tuple[int, ...] = DEFAULT_EF_SEARCH,
                     org: str | None = None, force_index: bool = True,
                     progress: Progress = no_progress) -> BenchResult:
    """Benchmark ``model_name``'s HNSW index (default model when None).

    ``queries`` (q, d) float32: at most ``num_queries`` are used; when None, ``num_queries``
    stored embeddings are sampled. ``org`` is an organisation slug (resolved against the data;
    :class:`NotFound` if absent). Raises :class:`DatasetError` when the queries' dimension is not
    the model's, :class:`ConfigError` for k or ef_search below 1. ``force_index`` sets
    ``enable_seqscan``, ``enable_bitmapscan`` and ``enable_sort`` off for the approximate queries
    (pgvector README, "Troubleshooting"): on small tables or at large ef_search the planner's
    HNSW cost estimate exceeds a sequential scan, and a benchmark of the index must still
    measure the index. Without it the planner decides and a run it takes off the index is INVALID.
    """
    if k < 1 or num_queries < 1 or not ef_search or min(ef_search) < 1:
        raise ConfigError("k, --num-queries and every ef_search must be at least 1")
    async with engine.connect() as sa_conn:
        model = await registry.get_model(sa_conn, model_name)
        org_id = None
        if org is not None:
            org_id = (await sa_conn.execute(text(f"SELECT id FROM {SCHEMA}.organizations WHERE slug = :s"),
                                            {"s": org})).scalar()
            if org_id is None:
                raise NotFound(f"no organisation with slug {org!r}")
        # End SQLAlchemy's implicit transaction: inside it, our transactions would be savepoints and
        # SET LOCAL (index scans off for the truth) would outlive them.
        await sa_conn.commit()
        raw = (await sa_conn.get_raw_connection()).driver_connection
        await register_vector(raw)
        try:
            for stmt in FORCE_INDEX_SETTINGS if force_index else ():
                await raw.execute(stmt)
            return await _run(raw, model, queries, num_queries, k, tuple(ef_search), org, org_id, progress)
        finally:
            await raw.execute("RESET ALL")


async def _run(conn: asyncpg.Connection, model: ModelSpec, queries: np.ndarray | None, num_queries: int, k: int,
               ef_search: tuple[int, ...], org: str | None, org_id: uuid.UUID | None,
               progress: Progress) -> BenchResult:
    index = hnsw_index_name("memory_embeddings", model.id)
    where = _filter(model, org_id, 1)
    rows = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.memory_embeddings WHERE {where}",
                               *((org_id,) if org_id else ()))
    if queries is None:
        queries = await _sample_queries(conn, model, num_queries, org_id)
    elif queries.shape[1] != model.dim:
        raise DatasetError(f"queries have dimension {queries.shape[1]}, model {model.name!r} has {model.dim}")
    queries = queries[:num_queries]
    if len(queries) == 0:
        raise DatasetError(f"no query vectors: model {model.name!r} has no stored embeddings to sample")
    q = _Queries(model, k, org_id)
    iterative = "relaxed_order" if org_id else "off"
    await conn.execute(f"SET hnsw.iterative_scan = {iterative}")
    # Plan every execution with its own vector, as EXPLAIN did: the plan check then holds for
    # each timed query (a cached generic plan could differ).
    await conn.execute("SET plan_cache_mode = force_custom_plan")

    approx_plan = await _explain(conn, q.approx, (queries[0], *q.args))
    async with conn.transaction():
        await _exact_mode(conn)
        truth_plan = await _explain(conn, q.truth, (queries[0], *q.args))
    plan = PlanCheck(index, _uses_index(approx_plan, index), not _uses_index(truth_plan, index),
                     _plan_summary(approx_plan), _plan_summary(truth_plan))
    result = BenchResult(model.name, model.id, index, k, len(queries), int(rows), org, iterative, 0.0, plan)
    if not plan.ok:
        return result

    t0 = time.perf_counter()
    truth: list[set] = []
    async with conn.transaction():
        await _exact_mode(conn)
        stmt = await conn.prepare(q.truth)
        for i, vec in enumerate(queries):
            truth.append({r[0] for r in await stmt.fetch(vec, *q.args)})
            progress("truth", i + 1, len(queries))
    result.truth_seconds = round(time.perf_counter() - t0, 3)

    stmt = await conn.prepare(q.approx)
    total = len(ef_search) * len(queries)
    for j, ef in enumerate(ef_search):
        await conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        ef_plan = await _explain(conn, q.approx, (queries[0], *q.args))
        if not _uses_index(ef_plan, index):  # the planner may change its mind with ef_search
            result.plan = PlanCheck(index, False, plan.truth_avoids_index,
                                    f"at ef_search={ef}: {_plan_summary(ef_plan)}", plan.truth_plan)
            result.points = []
            return result
        for vec in queries[:WARMUP_QUERIES]:
            await stmt.fetch(vec, *q.args)
        lat = np.empty(len(queries))
        recall = np.empty(len(queries))
        short = 0
        start = time.perf_counter()
        for i, vec in enumerate(queries):
            t = time.perf_counter()
            got = await stmt.fetch(vec, *q.args)
            lat[i] = time.perf_counter() - t
            ids = {r[0] for r in got}
            expected = truth[i]
            recall[i] = len(ids & expected) / max(1, min(k, len(expected)))
            short += len(got) < k
        wall = time.perf_counter() - start
        p50, p95, p99 = np.percentile(lat * 1000.0, [50, 95, 99])
        result.points.append(SweepPoint(
            ef_search=int(ef), recall_mean=round(float(recall.mean()), 4), recall_min=round(float(recall.min()), 4),
            p50_ms=round(float(p50), 3), p95_ms=round(float(p95), 3), p99_ms=round(float(p99), 3),
            qps=round(len(queries) / wall, 1), short_share=round(short / len(queries), 4)))
        progress("sweep", (j + 1) * len(queries), total)
    return result
