"""The Typer app: every command of memctl, registered from its module, and the root options."""

from __future__ import annotations

from typing import Annotated

import typer

from memctl.cli import bench, check, common, db, demo, maintain, migrate, models, seed, stats, transfer, verify
from memctl.errors import ExitCode

app = typer.Typer(
    name="memctl",
    help="Schema and data administration for an agent-memory database on PostgreSQL + pgvector.\n\n"
         "Exit codes: 0 clean, 1 findings (drift, violations, INVALID bench), 2 usage/config/connection "
         "error, 75 lock held by another run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"memctl {common.memctl_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Print memctl's version and exit.")] = False,
) -> None:
    """Schema and data administration for an agent-memory database on PostgreSQL + pgvector."""
    common.begin(" ".join(a for a in [ctx.invoked_subcommand or ""] if a))


app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.add_typer(migrate.app, name="migrate")
app.add_typer(migrate.app, name="upgrade", help="The same as migrate (Alembic's name for it).")
app.command("downgrade")(migrate.downgrade)
app.command("stamp")(migrate.stamp)
app.command("current")(migrate.current)
app.command("history")(migrate.history)
app.command("verify-schema")(verify.verify_schema_cmd)
app.command("seed")(seed.seed_cmd)
app.command("bench-hnsw")(bench.bench_cmd)
app.command("check-constraints")(check.check_cmd)
app.command("maintain")(maintain.maintain_cmd)
app.command("demo")(demo.demo_cmd)
app.command("export")(transfer.export_cmd)
app.command("import")(transfer.import_cmd)
app.command("erase")(transfer.erase_cmd)
app.command("stats")(stats.stats_cmd)


def main() -> None:
    """Console-script entry point. An output that cannot be written (a full disk under ``>> log``,
    a closed pipe) is one line on stderr and exit 2, not a traceback."""
    try:
        app()
    except OSError as exc:
        common.fail(exc)
        raise SystemExit(ExitCode.USAGE) from None
