"""``bench-hnsw``: the orchestration of one run (see :func:`bench_hnsw`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl import registry
from memctl.bench.baseline import DEFAULT_MAX_LATENCY_GROWTH, DEFAULT_MAX_RECALL_DROP, compare
from memctl.bench.build import build_bench, combos
from memctl.bench.concurrency import concurrency_bench
from memctl.bench.filtered import DEFAULT_MAX_SCAN_TUPLES, filtered_bench
from memctl.bench.fingerprint import fingerprint
from memctl.bench.measure import measure, percentiles_ms
from memctl.bench.raw import raw_comparison
from memctl.bench.sql import FORCE_INDEX_SETTINGS, Queries, exact_mode, explain, summary, uses_index, where
from memctl.bench.truth import SOURCES, as_matrix, exact_top_k
from memctl.bench.types import SCHEMA_VERSION, BenchResult, PlanCheck, SweepPoint, TargetHit, WarmCold
from memctl.database import asyncpg_dsn
from memctl.errors import ConfigError, DatasetError, NotFound
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.names import checked
from memctl.progress import Progress, no_progress

DEFAULT_EF_SEARCH = (10, 20, 40, 80, 120, 200, 400)  # issue 4 point 4
DEFAULT_TARGETS = (0.95, 0.99)
REFERENCE_EF = 40  # pgvector's default hnsw.ef_search: warm/cold, filtered, concurrency, --vs-raw, --build
WARMUP_QUERIES = 20


@dataclass
class BenchOptions:
    """What to run. Defaults are a sweep only; each optional part is switched on by its field.

    ``queries`` (q, d) float32 (None: sample ``num_queries`` stored embeddings). ``org``: an
    organisation slug (iterative scan relaxed_order). ``force_index``: enable_seqscan /
    bitmapscan / sort off for the approximate queries (pgvector README, "Troubleshooting"), else
    the planner decides and a run off the index is INVALID. ``truth``: 'database' or 'numpy'.
    ``baseline``: a loaded --output JSON to compare with.
    """

    model_name: str | None = None
    queries: np.ndarray | None = None
    num_queries: int = 500
    k: int = 10
    ef_search: tuple[int, ...] = DEFAULT_EF_SEARCH
    target_recall: tuple[float, ...] = DEFAULT_TARGETS
    org: str | None = None
    force_index: bool = True
    truth: str = "database"
    cache_dir: Path | None = None
    warm_cold_queries: int = 20
    filters: bool = False
    filter_queries: int = 100
    max_scan_tuples: tuple[int, ...] = DEFAULT_MAX_SCAN_TUPLES
    concurrency: tuple[int, ...] = ()
    window_s: float = 5.0
    warmup_s: float = 1.0
    vs_raw: bool = False
    build: bool = False
    sweep_m: tuple[int, ...] = ()
    sweep_ef_construction: tuple[int, ...] = ()
    maintenance_work_mem: str | None = None
    parallel_workers: int | None = None
    baseline: dict[str, Any] | None = None
    baseline_name: str | None = None
    max_recall_drop: float = DEFAULT_MAX_RECALL_DROP
    max_latency_growth: float = DEFAULT_MAX_LATENCY_GROWTH

    def check(self) -> None:
        """Raise ConfigError for values no run can use."""
        if self.k < 1 or self.num_queries < 1 or not self.ef_search or min(self.ef_search) < 1:
            raise ConfigError("k, --num-queries and every ef_search must be at least 1")
        if self.truth not in SOURCES:
            raise ConfigError(f"--truth must be one of {', '.join(SOURCES)}")
        if self.concurrency and min(self.concurrency) < 1:
            raise ConfigError("every --concurrency level must be at least 1")
        if any(not 0 < t <= 1 for t in self.target_recall):
            raise ConfigError("every --target-recall must be in (0, 1]")
        if self.filters and self.org is not None:
            raise ConfigError("--filters measures organisation groups of every size; it cannot be combined with --org")
        if self.window_s <= 0 or self.warmup_s < 0:
            raise ConfigError("--window must be positive and --warmup not negative")


async def _sample_queries(conn: asyncpg.Connection, model: ModelSpec, n: int, org_id: uuid.UUID | None) -> np.ndarray:
    rows = await conn.fetch(f"SELECT embedding FROM {SCHEMA}.memory_embeddings WHERE {where(model, org_id, 2)} "
                            f"ORDER BY md5(memory_id::text) LIMIT $1", n, *((org_id,) if org_id else ()))
    return as_matrix([r[0] for r in rows], model.dim)


async def bench_hnsw(engine: AsyncEngine, options: BenchOptions | None = None,
                     progress: Progress = no_progress) -> BenchResult:
    """Benchmark a registered model's HNSW index (the default model unless ``options.model_name``).

    Order: fingerprint, plan check (INVALID ends the run unmeasured), first pass vs steady state,
    exact top-k (cached), ef_search sweep, then the optional tenant-filtered groups, --vs-raw,
    concurrency levels and index builds, and the baseline comparison. Raises NotFound (unknown
    model or organisation), DatasetError (query dimension), ConfigError (bad options).
    """
    opts = options or BenchOptions()
    opts.check()
    started = time.perf_counter()
    async with engine.connect() as sa_conn:
        model = await registry.get_model(sa_conn, opts.model_name)
        org_id = None
        if opts.org is not None:
            org_id = (await sa_conn.execute(text(f"SELECT id FROM {SCHEMA}.organizations WHERE slug = :s"),
                                            {"s": checked("organisation with slug", opts.org)})).scalar()
            if org_id is None:
                raise NotFound(f"no organisation with slug {opts.org!r}")
        # End SQLAlchemy's implicit transaction: inside it, our transactions would be savepoints and
        # SET LOCAL (index scans off for the truth) would outlive them.
        await sa_conn.commit()
        conn = (await sa_conn.get_raw_connection()).driver_connection
        await register_vector(conn)
        try:
            result = await _run(conn, asyncpg_dsn(engine.url), model, org_id, opts, progress)
        finally:
            await conn.execute("RESET ALL")
    if opts.baseline is not None and result.valid:
        result.regressions = compare(result, opts.baseline, opts.max_recall_drop, opts.max_latency_growth)
        result.baseline = opts.baseline_name
    result.seconds = round(time.perf_counter() - started, 1)
    return result


async def _run(conn: asyncpg.Connection, dsn: str, model: ModelSpec, org_id: uuid.UUID | None, opts: BenchOptions,
               progress: Progress) -> BenchResult:
    index = hnsw_index_name("memory_embeddings", model.id)
    args = (org_id,) if org_id else ()
    rows = int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.memory_embeddings WHERE {where(model, org_id, 1)}",
                                   *args))
    queries = opts.queries
    if queries is None:
        queries = await _sample_queries(conn, model, opts.num_queries, org_id)
    elif queries.shape[1] != model.dim:
        raise DatasetError(f"queries have dimension {queries.shape[1]}, model {model.name!r} has {model.dim}")
    queries = np.ascontiguousarray(queries[:opts.num_queries], dtype=np.float32)
    if len(queries) == 0:
        raise DatasetError(f"no query vectors: model {model.name!r} has no stored embeddings to sample")
    fp = await fingerprint(conn, model, index, rows, opts.ef_search, opts.k)

    for stmt in FORCE_INDEX_SETTINGS if opts.force_index else ():
        await conn.execute(stmt)
    iterative = "relaxed_order" if org_id else "off"
    await conn.execute(f"SET hnsw.iterative_scan = {iterative}")
    # Plan every execution with its own vector, as EXPLAIN did: the plan check then holds for
    # each timed query (a cached generic plan could differ).
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    q = Queries(model, opts.k, org_id, relaxed=org_id is not None)

    approx_plan = await explain(conn, q.approx, (queries[0], *q.args))
    async with conn.transaction():
        await exact_mode(conn)
        truth_plan = await explain(conn, q.truth, (queries[0], *q.args))
    plan = PlanCheck(index, uses_index(approx_plan, index), not uses_index(truth_plan, index),
                     summary(approx_plan), summary(truth_plan))
    result = BenchResult(SCHEMA_VERSION, fp, model.name, model.id, index, opts.k, len(queries), rows, opts.org,
                         iterative, opts.force_index, plan)
    if not plan.ok:
        return result

    result.warm_cold = await _warm_cold(conn, q, queries[:opts.warm_cold_queries])
    truth = await exact_top_k(conn, model, queries, opts.k, org_id, opts.truth, opts.cache_dir, progress)
    result.truth = truth.info

    stmt = await conn.prepare(q.approx)
    for j, ef in enumerate(opts.ef_search):
        await conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        ef_plan = await explain(conn, q.approx, (queries[0], *q.args))
        if not uses_index(ef_plan, index):  # the planner may change its mind with ef_search
            result.plan = PlanCheck(index, False, plan.truth_avoids_index,
                                    f"at ef_search={ef}: {summary(ef_plan)}", plan.truth_plan)
            result.points = []
            return result
        stats = await measure(stmt, queries, q.args, truth, opts.k, warmup=WARMUP_QUERIES)
        result.points.append(SweepPoint(ef_search=int(ef), **vars(stats)))
        progress("sweep", j + 1, len(opts.ef_search))
    result.targets = [TargetHit(t, next((p.ef_search for p in sorted(result.points, key=lambda p: p.ef_search)
                                          if p.recall_mean >= t), None)) for t in opts.target_recall]

    if opts.filters:
        fq = queries[:opts.filter_queries]

        async def truth_for(org: uuid.UUID):
            return await exact_top_k(conn, model, fq, opts.k, org, opts.truth, opts.cache_dir, progress)

        result.filtered = await filtered_bench(conn, model, index, fq, opts.k, REFERENCE_EF, opts.max_scan_tuples,
                                               truth_for, progress)
        for s in FORCE_INDEX_SETTINGS if opts.force_index else ():
            await conn.execute(s)
        await conn.execute(f"SET hnsw.iterative_scan = {iterative}")
    if opts.vs_raw:
        result.raw = await raw_comparison(conn, dsn, model, q.approx, q.args, queries, opts.k, REFERENCE_EF)
    if opts.concurrency:
        settings = (*(FORCE_INDEX_SETTINGS if opts.force_index else ()), f"SET hnsw.iterative_scan = {iterative}")
        result.concurrency = await concurrency_bench(dsn, q.approx, q.args, queries, opts.concurrency, settings,
                                                     REFERENCE_EF, opts.window_s, opts.warmup_s, progress)
    if opts.build:
        pairs = combos(model, opts.sweep_m, opts.sweep_ef_construction)
        result.builds = await build_bench(conn, dsn, model, pairs, opts.maintenance_work_mem, opts.parallel_workers,
                                          queries, truth if org_id is None else None, opts.k, REFERENCE_EF, progress)
    return result


def _buffers(plan: dict[str, Any]) -> tuple[int, int]:
    return int(plan.get("Shared Hit Blocks", 0)), int(plan.get("Shared Read Blocks", 0))


async def _warm_cold(conn: asyncpg.Connection, q: Queries, sample: np.ndarray) -> WarmCold:
    """Two passes of EXPLAIN (ANALYZE, BUFFERS) over ``sample`` at REFERENCE_EF: the first pass
    (pages possibly outside shared_buffers) and the steady state (the same queries again).
    Times are the server's execution time per query (ms)."""
    await conn.execute(f"SET hnsw.ef_search = {REFERENCE_EF}")
    passes = []
    for _ in range(2):
        times, hits, reads = [], [], []
        for vec in sample:
            plan = await explain(conn, q.approx, (vec, *q.args), analyze=True)
            times.append(plan["Actual Total Time"] / 1000.0)
            h, r = _buffers(plan)
            hits.append(h)
            reads.append(r)
        passes.append((percentiles_ms(np.array(times)), float(np.mean(hits)), float(np.mean(reads))))
    (f50, f95, _), f_hits, f_reads = passes[0]
    (s50, s95, _), s_hits, s_reads = passes[1]
    return WarmCold(REFERENCE_EF, len(sample), f50, f95, s50, s95, round(f_hits, 1), round(f_reads, 1),
                    round(s_hits, 1), round(s_reads, 1))
