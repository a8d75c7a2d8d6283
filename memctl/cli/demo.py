"""``memctl demo``: the main job end to end on the current database (embedded by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl.cli.common import findings_exit, progress_bar, run_plain, run_with_engine
from memctl.cli.options import DatabaseUrl, DatasetFile, Json, Limit, Synthetic

DEMO_ROWS = 5000  # synthetic rows when no --dataset is given


def demo_cmd(
    dataset: DatasetFile = None,
    synthetic_n: Synthetic = None,
    limit: Limit = None,
    queries: Annotated[Path | None, typer.Option(
        "--queries", metavar="PATH.npz", help="Benchmark queries (default: the dataset's, else sampled).")] = None,
    num_queries: Annotated[int, typer.Option("--num-queries", "-q", help="Benchmark queries.")] = 200,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Migrate, seed (synthetic 5,000 rows unless --dataset), verify-schema, check-constraints, bench-hnsw."""
    from memctl.cli import render
    from memctl.data.datasets import dataset_from, queries_of
    from memctl.data.demo import run_demo

    ds = run_plain(lambda: dataset_from(dataset, synthetic_n, limit, default_synthetic=DEMO_ROWS))
    q = run_plain(lambda: queries_of(queries, dataset))
    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, url: run_demo(
            engine, url, ds, queries=q, num_queries=num_queries, progress=progress))
    render.emit_steps([("migrate", result.migration), ("seed", result.seed), ("verify-schema", result.verify),
                       ("check-constraints", result.checks), ("bench-hnsw", result.bench)], as_json=json_)
    findings_exit(result.clean)
