"""``memctl seed | bench-hnsw | check-constraints``: load data, measure search, check integrity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl import render
from memctl.bench import DEFAULT_EF_SEARCH, BenchOptions, bench_hnsw, load_baseline, plot_recall_qps
from memctl.bench.baseline import DEFAULT_MAX_LATENCY_GROWTH, DEFAULT_MAX_RECALL_DROP
from memctl.checks import check_constraints
from memctl.cli.common import EXIT_FINDINGS, progress_bar, run_plain, run_with_engine
from memctl.cli.options import Csv, DatabaseUrl, Json, Model
from memctl.config import cache_dir
from memctl.datasets import load_npz, load_queries, synthetic
from memctl.errors import ConfigError
from memctl.render import write_json
from memctl.seed import seed

DatasetOpt = Annotated[Path | None, typer.Option(
    "--dataset", metavar="PATH.npz", help="Dataset with texts, embeddings (n, d) float32 and model.")]
SyntheticOpt = Annotated[int | None, typer.Option(
    "--synthetic", metavar="N", help="Generate N texts with clustered unit vectors (default model's space).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", metavar="N", help="Use only the first N dataset rows.")]


def load_dataset(dataset: Path | None, synthetic_n: int | None, limit: int | None, default_synthetic: int = 0):
    """The dataset named by --dataset / --synthetic (ConfigError when both or neither)."""
    if dataset is not None and synthetic_n is not None:
        raise ConfigError("give --dataset or --synthetic, not both")
    if dataset is not None:
        return load_npz(dataset, limit)
    n = synthetic_n or default_synthetic
    if not n:
        raise ConfigError("give --dataset PATH.npz or --synthetic N")
    return synthetic(n)


def seed_cmd(
    dataset: DatasetOpt = None,
    synthetic_n: SyntheticOpt = None,
    limit: LimitOpt = None,
    orgs: Annotated[int, typer.Option("--orgs", help="Organisations to spread rows over.")] = 3,
    agents: Annotated[int, typer.Option("--agents", help="Agents per organisation.")] = 2,
    skew: Annotated[bool, typer.Option("--skew", help="Spread rows about 50/25/14/10/1 % over 5 orgs.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per COPY batch.")] = 5000,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Load a dataset (or synthetic rows) with COPY; a second run adds no duplicates."""
    ds = run_plain(lambda: load_dataset(dataset, synthetic_n, limit))
    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, _url: seed(
            engine, ds, orgs=orgs, agents=agents, skew=skew, batch_size=batch_size, progress=progress))
    render.emit(result, as_json=json_)


def parse_list(option: str, value: str | None, kind=int) -> tuple:
    """``'10,20,40'`` -> (10, 20, 40) of ``kind``; ConfigError naming ``option`` on anything else."""
    if value is None:
        return ()
    try:
        out = tuple(kind(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated {kind.__name__} values, got {value!r}") from None
    if not out:
        raise ConfigError(f"{option} is empty")
    return out


def parse_ef(value: str) -> tuple[int, ...]:
    """``'10,20,40'`` -> (10, 20, 40); ConfigError on anything else."""
    return parse_list("--ef-search", value)



def bench_cmd(
    queries: Annotated[Path | None, typer.Option(
        "--queries", metavar="PATH.npz", help="Use the file's query_embeddings (else sample stored ones).")] = None,
    num_queries: Annotated[int, typer.Option("--num-queries", "-q", help="Queries per ef_search value.")] = 500,
    k: Annotated[int, typer.Option("-k", help="Neighbours per query (recall@k).")] = 10,
    ef_search: Annotated[str, typer.Option(
        "--ef-search", help="Comma-separated hnsw.ef_search values to sweep.")] = ",".join(map(str, DEFAULT_EF_SEARCH)),
    target_recall: Annotated[str, typer.Option(
        "--target-recall", help="Report the smallest ef_search reaching each recall@k.")] = "0.95,0.99",
    org: Annotated[str | None, typer.Option(
        "--org", metavar="SLUG", help="Restrict to one organisation (iterative scan, relaxed order).")] = None,
    force_index: Annotated[bool, typer.Option(
        "--force-index/--planner-decides",
        help="Set enable_seqscan = off for approximate queries (measure the index), or let the planner "
             "choose (a plan off the index is INVALID).")] = True,
    truth: Annotated[str, typer.Option(
        "--truth", metavar="database|numpy", help="Exact top-k in the database (index scans off) or in numpy "
        "(small sets). Cached per data snapshot.")] = "database",
    filters: Annotated[bool, typer.Option(
        "--filters", help="Also measure organisations of about 1/10/50 %% of the rows under iterative scan "
        "off / strict_order / relaxed_order (the planner decides).")] = False,
    filter_queries: Annotated[int, typer.Option("--filter-queries", help="Queries per filtered cell.")] = 100,
    max_scan_tuples: Annotated[str, typer.Option(
        "--max-scan-tuples", metavar="N,N",
        help="hnsw.max_scan_tuples values for the iterative modes.")] = "1000,20000",
    concurrency: Annotated[str | None, typer.Option(
        "--concurrency", metavar="1,2,4,8", help="Pool sizes to measure QPS and p50/p95/p99 at.")] = None,
    window: Annotated[float, typer.Option("--window", metavar="SECONDS", help="Measured window per level.")] = 5.0,
    warmup: Annotated[float, typer.Option("--warmup", metavar="SECONDS", help="Warm-up per level.")] = 1.0,
    vs_raw: Annotated[bool, typer.Option(
        "--vs-raw", help="Also time a bare asyncpg loop on a plain vector(d) copy (ratio of p50s).")] = False,
    build: Annotated[bool, typer.Option("--build", help="Benchmark HNSW builds on a scratch copy.")] = False,
    sweep_m: Annotated[str | None, typer.Option("--sweep-m", metavar="8,16,32", help="m values to build.")] = None,
    sweep_ef_construction: Annotated[str | None, typer.Option(
        "--sweep-ef-construction", metavar="32,64,128", help="ef_construction values to build.")] = None,
    maintenance_work_mem: Annotated[str | None, typer.Option(
        "--maintenance-work-mem", metavar="SIZE", help="e.g. 256MB, for --build.")] = None,
    parallel_workers: Annotated[int | None, typer.Option(
        "--parallel-workers", metavar="N", help="max_parallel_maintenance_workers for --build.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", metavar="FILE.json", help="Write the whole run as versioned JSON (a future --baseline).")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE.png", help="Recall-QPS curve (needs the plot extra: matplotlib).")] = None,
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", metavar="FILE.json", help="Compare with an earlier --output; exit 1 on a regression.")] = None,
    max_recall_drop: Annotated[float, typer.Option(
        "--max-recall-drop", help="Allowed drop of recall@k at any ef_search.")] = DEFAULT_MAX_RECALL_DROP,
    max_latency_growth: Annotated[float, typer.Option(
        "--max-latency-growth", help="Allowed relative growth of p95 (0.2 = 20 %%).")] = DEFAULT_MAX_LATENCY_GROWTH,
    model: Model = None,
    database_url: DatabaseUrl = None,
    json_: Json = False,
    csv_: Csv = False,
) -> None:
    """Fingerprint, plan check, recall@k vs exact search, p50/p95/p99 and QPS per ef_search, and
    optionally filtered tenants, concurrency, builds, a bare-asyncpg comparison and a baseline.
    Exit 0, 1 INVALID or regressed, 2 error."""

    def options() -> BenchOptions:
        opts = BenchOptions(
            model_name=model, queries=load_queries(queries) if queries is not None else None, num_queries=num_queries,
            k=k, ef_search=parse_ef(ef_search), target_recall=parse_list("--target-recall", target_recall, float),
            org=org, force_index=force_index, truth=truth, cache_dir=cache_dir(), filters=filters,
            filter_queries=filter_queries, max_scan_tuples=parse_list("--max-scan-tuples", max_scan_tuples),
            concurrency=parse_list("--concurrency", concurrency), window_s=window, warmup_s=warmup, vs_raw=vs_raw,
            build=build, sweep_m=parse_list("--sweep-m", sweep_m),
            sweep_ef_construction=parse_list("--sweep-ef-construction", sweep_ef_construction),
            maintenance_work_mem=maintenance_work_mem, parallel_workers=parallel_workers,
            baseline=load_baseline(baseline) if baseline is not None else None,
            baseline_name=str(baseline) if baseline is not None else None,
            max_recall_drop=max_recall_drop, max_latency_growth=max_latency_growth)
        opts.check()
        return opts

    opts = run_plain(options)
    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, _url: bench_hnsw(engine, opts, progress))
    if output is not None:
        run_plain(lambda: write_json(result, output))
    if plot is not None and result.valid:
        run_plain(lambda: plot_recall_qps(result, plot))
    render.emit(result, as_json=json_, as_csv=csv_)
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


def check_cmd(database_url: DatabaseUrl = None, json_: Json = False, csv_: Csv = False) -> None:
    """Report NOT VALID constraints, INVALID indexes and data breaking unenforceable rules. Exit 1 if any."""
    result = run_with_engine(database_url, lambda engine, _url: check_constraints(engine))
    render.emit(result, as_json=json_, as_csv=csv_)
    if not result.clean:
        raise typer.Exit(EXIT_FINDINGS)
