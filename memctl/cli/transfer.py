"""``memctl export``: a tenant's data out, as Parquet files and a manifest (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl.cli.common import finish, progress_bar, run_with_engine
from memctl.cli.options import Database, Json, grouped


@grouped(Database)
def export_cmd(
    db: Database,
    org: Annotated[str, typer.Option("--org", metavar="SLUG", help="The organisation to export.",
                                     show_default=False)],
    output: Annotated[Path, typer.Option("--output", metavar="DIR", help="A directory that does not exist yet "
                                         "(or is empty): nothing is ever overwritten.", show_default=False)],
    batch_rows: Annotated[int, typer.Option("--batch-rows", metavar="N", min=1,
                                            help="Rows read and written at a time (memory).")] = 10_000,
    json_: Json = False,
) -> None:
    """Every row an organisation owns, one Parquet file per table (per table and model for
    embeddings) and manifest.json with row counts and SHA-256; one consistent snapshot."""
    from memctl.transfer.export import export_org

    with progress_bar(rate="rows") as progress:
        result = run_with_engine(db, lambda engine, _url: export_org(engine, org, output, batch_rows=batch_rows,
                                                                     progress=progress))
    finish(result, as_json=json_)
