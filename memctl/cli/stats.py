"""``memctl stats``: the database's health for a person (tables), a script (--json) and a monitor
(--prometheus FILE, node_exporter's textfile collector); thresholds make a cron line alert (exit 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl.cli import render
from memctl.cli.common import finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import Database, Json, grouped, parse_duration


@grouped(Database)
def stats_cmd(
    db: Database,
    max_dead_share: Annotated[float | None, typer.Option(
        "--max-dead-share", metavar="SHARE", help="Alert when a table's dead tuples exceed this share (e.g. 0.2).",
        show_default=False)] = None,
    max_stale: Annotated[int | None, typer.Option(
        "--max-stale", metavar="N", help="Alert when a model has more stale embeddings than this.",
        show_default=False)] = None,
    max_maintain_age: Annotated[str | None, typer.Option(
        "--max-maintain-age", metavar="DURATION", help="Alert when a maintain task last succeeded longer ago "
        "than this (e.g. 26h), or never ran.", show_default=False)] = None,
    min_coverage: Annotated[float | None, typer.Option(
        "--min-coverage", metavar="SHARE", help="Alert when a ready model covers less than this share.",
        show_default=False)] = None,
    max_failed_jobs: Annotated[int | None, typer.Option(
        "--max-failed-jobs", metavar="N", help="Alert when more consolidation jobs than this have failed.",
        show_default=False)] = None,
    prometheus: Annotated[Path | None, typer.Option(
        "--prometheus", metavar="FILE", help="Also write the report in Prometheus' text format to FILE, atomically "
        "(node_exporter's textfile collector reads *.prom files).", show_default=False)] = None,
    json_: Json = False,
) -> None:
    """Memories per organisation and tier, coverage and stale rows per model, dead tuples and vacuum/analyze
    times per table, index sizes and validity, consolidation jobs, maintain's last runs. Read only.
    Exit 1 when a threshold is crossed."""
    from memctl.health.collect import check_thresholds, collect_stats
    from memctl.health.prometheus import exposition, write_atomic
    from memctl.health.types import Thresholds

    age = run_plain(lambda: parse_duration("--max-maintain-age", max_maintain_age))
    thresholds = Thresholds(max_dead_share, max_stale, age, min_coverage, max_failed_jobs)
    run_plain(lambda: check_thresholds(thresholds))
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, _url: collect_stats(engine, thresholds, progress))
    if prometheus is not None:
        run_plain(lambda: write_atomic(prometheus, exposition(result)))
    for finding in result.findings:
        render.error(f"threshold crossed: {finding}")
    finish(result, result.ok, as_json=json_)
