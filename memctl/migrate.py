"""Bring the schema to a revision, or back: upgrade/downgrade/current/history over ``alembic.command``.

memctl opens the connection (asyncpg) and hands it to ``migrations/env.py`` through
``Config.attributes["connection"]``; each revision runs in its own transaction.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.errors import ConfigError, NotFound

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


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
    """Outcome of an upgrade or downgrade: revision before and after, and the revisions run in order."""

    direction: str
    before: str | None
    after: str | None
    applied: list[str]


def alembic_config() -> Config:
    """An Alembic Config on memctl's migrations directory (no ini file needed)."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise ConfigError(f"migrations directory not found at {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def script_directory() -> ScriptDirectory:
    """The revision scripts of memctl."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The single head revision id of the chain."""
    return script_directory().get_current_head()


def _resolve(target: str) -> str | None:
    """A revision id for ``target`` ('head', 'base', an id or a unique prefix); NotFound otherwise."""
    if target == "base":
        return None
    try:
        rev = script_directory().get_revision(target)
    except CommandError as exc:
        raise NotFound(f"unknown revision {target!r}: {exc}") from None
    if rev is None:
        raise NotFound(f"unknown revision {target!r}")
    return rev.revision


def _path(before: str | None, after: str | None) -> list[str]:
    """Revision ids strictly after ``before`` up to and including ``after``, oldest first."""
    revs = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
    lo = revs.index(before) + 1 if before else 0
    hi = revs.index(after) + 1 if after else 0
    return revs[lo:hi]


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: not migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(c, opts={"version_table_schema": "public"}).get_current_revision()
        )


def _run(engine_conn, cfg: Config, fn, *args) -> None:
    cfg.attributes["connection"] = engine_conn
    fn(cfg, *args)


async def upgrade(engine: AsyncEngine, target: str = "head") -> MigrationResult:
    """Upgrade the database to ``target`` (default head). Raises NotFound for an unknown revision."""
    after = _resolve(target)
    before = await current_revision(engine)
    cfg = alembic_config()
    async with engine.connect() as conn:
        await conn.run_sync(_run, cfg, command.upgrade, target)
        await conn.commit()
    now = await current_revision(engine)
    return MigrationResult("upgrade", before, now, _path(before, after) if before != now else [])


async def downgrade(engine: AsyncEngine, target: str) -> MigrationResult:
    """Downgrade the database to ``target`` ('base' removes every object of agent_memory)."""
    after = _resolve(target)
    before = await current_revision(engine)
    cfg = alembic_config()
    async with engine.connect() as conn:
        await conn.run_sync(_run, cfg, command.downgrade, target)
        await conn.commit()
    now = await current_revision(engine)
    return MigrationResult("downgrade", before, now,
                           list(reversed(_path(after, before))) if before != now else [])


def upgrade_sql(target: str = "head", start: str | None = None) -> str:
    """The SQL that upgrading from ``start`` (default base) to ``target`` would run; no database used."""
    _resolve(target)
    cfg = alembic_config()
    buf = io.StringIO()
    cfg.output_buffer = buf
    command.upgrade(cfg, f"{start}:{target}" if start else target, sql=True)
    return buf.getvalue()


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
