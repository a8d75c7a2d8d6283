"""``memctl bench-hnsw``: recall, latency and throughput of a model's HNSW index.

Its many options are one dataclass, :class:`BenchArgs` (see :func:`memctl.cli.options.grouped`),
turned into the library's :class:`~memctl.bench.options.BenchOptions` by :meth:`BenchArgs.options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from memctl.bench.options import (
    DEFAULT_EF_SEARCH,
    DEFAULT_MAX_LATENCY_GROWTH,
    DEFAULT_MAX_RECALL_DROP,
    DEFAULT_MAX_SCAN_TUPLES,
    DEFAULT_TARGETS,
    BenchOptions,
)
from memctl.cli import render
from memctl.cli.common import finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import Csv, Database, Json, Model, grouped, parse_list

_DEFAULTS = BenchOptions()


def _csv(values: tuple) -> str:
    return ",".join(map(str, values))


@dataclass
class BenchArgs:
    """What to measure: the options of bench-hnsw that become :class:`BenchOptions`."""

    queries: Annotated[Path | None, typer.Option(
        "--queries", metavar="PATH.npz", help="Use the file's query_embeddings (else sample stored ones).")] = None
    num_queries: Annotated[int, typer.Option(
        "--num-queries", "-q", help="Queries per ef_search value.")] = _DEFAULTS.num_queries
    k: Annotated[int, typer.Option("-k", help="Neighbours per query (recall@k).")] = _DEFAULTS.k
    ef_search: Annotated[str, typer.Option(
        "--ef-search", help="Comma-separated hnsw.ef_search values to sweep.")] = _csv(DEFAULT_EF_SEARCH)
    target_recall: Annotated[str, typer.Option(
        "--target-recall", help="Report the smallest ef_search reaching each recall@k.")] = _csv(DEFAULT_TARGETS)
    org: Annotated[str | None, typer.Option(
        "--org", metavar="SLUG", help="Restrict to one organisation (iterative scan, relaxed order).")] = None
    force_index: Annotated[bool, typer.Option(
        "--force-index/--planner-decides",
        help="Set enable_seqscan = off for approximate queries (measure the index), or let the planner "
             "choose (a plan off the index is INVALID).")] = _DEFAULTS.force_index
    truth: Annotated[str, typer.Option(
        "--truth", metavar="database|numpy", help="Exact top-k in the database (index scans off) or in numpy "
        "(small sets). Cached per data snapshot.")] = _DEFAULTS.truth
    filters: Annotated[bool, typer.Option(
        "--filters", help="Also measure organisations of about 1/10/50 % of the rows under iterative scan "
        "off / strict_order / relaxed_order (the planner decides).")] = False
    filter_queries: Annotated[int, typer.Option(
        "--filter-queries", help="Queries per filtered cell.")] = _DEFAULTS.filter_queries
    max_scan_tuples: Annotated[str, typer.Option(
        "--max-scan-tuples", metavar="N,N",
        help="hnsw.max_scan_tuples values for the iterative modes.")] = _csv(DEFAULT_MAX_SCAN_TUPLES)
    concurrency: Annotated[str | None, typer.Option(
        "--concurrency", metavar="1,2,4,8", help="Pool sizes to measure QPS and p50/p95/p99 at.")] = None
    window: Annotated[float, typer.Option(
        "--window", metavar="SECONDS", help="Measured window per level.")] = _DEFAULTS.window_s
    warmup: Annotated[float, typer.Option(
        "--warmup", metavar="SECONDS", help="Warm-up per level.")] = _DEFAULTS.warmup_s
    vs_raw: Annotated[bool, typer.Option(
        "--vs-raw", help="Also time a bare asyncpg loop on a plain vector(d) copy (ratio of p50s).")] = False
    build: Annotated[bool, typer.Option("--build", help="Benchmark HNSW builds on a scratch copy.")] = False
    sweep_m: Annotated[str | None, typer.Option("--sweep-m", metavar="8,16,32", help="m values to build.")] = None
    sweep_ef_construction: Annotated[str | None, typer.Option(
        "--sweep-ef-construction", metavar="32,64,128", help="ef_construction values to build.")] = None
    maintenance_work_mem: Annotated[str | None, typer.Option(
        "--maintenance-work-mem", metavar="SIZE", help="e.g. 256MB, for --build.")] = None
    parallel_workers: Annotated[int | None, typer.Option(
        "--parallel-workers", metavar="N", help="max_parallel_maintenance_workers for --build.")] = None
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", metavar="FILE.json", help="Compare with an earlier --output; exit 1 on a regression.")] = None
    max_recall_drop: Annotated[float, typer.Option(
        "--max-recall-drop", help="Allowed drop of recall@k at any ef_search.")] = DEFAULT_MAX_RECALL_DROP
    max_latency_growth: Annotated[float, typer.Option(
        "--max-latency-growth", help="Allowed relative growth of p95 (0.2 = 20 %).")] = DEFAULT_MAX_LATENCY_GROWTH
    repeat: Annotated[int | None, typer.Option(
        "--repeat", metavar="N", show_default=False, help="Measure each ef_search N times; latencies are the "
        "medians and their spread is the noise a --baseline comparison allows for (default: 3 with --baseline, "
        "else 1).")] = None
    min_recall: Annotated[float | None, typer.Option(
        "--min-recall", metavar="R", show_default=False, help="SLO: exit 1 unless some ef_search reaches this "
        "recall@k (with --max-p95-ms: both at once); names each ef_search's miss.")] = None
    max_p95_ms: Annotated[float | None, typer.Option(
        "--max-p95-ms", metavar="MS", show_default=False, help="SLO: exit 1 unless some ef_search keeps p95 at or "
        "under this (with --min-recall: both at once).")] = None
    model: Model = None

    def options(self) -> BenchOptions:
        """The library's options: lists parsed, query and baseline files read. Raises ConfigError
        (a bad list or option) and DatasetError (an unreadable query file)."""
        from memctl.bench.baseline import load_baseline
        from memctl.config import cache_dir
        from memctl.data.datasets import load_queries

        opts = BenchOptions(
            model_name=self.model, queries=load_queries(self.queries) if self.queries is not None else None,
            num_queries=self.num_queries, k=self.k, ef_search=parse_list("--ef-search", self.ef_search),
            target_recall=parse_list("--target-recall", self.target_recall, float), org=self.org,
            force_index=self.force_index, truth=self.truth, cache_dir=cache_dir(), filters=self.filters,
            filter_queries=self.filter_queries, max_scan_tuples=parse_list("--max-scan-tuples", self.max_scan_tuples),
            concurrency=parse_list("--concurrency", self.concurrency), window_s=self.window, warmup_s=self.warmup,
            vs_raw=self.vs_raw, build=self.build, sweep_m=parse_list("--sweep-m", self.sweep_m),
            sweep_ef_construction=parse_list("--sweep-ef-construction", self.sweep_ef_construction),
            maintenance_work_mem=self.maintenance_work_mem, parallel_workers=self.parallel_workers,
            baseline=load_baseline(self.baseline) if self.baseline is not None else None,
            baseline_name=str(self.baseline) if self.baseline is not None else None,
            max_recall_drop=self.max_recall_drop, max_latency_growth=self.max_latency_growth, repeat=self.repeat,
            min_recall=self.min_recall, max_p95_ms=self.max_p95_ms)
        opts.check()
        return opts


@grouped(BenchArgs, Database)
def bench_cmd(
    args: BenchArgs,
    db: Database,
    output: Annotated[Path | None, typer.Option(
        "--output", metavar="FILE.json", help="Write the whole run as versioned JSON (a future --baseline).")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE.png", help="Recall-QPS curve (needs the plot extra: matplotlib).")] = None,
    json_: Json = False,
    csv_: Csv = False,
) -> None:
    """Fingerprint, plan check, recall@k vs exact search, p50/p95/p99 and QPS per ef_search, and
    optionally filtered tenants, concurrency, builds, a bare-asyncpg comparison and a baseline.
    Exit 0, 1 INVALID or regressed, 2 error."""
    from memctl.bench.baseline import save_result
    from memctl.bench.plot import plot_recall_qps
    from memctl.bench.run import bench_hnsw

    opts = run_plain(args.options)
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, _url: bench_hnsw(engine, opts, progress))
    if output is not None:
        run_plain(lambda: save_result(result, output))
    if plot is not None and result.valid:
        run_plain(lambda: plot_recall_qps(result, plot))
    if result.slo is not None and result.slo.met_at is None:
        render.error("SLO missed at every ef_search: " + "; ".join(result.slo.misses))
    finish(result, result.ok, as_json=json_, as_csv=csv_)
