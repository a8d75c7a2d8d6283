"""``memctl maintain [TASK ...]``: housekeeping for cron (retention, expire, purge, consolidation,
vacuum, reindex). Exit 0 done, 1 some task failed, 2 usage/connection error, 75 another run holds
the lock (try later)."""

from __future__ import annotations

from typing import Annotated

import typer

from memctl.cli.common import finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import BatchSize, Database, DryRun, Json, MaxRuntime, format_duration, grouped, parse_duration
from memctl.maintenance.types import TASKS, MaintainOptions

_DEFAULTS = MaintainOptions()


@grouped(Database)
def maintain_cmd(
    db: Database,
    task: Annotated[list[str] | None, typer.Argument(
        metavar="[TASK]...", help=f"Tasks to run, in this order: {', '.join(TASKS)} (default: all).",
        show_default=False)] = None,
    dry_run: DryRun = False,
    batch_size: BatchSize = _DEFAULTS.batch_size,
    max_runtime: MaxRuntime = None,
    grace: Annotated[str, typer.Option(
        "--grace", metavar="DURATION", help="purge: soft-deleted for longer than this.")] = format_duration(
        _DEFAULTS.grace_s),
    stale: Annotated[str, typer.Option(
        "--stale", metavar="DURATION", help="consolidation: running for longer than this.")] = format_duration(
        _DEFAULTS.stale_s),
    reindex_dead_share: Annotated[float, typer.Option(
        "--reindex-dead-share",
        help="reindex: dead-tuple share of the table that triggers it.")] = _DEFAULTS.reindex_dead_share,
    org: Annotated[list[str] | None, typer.Option(
        "--org", metavar="SLUG", help="Only this organisation (repeatable; default all).")] = None,
    table: Annotated[list[str] | None, typer.Option(
        "--table", metavar="NAME", help="vacuum: these agent_memory tables (repeatable).")] = None,
    json_: Json = False,
) -> None:
    """Keep the memory database healthy from cron; one run at a time (a second exits 75 at once)."""
    from memctl.maintenance.run import check_options, maintain

    def options() -> MaintainOptions:
        opts = MaintainOptions(
            tasks=tuple(task) if task else TASKS, dry_run=dry_run, batch_size=batch_size,
            max_runtime_s=parse_duration("--max-runtime", max_runtime), grace_s=parse_duration("--grace", grace),
            stale_s=parse_duration("--stale", stale), reindex_dead_share=reindex_dead_share,
            orgs=tuple(org) if org else None, tables=tuple(table or ()))
        check_options(opts)
        return opts

    opts = run_plain(options)
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, _url: maintain(engine, opts, progress))
    finish(result, result.ok, as_json=json_)
