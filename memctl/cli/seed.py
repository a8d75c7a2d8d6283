"""``memctl seed``: load a dataset (or synthetic rows) into the schema."""

from __future__ import annotations

from typing import Annotated

import typer

from memctl.cli.common import finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import (
    BuildMemoryBudget,
    Database,
    DatasetChoice,
    Json,
    Model,
    ParallelWorkers,
    grouped,
    parse_size,
)


@grouped(Database, DatasetChoice)
def seed_cmd(
    db: Database,
    data: DatasetChoice,
    orgs: Annotated[int, typer.Option("--orgs", help="Organisations to spread rows over.")] = 3,
    agents: Annotated[int, typer.Option("--agents", help="Agents per organisation.")] = 2,
    skew: Annotated[bool, typer.Option("--skew", help="Spread rows about 50/25/14/10/1 % over 5 orgs.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per COPY batch.")] = 5000,
    model: Model = None,
    memory: BuildMemoryBudget = "1GB",
    parallel_workers: ParallelWorkers = None,
    json_: Json = False,
) -> None:
    """Load a dataset (or synthetic rows, generated batch by batch: constant memory) with COPY; a second
    run adds no duplicates. --model seeds a registered model (synthetic rows take its dimension)."""
    from memctl.data.datasets import dataset_from
    from memctl.data.seed import seed

    ds = run_plain(lambda: dataset_from(data.dataset, data.synthetic_n, data.limit))
    budget = run_plain(lambda: parse_size("--memory", memory))
    with progress_bar(rate="rows") as progress:
        result = run_with_engine(db, lambda engine, _url: seed(
            engine, ds, orgs=orgs, agents=agents, skew=skew, batch_size=batch_size, model=model,
            memory_budget=budget, parallel_workers=parallel_workers, progress=progress))
    finish(result, as_json=json_)
