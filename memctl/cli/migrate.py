"""``memctl migrate | downgrade | current | history``: the schema's revision."""

from __future__ import annotations

from typing import Annotated

import typer

from memctl import migrate as lib
from memctl import render
from memctl.cli.common import run_plain, run_with_engine
from memctl.cli.options import DatabaseUrl, Json, Yes

app = typer.Typer(help="Upgrade the schema (to head by default), or print the SQL with --sql.",
                  invoke_without_command=True)


@app.callback()
def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", metavar="REV", help="Target revision (id, prefix or head).")] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it (no database).")] = False,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Upgrade the database schema to a revision (default: head)."""
    if ctx.invoked_subcommand is not None:
        return
    if sql:
        typer.echo(run_plain(lambda: lib.upgrade_sql(to)), nl=False)
        return
    render.emit(run_with_engine(database_url, lambda engine, _url: lib.upgrade(engine, to)), as_json=json_)


def downgrade(
    revision: Annotated[str, typer.Argument(metavar="REV", help="Target revision, or 'base' to remove everything.")],
    yes: Yes = False,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Downgrade the schema to REV ('base' drops every object of agent_memory, data included)."""
    if not yes:
        if not typer.confirm(f"Downgrade to {revision}? Tables dropped on the way lose their data", err=True):
            render.error("aborted: nothing changed")
            raise typer.Exit(1)
    render.emit(run_with_engine(database_url, lambda engine, _url: lib.downgrade(engine, revision)), as_json=json_)


def current(database_url: DatabaseUrl = None, json_: Json = False) -> None:
    """Show the database's revision and the head."""

    async def fn(engine, _url):
        return [r for r in await lib.history(engine) if r.is_current or r.is_head]

    rows = run_with_engine(database_url, fn)
    if not any(r.is_current for r in rows):
        render.note("the database is at base (not migrated)")
    render.emit(rows, as_json=json_)


def history(database_url: DatabaseUrl = None, json_: Json = False) -> None:
    """List every revision, oldest first, and which are applied."""
    render.emit(run_with_engine(database_url, lambda engine, _url: lib.history(engine)), as_json=json_)
