"""``memctl migrate [check|lint] | downgrade | current | history``: the schema's revision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from memctl.cli.common import findings_exit, progress_bar, run_plain, run_with_engine
from memctl.cli.options import DatabaseUrl, Json, LockTimeout, Retries, StatementTimeout, Wait, Yes, grouped
from memctl.errors import ExitCode
from memctl.migration.guard import Guard

if TYPE_CHECKING:
    from memctl.migration.runner import RevisionInfo

app = typer.Typer(help="Upgrade the schema (to head by default), or print the SQL with --sql. "
                       "Exit 75 when another migrator holds the lock past --wait, or a table lock "
                       "was not had within --lock-timeout after --retries.",
                  invoke_without_command=True)

_DEFAULT = Guard()


@dataclass
class GuardOptions:
    """The options of ``migrate`` and ``downgrade`` that protect a live database (seconds)."""

    wait: Wait = _DEFAULT.wait_s
    lock_timeout: LockTimeout = _DEFAULT.lock_timeout_s
    statement_timeout: StatementTimeout = _DEFAULT.statement_timeout_s
    retries: Retries = _DEFAULT.retries

    def guard(self) -> Guard:
        """The library's :class:`~memctl.migration.guard.Guard` for these options."""
        return Guard(wait_s=self.wait, lock_timeout_s=self.lock_timeout, statement_timeout_s=self.statement_timeout,
                     retries=self.retries)


@app.callback()
@grouped(GuardOptions)
def migrate(
    options: GuardOptions,
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", metavar="REV", help="Target revision (id, prefix or head).")] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it (no database).")] = False,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Upgrade the database schema to a revision (default: head), one migrator at a time."""
    if ctx.invoked_subcommand is not None:
        return
    from memctl.cli import render
    from memctl.migration import runner

    guard = options.guard()
    if sql:
        typer.echo(run_plain(lambda: runner.upgrade_sql(to, guard=guard)), nl=False)
        return
    render.emit(run_with_engine(database_url, lambda engine, _url: runner.upgrade(engine, to, guard)),
                as_json=json_)


@app.command("check")
def check(database_url: DatabaseUrl = None, json_: Json = False) -> None:
    """For CI: one head, every revision downgrades, base->head->base->head on a scratch database
    leaves the same catalog, models match head (verify-schema), squawk lint clean. Exit 0/1."""
    from memctl.cli import render
    from memctl.migration.check import migrate_check

    with progress_bar() as progress:
        result = run_with_engine(database_url, lambda engine, url: migrate_check(engine, url, progress=progress))
    render.emit(result, as_json=json_)
    findings_exit(result.clean)


@app.command("lint")
def lint_cmd(json_: Json = False) -> None:
    """Lint the SQL every revision emits (--sql mode) with squawk. No database. Exit 0 clean, 1 findings."""
    from memctl.cli import render
    from memctl.migration.lint import lint

    result = run_plain(lint)
    render.emit(result, as_json=json_)
    findings_exit(result.clean)


@grouped(GuardOptions)
def downgrade(
    options: GuardOptions,
    revision: Annotated[str, typer.Argument(metavar="REV", help="Target revision, or 'base' to remove everything.")],
    yes: Yes = False,
    database_url: DatabaseUrl = None,
    json_: Json = False,
) -> None:
    """Downgrade the schema to REV ('base' drops every object of agent_memory, data included)."""
    from memctl.cli import render
    from memctl.migration import runner

    if not yes and not typer.confirm(f"Downgrade to {revision}? Tables dropped on the way lose their data", err=True):
        render.error("aborted: nothing changed")
        raise typer.Exit(ExitCode.ABORTED)
    guard = options.guard()
    render.emit(run_with_engine(database_url, lambda engine, _url: runner.downgrade(engine, revision, guard)),
                as_json=json_)


def current(database_url: DatabaseUrl = None, json_: Json = False) -> None:
    """Show the database's revision and the head."""
    from memctl.cli import render
    from memctl.migration import runner

    async def fn(engine, _url) -> list[RevisionInfo]:
        return [r for r in await runner.history(engine) if r.is_current or r.is_head]

    rows = run_with_engine(database_url, fn)
    if not any(r.is_current for r in rows):
        render.note("the database is at base (not migrated)")
    render.emit(rows, as_json=json_)


def history(database_url: DatabaseUrl = None, json_: Json = False) -> None:
    """List every revision, oldest first, and which are applied."""
    from memctl.cli import render
    from memctl.migration import runner

    render.emit(run_with_engine(database_url, lambda engine, _url: runner.history(engine)), as_json=json_)
