"""``bench-hnsw``: the orchestration of one run (see :func:`bench_hnsw`), phase by phase.

Each phase reads a :class:`Target` (what is measured) and adds to the :class:`BenchResult`;
the session settings of the approximate queries (forced index, iterative scan, custom plans) are
held by one :func:`~memctl.bench.sql.session_settings` block and put back when the run ends.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.bench.baseline import combine, compare, fingerprint_changes, slo_check
from memctl.bench.build import build_bench, combos
from memctl.bench.concurrency import concurrency_bench
from memctl.bench.filtered import filtered_bench
from memctl.bench.fingerprint import fingerprint
from memctl.bench.measure import measure, percentiles_ms
from memctl.bench.options import REFERENCE_EF, BenchOptions
from memctl.bench.raw import raw_comparison
from memctl.bench.reference import drop_reference, reference_query
from memctl.bench.sql import (
    FORCE_INDEX_SETTINGS,
    Queries,
    exact_mode,
    explain,
    session_settings,
    summary,
    uses_index,
    where,
)
from memctl.bench.truth import Truth, as_matrix, exact_top_k
from memctl.bench.types import SCHEMA_VERSION, BenchResult, PlanCheck, TargetHit, WarmCold
from memctl.data import registry
from memctl.db.engine import asyncpg_dsn
from memctl.db.names import checked
from memctl.db.privileges import require_all_rows, require_create
from memctl.errors import DatasetError, NotFound
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.models.embeddings import LIFECYCLE_REVISION
from memctl.progress import Progress, no_progress

__all__ = ["BenchOptions", "bench_hnsw"]

WARMUP_QUERIES = 20
MIN_GATE_QUERIES = 100  # below it, a --baseline run is warned that its percentiles are noisy


@dataclass(frozen=True)
class Target:
    """What one run measures: the model, its HNSW index, the organisation filter (None: all),
    the model's ``rows``, the ``queries`` (q, d) float32 and their SQL, and the session settings
    the approximate queries run under."""

    model: ModelSpec
    index: str
    org_id: uuid.UUID | None
    rows: int
    queries: np.ndarray
    sql: Queries
    settings: dict[str, Any]

    @property
    def iterative(self) -> str:
        """``hnsw.iterative_scan`` of the run: relaxed_order with an organisation filter, else off."""
        return self.settings["hnsw.iterative_scan"]


async def bench_hnsw(engine: AsyncEngine, options: BenchOptions | None = None,
                     progress: Progress = no_progress) -> BenchResult:
    """Benchmark a registered model's HNSW index: ``options.model_name``, else the model of
    ``options.org`` (its own choice, else the default), else the default model.

    Order: fingerprint, plan check (INVALID ends the run unmeasured), first pass vs steady state,
    exact top-k (cached), ef_search sweep, then the optional tenant-filtered groups, --vs-raw,
    concurrency levels and index builds, and the baseline comparison. Raises NotFound (unknown
    model or organisation), DatasetError (query dimension), ConfigError (bad options).
    """
    opts = options or BenchOptions()
    opts.check()
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    facts = await require_all_rows(engine, "bench-hnsw")
    if opts.build or opts.vs_raw:
        require_create(facts, "bench-hnsw --build / --vs-raw copy the vectors into schema memctl_bench")
    started = time.perf_counter()
    async with engine.connect() as sa_conn:
        org_id = None
        if opts.org is not None:
            org_id = (await sa_conn.execute(text(f"SELECT id FROM {SCHEMA}.organizations WHERE slug = :s"),
                                            {"s": checked("organisation with slug", opts.org)})).scalar()
            if org_id is None:
                raise NotFound(f"no organisation with slug {opts.org!r}")
        # --org without --model: the model that organisation's searches use (its own, else the default)
        model = (await registry.current_model(sa_conn, org_id) if org_id is not None and opts.model_name is None
                 else await registry.get_model(sa_conn, opts.model_name))
        # End SQLAlchemy's implicit transaction: inside it, our transactions would be savepoints and
        # SET LOCAL (index scans off for the truth) would outlive them.
        await sa_conn.commit()
        conn = (await sa_conn.get_raw_connection()).driver_connection
        await register_vector(conn)
        target = await _target(conn, model, org_id, opts)
        async with session_settings(conn, target.settings):
            result = await _run(conn, asyncpg_dsn(engine.url), target, opts, progress)
    if opts.baseline is not None and result.valid:
        result.regressions, result.latency_notes = compare(result, opts.baseline, opts.max_recall_drop,
                                                           opts.max_latency_growth)
        result.fingerprint_changes = fingerprint_changes(result, opts.baseline)
        result.baseline = opts.baseline_name
    if (opts.min_recall is not None or opts.max_p95_ms is not None) and result.valid:
        result.slo = slo_check(result, opts.min_recall, opts.max_p95_ms)
    result.elapsed_s = round(time.perf_counter() - started, 1)
    return result


async def _sample_queries(conn: asyncpg.Connection, model: ModelSpec, n: int, org_id: uuid.UUID | None) -> np.ndarray:
    rows = await conn.fetch(f"SELECT embedding FROM {SCHEMA}.memory_embeddings WHERE {where(model, org_id, 2)} "
                            f"ORDER BY md5(memory_id::text) LIMIT $1", n, *((org_id,) if org_id else ()))
    return as_matrix([r[0] for r in rows], model.dim)


async def _target(conn: asyncpg.Connection, model: ModelSpec, org_id: uuid.UUID | None,
                  opts: BenchOptions) -> Target:
    """Phase 1: the rows to search, the queries (given or sampled) and the session settings."""
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
    settings: dict[str, Any] = {
        **(FORCE_INDEX_SETTINGS if opts.force_index else {}),
        "hnsw.iterative_scan": "relaxed_order" if org_id else "off",
        "hnsw.ef_search": REFERENCE_EF,  # each phase sets its own; the session gets its value back
        # Plan every execution with its own vector, as EXPLAIN did: the plan check then holds for
        # each timed query (a cached generic plan could differ).
        "plan_cache_mode": "force_custom_plan",
    }
    return Target(model, hnsw_index_name("memory_embeddings", model.id), org_id, rows, queries,
                  Queries(model, opts.k, org_id), settings)


async def _run(conn: asyncpg.Connection, dsn: str, t: Target, opts: BenchOptions, progress: Progress) -> BenchResult:
    fp = await fingerprint(conn, t.model, t.index, t.rows, opts.ef_search, opts.k)
    result = BenchResult(SCHEMA_VERSION, fp, t.model.name, t.model.id, t.index, opts.k, len(t.queries), t.rows,
                         opts.org, t.iterative, opts.force_index, await _check_plans(conn, t))
    if not result.plan.ok:
        return result
    if opts.warm_cold_queries > 0:  # 0: skip the first-pass / steady-state measurement
        result.warm_cold = await _warm_cold(conn, t.sql, t.queries[:opts.warm_cold_queries])
    truth = await exact_top_k(conn, t.model, t.queries, opts.k, t.org_id, opts.truth, opts.cache_dir, progress)
    result.truth = truth.info
    if not await _sweep(conn, t, truth, opts, result, progress):
        return result
    await _optional_parts(conn, dsn, t, truth, opts, result, progress)
    return result


async def _check_plans(conn: asyncpg.Connection, t: Target) -> PlanCheck:
    """Phase 2: the approximate query must scan the model's HNSW index, the truth query must not."""
    args = (t.queries[0], *t.sql.args)
    approx_plan = await explain(conn, t.sql.approx, args)
    async with conn.transaction():
        await exact_mode(conn)
        truth_plan = await explain(conn, t.sql.truth, args)
    return PlanCheck(t.index, uses_index(approx_plan, t.index), not uses_index(truth_plan, t.index),
                     summary(approx_plan), summary(truth_plan))


async def _sweep(conn: asyncpg.Connection, t: Target, truth: Truth, opts: BenchOptions, result: BenchResult,
                 progress: Progress) -> bool:
    """Phase 3: recall and latency at each ef_search. False (result INVALID, no points) when the
    planner leaves the index at some ef_search."""
    stmt = await conn.prepare(t.sql.approx)
    for ef in opts.ef_search:
        await conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        ef_plan = await explain(conn, t.sql.approx, (t.queries[0], *t.sql.args))
        if not uses_index(ef_plan, t.index):  # the planner may change its mind with ef_search
            result.plan = PlanCheck(t.index, False, result.plan.truth_avoids_index,
                                    f"at ef_search={ef}: {summary(ef_plan)}", result.plan.truth_plan)
            result.points = []
            return False
    # Repeats go round the whole sweep, so each ef_search's repeats are spread over the run and their
    # spread (the noise a baseline comparison allows for) includes the machine's drift during it.
    # Each query is followed by the reference query (memctl.bench.reference): the machine's speed beside it.
    reference = await reference_query(conn, t.model, opts.k)
    if opts.baseline is not None and len(t.queries) < MIN_GATE_QUERIES:
        result.fingerprint.warnings.append(
            f"{len(t.queries)} queries: p50 and p95 of fewer than {MIN_GATE_QUERIES} are noisy for a --baseline "
            f"comparison (a review saw p50 / reference move 1.16-2.21 with 20 queries, 1.50-1.72 with 200)")
    if reference is None:
        result.fingerprint.warnings.append(
            "no reference query (the role may not create temporary tables, or the server is a standby): "
            "p50_vs_reference is not measured and a --baseline judges p95 alone")
    runs: dict[int, list] = {int(ef): [] for ef in opts.ef_search}
    timings: dict[int, list] = {int(ef): [] for ef in opts.ef_search}
    for r in range(opts.repeats):
        for j, ef in enumerate(opts.ef_search):
            await conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            runs[int(ef)].append(await measure(stmt, t.queries, t.sql.args, truth, opts.k, warmup=WARMUP_QUERIES,
                                               reference=reference, timings=timings[int(ef)]))
            progress("sweep", r * len(opts.ef_search) + j + 1, opts.repeats * len(opts.ef_search))
    if reference is not None:
        await drop_reference(conn)
    result.points = [combine(ef, measured, timings[ef]) for ef, measured in runs.items()]
    by_ef = sorted(result.points, key=lambda p: p.ef_search)
    result.targets = [TargetHit(target, next((p.ef_search for p in by_ef if p.recall_mean >= target), None))
                      for target in opts.target_recall]
    return True


async def _optional_parts(conn: asyncpg.Connection, dsn: str, t: Target, truth: Truth, opts: BenchOptions,
                          result: BenchResult, progress: Progress) -> None:
    """Phase 4: --filters, --vs-raw, --concurrency and --build, each at REFERENCE_EF."""
    if opts.filters:
        fq = t.queries[:opts.filter_queries]

        async def truth_for(org: uuid.UUID) -> Truth:
            return await exact_top_k(conn, t.model, fq, opts.k, org, opts.truth, opts.cache_dir, progress)

        result.filtered = await filtered_bench(conn, t.model, t.index, fq, opts.k, REFERENCE_EF, opts.max_scan_tuples,
                                               truth_for, progress)
    if opts.vs_raw:
        result.raw = await raw_comparison(conn, dsn, t.model, t.sql.approx, t.sql.args, t.queries, opts.k,
                                          REFERENCE_EF)
    if opts.concurrency:
        result.concurrency = await concurrency_bench(dsn, t.sql.approx, t.sql.args, t.queries, opts.concurrency,
                                                     t.settings, REFERENCE_EF, opts.window_s, opts.warmup_s, progress)
    if opts.build:
        pairs = combos(t.model, opts.sweep_m, opts.sweep_ef_construction)
        result.builds = await build_bench(conn, dsn, t.model, pairs, opts.maintenance_work_mem, opts.parallel_workers,
                                          t.queries, truth if t.org_id is None else None, opts.k, REFERENCE_EF,
                                          progress)


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
