"""``memctl export``, ``memctl import`` and ``memctl erase``: a tenant's data out, in, and gone (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl.cli import render
from memctl.cli.common import confirm, finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import (
    BatchSize,
    BuildMemoryBudget,
    Database,
    DryRun,
    Json,
    MaxRuntime,
    Yes,
    grouped,
    parse_duration,
    parse_size,
)
from memctl.errors import ExitCode

BatchRows = Annotated[int, typer.Option("--batch-rows", metavar="N", min=1,
                                        help="Rows read and written at a time (memory).")]


@grouped(Database)
def export_cmd(
    db: Database,
    org: Annotated[str, typer.Option("--org", metavar="SLUG", help="The organisation to export.",
                                     show_default=False)],
    output: Annotated[Path, typer.Option("--output", metavar="DIR", help="A directory that does not exist yet "
                                         "(or is empty): nothing is ever overwritten.", show_default=False)],
    batch_rows: BatchRows = 10_000,
    json_: Json = False,
) -> None:
    """Every row an organisation owns, one Parquet file per table (per table and model for
    embeddings) and manifest.json with row counts and SHA-256; one consistent snapshot."""
    from memctl.transfer.export import export_org

    with progress_bar(rate="rows") as progress:
        result = run_with_engine(db, lambda engine, _url: export_org(engine, org, output, batch_rows=batch_rows,
                                                                     progress=progress))
    finish(result, as_json=json_)


@grouped(Database)
def import_cmd(
    db: Database,
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A directory written by memctl export.",
                                              show_default=False)],
    as_org: Annotated[str | None, typer.Option(
        "--as-org", metavar="SLUG", help="Import as a new organisation with this slug: every id is new, the "
        "source (in the same database, say) untouched.")] = None,
    dry_run: DryRun = False,
    batch_rows: BatchRows = 10_000,
    memory: BuildMemoryBudget = "1GB",
    json_: Json = False,
) -> None:
    """Load an export in one transaction, or refuse with one line and write nothing (checksums, schema
    revision, models by name, the organisation must not exist)."""
    from memctl.transfer.importer import import_org

    budget = run_plain(lambda: parse_size("--memory", memory))
    with progress_bar(rate="rows") as progress:
        result = run_with_engine(db, lambda engine, _url: import_org(
            engine, directory, as_org=as_org, dry_run=dry_run, batch_rows=batch_rows, memory_budget=budget,
            progress=progress))
    finish(result, as_json=json_)


@grouped(Database)
def erase_cmd(
    db: Database,
    org: Annotated[str, typer.Option("--org", metavar="SLUG", help="The organisation (erased whole without "
                                     "--user).", show_default=False)],
    user: Annotated[str | None, typer.Option(
        "--user", metavar="EXTERNAL_ID", help="Erase only this user (users.external_id) and what was derived from "
        "their memories.")] = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = 1000,
    max_runtime: MaxRuntime = None,
    yes: Yes = False,
    json_: Json = False,
) -> None:
    """Delete an organisation, or a user with their memories, versions, embeddings, tags, edges, collection
    items, sessions, tokens and the consolidations built from their memories; in batches, resumable.
    Exit 1 when --max-runtime stopped it first (run again to finish)."""
    from memctl.transfer.erase import erase

    budget = run_plain(lambda: parse_duration("--max-runtime", max_runtime))
    what = f"user {user!r} of organisation {org!r}" if user is not None else f"organisation {org!r} and all its data"
    if not dry_run and not yes and not confirm(f"Erase {what}? This cannot be undone."):
        render.error("aborted: nothing changed")
        raise typer.Exit(ExitCode.ABORTED)
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, _url: erase(
            engine, org, user, dry_run=dry_run, batch_size=batch_size, max_runtime_s=budget, progress=progress))
    if result.stopped_by_budget:
        render.error("stopped by --max-runtime: run memctl erase again to finish")
    elif not dry_run and not result.done:
        render.error("rows in scope are left (locked by other sessions, or written meanwhile): run memctl erase "
                     "again")
    finish(result, dry_run or result.done, as_json=json_)
