"""``memctl migrate [check|lint] | downgrade | current | history``: the schema's revision."""

from __future__ import annotations

from typing import Annotated

import typer

from memctl import migrate as lib
from memctl import render
from memctl.cli.common import EXIT_FINDINGS, progress_bar, run_plain, run_with_engine
from memctl.cli.options import DatabaseUrl, Json, LockTimeout, Retries, StatementTimeout, Wait, Yes
from memctl.lint import lint
from memctl.migrate_check import migrate_check

app = typer.Typer(help="Upgrade the schema (to head by default), or print the SQL with --sql. "
                       "Exit 75 when another migrator holds the lock past --wait, or a table lock "
                       "was not had within --lock-timeout after --retries.",
                  invoke_without_command=True)

_DEFAULT = lib.Guard()


def _guard(wait: float, lock_timeout: float, statement_timeout: float, retries: int) -> lib.Guard:
    return lib.Guard(wait_seconds=wait, lock_timeout=lock_timeout, statement_timeout=statement_timeout,
                     retries=retries)


@app.callback()
def migrate(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", metavar="REV", help="Target revision (id, prefix or head).")] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it (no database).")] = False,
    wait: Wait = _DEFAULT.wait_seconds,
    lock_timeout: LockTimeout = _DEFAULT.lock_timeout,
    statement_timeout: StatementTimeout = _DEFAULT.statement_timeout,
    retries: Retries = _DEFAULT.retries,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Upgrade the database schema to a revision (default: head), one migrator at a time."""
    if ctx.invoked_subcommand is not None:
        return
    guard = _guard(wait, lock_timeout, statement_timeout, retries)
    if sql:
        typer.echo(run_plain(lambda: lib.upgrade_sql(to, guard=guard)), nl=False)
        return
    render.emit(run_with_engine(database_url, lambda engine, _url: lib.upgrade(engine, to, guard)), as_json=json_)


@app.command("check")
def check(database_url: DatabaseUrl = None, json_: Json = False) -> None:
    """For CI: one head, every revision downgrades, base->head->base->head on a scratch database
    leaves the same catalog, models match head (verify-schema), squawk lint clean. Exit 0/1."""
    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, url: migrate_check(engine, url, progress=progress))
    render.emit(result, as_json=json_)
    if not result.clean:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("lint")
def lint_cmd(json_: Json = False) -> None:
    """Lint the SQL every revision emits (--sql mode) with squawk. No database. Exit 0 clean, 1 findings."""
    result = run_plain(lint)
    render.emit(result, as_json=json_)
    if not result.clean:
        raise typer.Exit(EXIT_FINDINGS)


def downgrade(
    revision: Annotated[str, typer.Argument(metavar="REV", help="Target revision, or 'base' to remove everything.")],
    yes: Yes = False,
    wait: Wait = _DEFAULT.wait_seconds,
    lock_timeout: LockTimeout = _DEFAULT.lock_timeout,
    statement_timeout: StatementTimeout = _DEFAULT.statement_timeout,
    retries: Retries = _DEFAULT.retries,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Downgrade the schema to REV ('base' drops every object of agent_memory, data included)."""
    if not yes:
        if not typer.confirm(f"Downgrade to {revision}? Tables dropped on the way lose their data", err=True):
            render.error("aborted: nothing changed")
            raise typer.Exit(1)
    guard = _guard(wait, lock_timeout, statement_timeout, retries)
    render.emit(run_with_engine(database_url, lambda engine, _url: lib.downgrade(engine, revision, guard)),
                as_json=json_)


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
