"""``memctl seed | bench-hnsw | check-constraints``: load data, measure search, check integrity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl import render
from memctl.bench import DEFAULT_EF_SEARCH, bench_hnsw
from memctl.checks import check_constraints
from memctl.cli.common import EXIT_FINDINGS, progress_bar, run_plain, run_with_engine
from memctl.cli.options import Csv, DatabaseUrl, Json, Model
from memctl.datasets import load_npz, load_queries, synthetic
from memctl.errors import ConfigError
from memctl.seed import seed

DatasetOpt = Annotated[Path | None, typer.Option(
    "--dataset", metavar="PATH.npz", help="Dataset with texts, embeddings (n, d) float32 and model.")]
SyntheticOpt = Annotated[int | None, typer.Option(
    "--synthetic", metavar="N", help="Generate N texts with clustered unit vectors (default model's space).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", metavar="N", help="Use only the first N dataset rows.")]


def parse_ef(value: str) -> tuple[int, ...]:
    """``'10,20,40'`` -> (10, 20, 40); ConfigError on anything else."""
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--ef-search must be comma-separated integers, got {value!r}") from None
    if not out:
        raise ConfigError("--ef-search is empty")
    return out


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


def bench_cmd(
    queries: Annotated[Path | None, typer.Option(
        "--queries", metavar="PATH.npz", help="Use the file's query_embeddings (else sample stored ones).")] = None,
    num_queries: Annotated[int, typer.Option("--num-queries", "-q", help="Queries per ef_search value.")] = 500,
    k: Annotated[int, typer.Option("-k", help="Neighbours per query (recall@k).")] = 10,
    ef_search: Annotated[str, typer.Option(
        "--ef-search", help="Comma-separated hnsw.ef_search values to sweep.")] = ",".join(map(str, DEFAULT_EF_SEARCH)),
    org: Annotated[str | None, typer.Option(
        "--org", metavar="SLUG", help="Restrict to one organisation (iterative scan, relaxed order).")] = None,
    force_index: Annotated[bool, typer.Option(
        "--force-index/--planner-decides",
        help="Set enable_seqscan = off for approximate queries (measure the index), or let the planner "
             "choose (a plan off the index is INVALID).")] = True,
    model: Model = None,
    database_url: DatabaseUrl = None,
    json_: Json = False,
    csv_: Csv = False,
) -> None:
    """Recall@k against exact search, p50/p95/p99 latency and QPS per ef_search. Exit 1 if INVALID."""
    efs = run_plain(lambda: parse_ef(ef_search))
    q = run_plain(lambda: load_queries(queries)) if queries is not None else None
    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, _url: bench_hnsw(
            engine, model_name=model, queries=q, num_queries=num_queries, k=k, ef_search=efs, org=org,
            force_index=force_index, progress=progress))
    render.emit(result, as_json=json_, as_csv=csv_)
    if not result.valid:
        raise typer.Exit(EXIT_FINDINGS)


def check_cmd(database_url: DatabaseUrl = None, json_: Json = False, csv_: Csv = False) -> None:
    """Report NOT VALID constraints, INVALID indexes and data breaking unenforceable rules. Exit 1 if any."""
    result = run_with_engine(database_url, lambda engine, _url: check_constraints(engine))
    render.emit(result, as_json=json_, as_csv=csv_)
    if not result.clean:
        raise typer.Exit(EXIT_FINDINGS)
