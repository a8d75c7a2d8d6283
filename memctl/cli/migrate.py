"""``memctl migrate [check|lint|heads|show] | downgrade | stamp | current | history``: the revision.

``upgrade`` is the same group as ``migrate`` (Alembic's name). Revisions are ids, unique prefixes,
``head``, ``base`` or Alembic's relative forms (``head-1``, ``base+2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from memctl.cli.common import confirm, current_run, fail, finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import Database, Json, LockTimeout, Retries, StatementTimeout, Wait, Yes, grouped
from memctl.errors import ConfigError, ExitCode
from memctl.migration.guard import Guard

if TYPE_CHECKING:
    from memctl.migration.runner import RevisionInfo

app = typer.Typer(help="Upgrade the schema (to head by default), or print the SQL with --sql. "
                       "Exit 75 when another migrator holds the lock past --wait, or a table lock "
                       "was not had within --lock-timeout after --retries.",
                  invoke_without_command=True)

_DEFAULT = Guard()
# Options of `migrate` that a subcommand given after them uses too; any other one is an error there.
_CARRIED = {"check": {"database_url", "connect_timeout", "json_"}, "lint": {"json_"}, "heads": {"json_"},
            "show": {"json_"}}


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


Sql = Annotated[bool, typer.Option(
    "--sql", help="Print the SQL instead of running it (no database). Apply it with psql -f, not psql -1 "
                  "(0009 and 0018 build indexes CONCURRENTLY), then record it with memctl stamp.")]


def _carried(ctx: typer.Context, db: Database, json_: bool) -> tuple[Database, bool]:
    """``db`` and ``json_`` of a subcommand, completed by the ones given before it (``migrate --json check``)."""
    parent = (ctx.parent.obj if ctx.parent is not None else None) or {}
    merged = Database(db.database_url or parent.get("database_url"),
                      db.connect_timeout or parent.get("connect_timeout"))
    return merged, json_ or bool(parent.get("json_"))


@app.callback()
@grouped(GuardOptions, Database)
def migrate(
    options: GuardOptions,
    db: Database,
    ctx: typer.Context,
    to: Annotated[str, typer.Option(
        "--to", metavar="REV",
        help="Target revision (id, prefix, head, head-1 ...); with --sql also FROM:TO.")] = "head",
    sql: Sql = False,
    json_: Json = False,
) -> None:
    """Upgrade the database schema to a revision (default: head), one migrator at a time."""
    if ctx.invoked_subcommand is not None:
        current_run().command = f"{ctx.info_name} {ctx.invoked_subcommand}"  # the JSON record names the subcommand
        # typer ships its own copy of click: compare the source by name, not by enum identity
        given = {n for n in ctx.params if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"}
        misplaced = given - _CARRIED.get(ctx.invoked_subcommand, set())
        if misplaced:
            names = ", ".join(sorted("--" + n.rstrip("_").replace("_", "-") for n in misplaced))
            raise fail(ConfigError(f"{names} apply to memctl migrate itself, not to migrate {ctx.invoked_subcommand}"))
        ctx.obj = {n: ctx.params[n] for n in given}
        return
    from memctl.migration import runner
    from memctl.migration.offline import upgrade_sql

    guard = options.guard()
    if sql:
        typer.echo(run_plain(lambda: upgrade_sql(to, guard=guard)), nl=False)
        return
    finish(run_with_engine(db, lambda engine, _url: runner.upgrade(engine, to, guard)), as_json=json_)


@app.command("check")
@grouped(Database)
def check(db: Database, ctx: typer.Context, json_: Json = False) -> None:
    """For CI: one head, every revision downgrades, base->head->base->head leaves the same catalog,
    models match head (verify-schema), squawk lint clean. Runs on a private embedded server of its
    own (no credentials needed); with --database-url, on a scratch database of that server (the
    role needs CREATEDB). Exit 0/1."""
    import asyncio

    from memctl.migration.check import migrate_check, migrate_check_private

    db, json_ = _carried(ctx, db, json_)
    with progress_bar() as progress:
        if db.database_url is None:
            result = run_plain(lambda: asyncio.run(migrate_check_private(progress=progress)))
        else:
            result = run_with_engine(db, lambda engine, url: migrate_check(engine, url, progress=progress))
    finish(result, result.clean, as_json=json_)


@app.command("lint")
def lint_cmd(ctx: typer.Context, json_: Json = False) -> None:
    """Lint the SQL every revision emits (--sql mode) with squawk. No database. Exit 0 clean, 1 findings."""
    from memctl.migration.lint import lint

    _db, json_ = _carried(ctx, Database(), json_)
    result = run_plain(lint)
    finish(result, result.clean, as_json=json_)


@app.command("heads")
def heads_cmd(ctx: typer.Context, json_: Json = False) -> None:
    """The head revision(s) of the chain. No database."""
    from memctl.migration.offline import heads

    _db, json_ = _carried(ctx, Database(), json_)
    finish(run_plain(heads), as_json=json_)


@app.command("show")
def show_cmd(ctx: typer.Context, revision: Annotated[str, typer.Argument(
        metavar="REV", help="Revision id, prefix, head or a relative form (head-1).")], json_: Json = False) -> None:
    """One revision: parent, file, SHA-256 (what an applied database records), description. No database."""
    from memctl.migration.offline import show

    _db, json_ = _carried(ctx, Database(), json_)
    finish(run_plain(lambda: show(revision)), as_json=json_)


@grouped(GuardOptions, Database)
def downgrade(
    options: GuardOptions,
    db: Database,
    revision: Annotated[str, typer.Argument(
        metavar="REV", help="Target revision ('base' removes everything; head-1 one step down); with --sql "
                            "also FROM:TO.")],
    sql: Sql = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run",
        help="Say what would be undone and the rows of every table it would drop; change nothing.")] = False,
    yes: Yes = False,
    json_: Json = False,
) -> None:
    """Downgrade the schema to REV ('base' drops every object of agent_memory, data included).
    It lists the rows of every table it would drop, in the question, in its result and with --dry-run."""
    from memctl.cli import render
    from memctl.migration import runner
    from memctl.migration.offline import downgrade_sql

    guard = options.guard()
    if sql:
        typer.echo(run_plain(lambda: downgrade_sql(revision, guard=guard)), nl=False)
        return
    if dry_run:
        finish(run_with_engine(db, lambda engine, _url: runner.downgrade(engine, revision, guard, dry_run=True)),
               as_json=json_)
        return
    if not yes:
        lost = run_with_engine(db, lambda engine, _url: runner.rows_lost(engine, revision))
        tables = ", ".join(f"{t} ({n:,} rows)" for t, n in lost.items()) or "none"
        if not confirm(f"Downgrade to {revision}? These tables are dropped with their rows: {tables}"):
            render.error("aborted: nothing changed")
            raise typer.Exit(ExitCode.ABORTED)
    finish(run_with_engine(db, lambda engine, _url: runner.downgrade(engine, revision, guard)), as_json=json_)


@grouped(Database)
def stamp(
    db: Database,
    revision: Annotated[str, typer.Argument(metavar="REV", help="The revision the database is at (usually head).")],
    json_: Json = False,
) -> None:
    """Record REV as the database's revision, with the checksums of every revision up to it, running
    nothing (alembic stamp): after applying migrate --sql output with psql."""
    from memctl.migration import runner

    finish(run_with_engine(db, lambda engine, _url: runner.stamp(engine, revision)), as_json=json_)


@grouped(Database)
def current(db: Database, json_: Json = False) -> None:
    """Show the database's revision and the head."""
    from memctl.cli import render
    from memctl.migration import runner

    async def fn(engine, _url) -> list[RevisionInfo]:
        return [r for r in await runner.history(engine) if r.is_current or r.is_head]

    rows = run_with_engine(db, fn)
    if not any(r.is_current for r in rows):
        render.note("the database is at base (not migrated)")
    finish(rows, as_json=json_)


@grouped(Database)
def history(db: Database, json_: Json = False) -> None:
    """List every revision, oldest first; with a database (--database-url, MEMCTL_DATABASE_URL,
    DATABASE_URL), which are applied. Without one, no server is started."""
    import asyncio

    from memctl.cli import render
    from memctl.config import Settings
    from memctl.migration import runner

    settings = run_plain(lambda: Settings.resolve(db.database_url, db.connect_timeout))
    if settings.database_url is None:
        render.note("memctl: no database given: the revision files only (applied not shown)")
        finish(asyncio.run(runner.history(None)), as_json=json_)
        return
    finish(run_with_engine(db, lambda engine, _url: runner.history(engine)), as_json=json_)
