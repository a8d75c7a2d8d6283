"""Bring the schema to a revision, or back, safely under load.

Alembic runs the revisions; memctl adds what a deploy against a live database needs:

- one migrator at a time: a session-level advisory lock (:mod:`memctl.db.locks`); a second run
  waits ``Guard.wait_s`` then raises :class:`LockHeld` (exit 75), or finds the database at
  head and does nothing;
- bounded locks: every revision runs with ``lock_timeout`` and ``statement_timeout`` set on its
  connection; a revision that times out on a lock is rolled back and retried with exponential
  backoff, then :class:`LockTimeout` names the table and the blocking session;
- atomic revisions: one transaction per revision (``transaction_per_migration`` in env.py);
  before upgrading, INVALID indexes left by a failed concurrent build are rebuilt
  (``REINDEX INDEX CONCURRENTLY``) and leftover ``_ccnew``/``_ccold`` copies dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.db.blockers import BlockerWatch
from memctl.db.engine import LOCK_NOT_AVAILABLE, first_error_line, pg_ms, sqlstate
from memctl.db.indexes import repair_invalid_indexes
from memctl.db.locks import advisory_lock
from memctl.db.privileges import require_migration_privileges
from memctl.errors import ConfigError, LockTimeout, MigrationFailed
from memctl.migration.guard import Guard
from memctl.migration.revisions import (
    VERSION_TABLE_SCHEMA,
    alembic_config,
    head_revision,
    ordered,
    path_between,
    record_checksums,
    resolve,
    script_directory,
)

# Revisions with steps outside their transaction (CREATE/DROP INDEX CONCURRENTLY in autocommit blocks):
# a failure rolls back only the transactional part, and a re-run goes on from the finished steps.
PARTLY_TRANSACTIONAL = {"0009", "0018"}


def _undone(revision: str) -> str:
    """How much of a failed ``revision`` was rolled back, for the error line."""
    if revision in PARTLY_TRANSACTIONAL:
        return ("its transaction was rolled back (its CONCURRENTLY steps run outside it and may be done: "
                "a re-run goes on from them)")
    return "was rolled back"

LOCK_NAME = "migrate"

__all__ = ["Guard", "MigrationResult", "RevisionInfo", "current_revision", "downgrade", "head_revision",
           "history", "stamp", "upgrade"]


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of the chain: id, parent, its first docstring line, and whether it is head / applied."""

    revision: str
    down_revision: str | None
    description: str
    is_head: bool
    is_current: bool
    applied: bool


@dataclass(frozen=True)
class MigrationResult:
    """Outcome of an upgrade or downgrade: the revision before and after, ``revisions`` run in the
    order they ran (applied by an upgrade, undone by a downgrade), how many attempts the lock
    timeouts cost, the INVALID indexes rebuilt or dropped first, and for a downgrade the rows of
    each table it dropped (table -> rows, counted just before)."""

    direction: str
    before: str | None
    after: str | None
    revisions: list[str]
    attempts: int = 1
    repaired: list[str] = field(default_factory=list)
    rows_lost: dict[str, int] = field(default_factory=dict)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: not migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(
                c, opts={"version_table_schema": VERSION_TABLE_SCHEMA}).get_current_revision())


def _root(exc: BaseException) -> BaseException:
    """The database error behind ``exc`` (Alembic's cleanup after a lost connection raises a second,
    less telling error, e.g. PendingRollbackError, with the original as its context)."""
    found, seen = exc, exc
    while seen is not None:  # the earliest database error in the chain is the one that started it
        if isinstance(seen, DBAPIError):
            found = seen
        seen = seen.__cause__ or seen.__context__
    return found


async def _set_session(conn: AsyncConnection, guard: Guard) -> int:
    """Apply the guard's timeouts to this session (they outlive each revision's commit); its pid."""
    pid = (await conn.execute(text(
        "SELECT pg_backend_pid() FROM (SELECT set_config('lock_timeout', :l, false), "
        "set_config('statement_timeout', :s, false), set_config('application_name', 'memctl migrate', false)) x"),
        {"l": pg_ms(guard.lock_timeout_s), "s": pg_ms(guard.statement_timeout_s)})).scalar()
    await conn.commit()
    return pid


def _run(sync_conn, cfg: Config, fn, target: str) -> None:
    cfg.attributes["connection"] = sync_conn  # env.py runs the revisions on this connection
    fn(cfg, target)


async def _attempt(engine: AsyncEngine, cfg: Config, fn, target: str, guard: Guard) -> list:
    """Run one alembic command; return [] on success, or the blockers seen when a lock timed out."""
    async with engine.connect() as conn:
        pid = await _set_session(conn, guard)
        try:
            async with BlockerWatch(engine, pid) as watch:
                await conn.run_sync(_run, cfg, fn, target)
                await conn.commit()
            return []
        except SQLAlchemyError as exc:
            if not isinstance(exc, DBAPIError) or sqlstate(exc) != LOCK_NOT_AVAILABLE:
                with contextlib.suppress(Exception):  # never hand a broken session back to the pool
                    await conn.invalidate()
                raise
            return watch.last or [f"(blocker gone before it could be observed: {str(exc.orig).strip()})"]
        finally:
            with contextlib.suppress(Exception):  # the session may be dead (terminated backend)
                await conn.rollback()
                await conn.exec_driver_sql("RESET ALL")
                await conn.commit()


async def _guarded(engine: AsyncEngine, cfg: Config, fn, target: str, guard: Guard,
                   script_location: Path | None, repaired: list[str] | None = None) -> int:
    """Run ``fn`` with retries on lock timeout; the number of attempts. Raises LockTimeout.

    With ``repaired`` (upgrade), INVALID indexes are repaired before every attempt and what was
    done is appended to it: a concurrent build that failed on a lock timeout is redone cleanly.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            if repaired is not None:
                repaired += await repair_invalid_indexes(engine, lock_timeout_s=guard.lock_timeout_s)
            blockers = await _attempt(engine, cfg, fn, target, guard)
        except CommandError as exc:
            raise ConfigError(f"alembic: {exc}") from None
        except SQLAlchemyError as exc:
            if isinstance(exc, DBAPIError) and sqlstate(exc) == LOCK_NOT_AVAILABLE:  # the repair waited too long
                blockers = [f"the INVALID-index repair waited past lock_timeout: {first_error_line(exc)}"]
            else:
                nxt, at = await _position(engine, target, fn is command.upgrade, script_location)
                raise MigrationFailed(f"revision {nxt} failed and {_undone(nxt)}: {first_error_line(_root(exc))}; "
                                      f"the database is at {at or 'base'}") from exc
        if not blockers:
            return attempt
        if attempt > guard.retries:
            nxt, at = await _position(engine, target, fn is command.upgrade, script_location)
            who = "; ".join(b if isinstance(b, str) else b.describe() for b in blockers)
            raise LockTimeout(
                f"revision {nxt} could not get its lock within lock_timeout {guard.lock_timeout_s:g} s "
                f"on {attempt} attempts: {who}. "
                + ("Nothing of it was applied" if nxt not in PARTLY_TRANSACTIONAL else
                   "Its transaction was not applied (its CONCURRENTLY steps may be: a re-run goes on)")
                + f"; the database is at {at or 'base'}")
        await asyncio.sleep(guard.backoff_s * 2 ** (attempt - 1))


# What the data must satisfy before a revision can be undone: revision -> (a query counting the rows
# that would make its downgrade fail half-way, what they are). 0009 made token_hash unique per
# organisation; its downgrade restores UNIQUE (token_hash), which a hash shared by two organisations
# breaks (and a failed concurrent build would leave an INVALID index behind).
DOWNGRADE_NEEDS = {
    "0009": ("SELECT count(*) FROM (SELECT token_hash FROM agent_memory.api_tokens GROUP BY token_hash "
             "HAVING count(*) > 1) shared", "api token hash(es) used by more than one organisation (undoing 0009 "
             "restores UNIQUE (token_hash))"),
    "0013": ("SELECT (SELECT count(*) FROM agent_memory.organization_models) + (SELECT count(*) FROM "
             "agent_memory.embedding_models WHERE state <> 'ready') + (SELECT count(*) FROM "
             "agent_memory.memory_embeddings e JOIN agent_memory.memories m ON m.org_id = e.org_id "
             "AND m.id = e.memory_id WHERE e.content_hash <> m.content_hash)",
             "organisation model choice(s), model(s) not ready, or stale embedding(s): undoing 0013 would forget them "
             "(organisations would move to the global default, a model without its index would be drift, a stale "
             "vector would pass for current); memctl models set-default / index / retire / backfill --stale first"),
}


async def _check_downgrade_data(engine: AsyncEngine, undone: list[str], target: str) -> None:
    """Raise ConfigError, before anything changes, when the data stops a revision of ``undone``
    from being undone (:data:`DOWNGRADE_NEEDS`), with the offending rows counted."""
    async with engine.connect() as conn:
        for revision in reversed(undone):
            if revision in DOWNGRADE_NEEDS:
                sql, what = DOWNGRADE_NEEDS[revision]
                count = (await conn.execute(text(sql))).scalar()
                if count:
                    raise ConfigError(f"downgrade to {target} refused, nothing changed: {count} {what}")


async def _position(engine: AsyncEngine, target: str, up: bool, script_location: Path | None) -> tuple[str, str | None]:
    """(the revision that was being applied or undone, the revision the database is at)."""
    at = await current_revision(engine)
    if not up:
        return at or target, at
    revs = ordered(script_location)
    return (revs[revs.index(at) + 1] if at else revs[0]), at


async def upgrade(engine: AsyncEngine, target: str = "head", guard: Guard = Guard(),
                  script_location: Path | None = None) -> MigrationResult:
    """Upgrade the database to ``target`` (default head) under the migrate lock and ``guard``.

    Raises NotFound (unknown revision), PrivilegeMissing (the role cannot create the extension,
    the roles or the schema: the message lists the administrator's SQL, before anything runs),
    LockHeld (another migrator, exit 75), LockTimeout (a table lock not had within lock_timeout
    after the retries, exit 75).
    """
    after = resolve(target, script_location)
    cfg = alembic_config(script_location)
    async with advisory_lock(engine, LOCK_NAME, guard.wait_s):
        before = await current_revision(engine)
        if before != after:
            await require_migration_privileges(engine)
        repaired: list[str] = []
        attempts = await _guarded(engine, cfg, command.upgrade, after or "base", guard, script_location, repaired)
        now = await current_revision(engine)
    applied = path_between(before, after, script_location) if before != now else []
    return MigrationResult("upgrade", before, now, applied, attempts, repaired)


_DROPPED_TABLE = re.compile(r"DROP TABLE (?:IF EXISTS )?agent_memory\.(\w+)")


async def rows_lost(engine: AsyncEngine, target: str, script_location: Path | None = None) -> dict[str, int]:
    """table -> rows it holds now, for every table a downgrade to ``target`` would drop (read from
    the undone revisions' DOWNGRADE statements): what the prompt, the result and ``--dry-run``
    show. Counts are what the role sees (RLS applies unless it sees every row)."""
    after = resolve(target, script_location)
    before = await current_revision(engine)
    chain = [None, *ordered(script_location)]
    if chain.index(after) >= chain.index(before):
        return {}
    script = script_directory(script_location)
    tables = [t for rev in path_between(after, before, script_location)
              for stmt in getattr(script.get_revision(rev).module, "DOWNGRADE", [])
              for t in _DROPPED_TABLE.findall(stmt)]
    counts: dict[str, int] = {}
    async with engine.connect() as conn:
        for table in sorted(set(tables)):
            if (await conn.execute(text("SELECT to_regclass(:t)"), {"t": f"agent_memory.{table}"})).scalar():
                counts[table] = (await conn.execute(text(f'SELECT count(*) FROM agent_memory."{table}"'))).scalar()
    return counts


async def downgrade(engine: AsyncEngine, target: str, guard: Guard = Guard(),
                    script_location: Path | None = None, dry_run: bool = False) -> MigrationResult:
    """Downgrade the database to ``target`` ('base' removes every object of agent_memory); with
    ``dry_run`` only say what would be undone and the rows of every table it would drop.

    Same lock and guard as :func:`upgrade`, same errors.
    """
    after = resolve(target, script_location)
    cfg = alembic_config(script_location)
    async with advisory_lock(engine, LOCK_NAME, guard.wait_s):
        before = await current_revision(engine)
        if before == after:
            return MigrationResult("downgrade", before, before, [], 0)
        await require_migration_privileges(engine, "memctl downgrade")
        order = [None, *ordered(script_location)]
        if order.index(after) > order.index(before):
            raise ConfigError(f"{target} is above the current revision {before or 'base'}: "
                              "downgrade goes down (use memctl migrate to go up)")
        await _check_downgrade_data(engine, path_between(after, before, script_location), target)
        lost = await rows_lost(engine, target, script_location)
        if dry_run:
            return MigrationResult("downgrade --dry-run", before, before,
                                   list(reversed(path_between(after, before, script_location))), 0, rows_lost=lost)
        attempts = await _guarded(engine, cfg, command.downgrade, after or "base", guard, script_location)
        now = await current_revision(engine)
    undone = list(reversed(path_between(after, before, script_location))) if before != now else []
    return MigrationResult("downgrade", before, now, undone, attempts, rows_lost=lost if undone else {})


def _stamp(sync_conn, cfg: Config, target: str | None, script_location: Path | None) -> None:
    cfg.attributes["connection"] = sync_conn
    command.stamp(cfg, target or "base", purge=True)
    record_checksums(sync_conn, path_between(None, target, script_location), script_location)


async def stamp(engine: AsyncEngine, target: str, guard: Guard = Guard(),
                script_location: Path | None = None) -> MigrationResult:
    """Record that the database is at ``target`` without running anything (``alembic stamp``), with
    the checksums of every revision up to it: after applying ``migrate --sql`` output by hand.
    One transaction, under the migrate lock. Raises NotFound, LockHeld."""
    after = resolve(target, script_location)
    cfg = alembic_config(script_location)
    async with advisory_lock(engine, LOCK_NAME, guard.wait_s):
        before = await current_revision(engine)
        await require_migration_privileges(engine, "memctl stamp")
        async with engine.connect() as conn:
            await conn.run_sync(_stamp, cfg, after, script_location)
            await conn.commit()
        now = await current_revision(engine)
    return MigrationResult("stamp", before, now, path_between(None, after, script_location), 1)


async def history(engine: AsyncEngine | None) -> list[RevisionInfo]:
    """Every revision, oldest first, with head / current / applied flags (applied needs ``engine``)."""
    script = script_directory()
    current = await current_revision(engine) if engine is not None else None
    revs = list(reversed(list(script.walk_revisions())))
    ids = [r.revision for r in revs]
    cut = ids.index(current) if current in ids else -1
    head = script.get_current_head()
    return [
        RevisionInfo(
            revision=r.revision,
            down_revision=r.down_revision if isinstance(r.down_revision, str) or r.down_revision is None
            else ",".join(r.down_revision),
            description=(r.doc or "").splitlines()[0] if r.doc else "",
            is_head=r.revision == head,
            is_current=r.revision == current,
            applied=i <= cut,
        )
        for i, r in enumerate(revs)
    ]
