"""``memctl demo``: the main job end to end on the current database (embedded by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl import render
from memctl.cli.common import EXIT_FINDINGS, progress_bar, run_plain, run_with_engine
from memctl.cli.data import DatasetOpt, LimitOpt, SyntheticOpt, load_dataset
from memctl.cli.options import DatabaseUrl, Json
from memctl.datasets import load_queries
from memctl.demo import run_demo


def demo_cmd(
    dataset: DatasetOpt = None,
    synthetic_n: SyntheticOpt = None,
    limit: LimitOpt = None,
    queries: Annotated[Path | None, typer.Option(
        "--queries", metavar="PATH.npz", help="Benchmark queries (default: the dataset's, else sampled).")] = None,
    num_queries: Annotated[int, typer.Option("--num-queries", "-q", help="Benchmark queries.")] = 200,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Migrate, seed (synthetic 5,000 rows unless --dataset), verify-schema, check-constraints, bench-hnsw."""
    ds = run_plain(lambda: load_dataset(dataset, synthetic_n, limit, default_synthetic=5000))
    qpath = queries or dataset
    q = None
    if qpath is not None:
        q = run_plain(lambda: load_queries(qpath)) if queries is not None else _optional_queries(qpath)
    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, url: run_demo(
            engine, url, ds, queries=q, num_queries=num_queries, progress=progress))
    render.emit_steps([("migrate", result.migration), ("seed", result.seed), ("verify-schema", result.verify),
                       ("check-constraints", result.checks), ("bench-hnsw", result.bench)], as_json=json_)
    if not result.clean:
        raise typer.Exit(EXIT_FINDINGS)


def _optional_queries(path: Path):
    from memctl.errors import DatasetError

    try:
        return load_queries(path)
    except DatasetError:
        return None
