"""``memctl demo``: the main job end to end on the current database (embedded by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl.cli.common import confirm, current_run, progress_bar, run_plain, run_with_engine
from memctl.cli.options import Database, DatasetChoice, Json, Yes, grouped
from memctl.errors import ExitCode

DEMO_ROWS = 5000  # synthetic rows when no --dataset is given


@grouped(Database, DatasetChoice)
def demo_cmd(
    db: Database,
    data: DatasetChoice,
    queries: Annotated[Path | None, typer.Option(
        "--queries", metavar="PATH.npz", help="Benchmark queries (default: the dataset's, else sampled).")] = None,
    num_queries: Annotated[int, typer.Option("--num-queries", "-q", help="Benchmark queries.")] = 200,
    yes: Yes = False,
    json_: Json = False,
) -> None:
    """Migrate, seed (synthetic 5,000 rows unless --dataset), verify-schema, check-constraints, bench-hnsw.
    On a database other than the embedded one it asks first (--yes for scripts): it writes rows."""
    from memctl.cli import render
    from memctl.config import Settings, mask_url
    from memctl.data.datasets import dataset_from, queries_of
    from memctl.data.demo import run_demo

    settings = run_plain(lambda: Settings.resolve(db.database_url, db.connect_timeout))
    if settings.database_url is not None and not yes and not confirm(
            f"memctl demo migrates and writes demo rows into {mask_url(settings.database_url)}. Go on?"):
        render.error("aborted: nothing written (give --yes to run the demo on this database)")
        raise typer.Exit(ExitCode.ABORTED)
    ds = run_plain(lambda: dataset_from(data.dataset, data.synthetic_n, data.limit, default_synthetic=DEMO_ROWS))
    q = run_plain(lambda: queries_of(queries, data.dataset))
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, url: run_demo(
            engine, url, ds, queries=q, num_queries=num_queries, progress=progress))
    code = ExitCode.CLEAN if result.clean else ExitCode.FINDINGS
    render.emit_steps([("migrate", result.migration), ("seed", result.seed), ("verify-schema", result.verify),
                       ("check-constraints", result.checks), ("bench-hnsw", result.bench)], as_json=json_,
                      run=current_run().record(code))
    if code != ExitCode.CLEAN:
        raise typer.Exit(code)
