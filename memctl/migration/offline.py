"""What needs no database: the SQL of an upgrade or a downgrade (``--sql``), the heads, one revision.

The SQL starts with the guard's ``SET lock_timeout`` / ``SET statement_timeout``. Revision 0009
builds its indexes ``CONCURRENTLY`` in an autocommit block (``COMMIT`` before, ``BEGIN`` after),
so the output is applied with plain ``psql -f``, not ``psql -1`` (one transaction would refuse
``CREATE INDEX CONCURRENTLY``). A revision applied this way records no checksum: ``memctl stamp``
records them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from alembic import command

from memctl.db.engine import pg_ms
from memctl.errors import ConfigError
from memctl.migration.guard import Guard
from memctl.migration.revisions import alembic_config, file_checksum, ordered, resolve, script_directory


def _render(fn, revisions: str, guard: Guard, script_location: Path | None) -> str:
    cfg = alembic_config(script_location)
    cfg.attributes["lock_timeout"] = pg_ms(guard.lock_timeout_s)
    cfg.attributes["statement_timeout"] = pg_ms(guard.statement_timeout_s)
    buf = io.StringIO()
    cfg.output_buffer = buf
    fn(cfg, revisions, sql=True)
    return buf.getvalue()


def _range(spec: str, default_start: str | None, script_location: Path | None) -> tuple[str | None, str | None]:
    start, sep, end = spec.partition(":")
    if not sep:
        start, end = default_start or "base", spec
    return resolve(start, script_location), resolve(end, script_location)


def upgrade_sql(target: str = "head", start: str | None = None, guard: Guard = Guard(),
                script_location: Path | None = None) -> str:
    """The SQL of upgrading to ``target`` ('REV', or 'FROM:TO'; relative forms such as 'head-1'
    allowed) from ``start`` (default base). Raises NotFound, ConfigError (a range going down)."""
    lo, hi = _range(target, start, script_location)
    chain = [None, *ordered(script_location)]
    if chain.index(lo) > chain.index(hi):
        raise ConfigError(f"{lo or 'base'}:{hi or 'base'} goes down: use downgrade --sql")
    return _render(command.upgrade, f"{lo}:{hi}" if lo else (hi or "base"), guard, script_location)


def downgrade_sql(target: str, start: str = "head", guard: Guard = Guard(),
                  script_location: Path | None = None) -> str:
    """The SQL of downgrading to ``target`` ('REV' from ``start``, default head, or 'FROM:TO').
    Raises NotFound, ConfigError (a range going up)."""
    hi, lo = _range(target, start, script_location)
    chain = [None, *ordered(script_location)]
    if chain.index(lo) > chain.index(hi):
        raise ConfigError(f"{hi or 'base'}:{lo or 'base'} goes up: use migrate --sql")
    return _render(command.downgrade, f"{hi or 'base'}:{lo or 'base'}", guard, script_location)


def heads(script_location: Path | None = None) -> list[str]:
    """The head revisions of the chain (one, unless the history branched)."""
    return list(script_directory(script_location).get_heads())


@dataclass(frozen=True)
class RevisionDetail:
    """One revision file: id, parent, its docstring, path, SHA-256 (what the database records when
    it is applied) and whether it builds indexes CONCURRENTLY outside a transaction."""

    revision: str
    down_revision: str | None
    is_head: bool
    path: str
    sha256: str
    concurrent: bool
    doc: str


def show(target: str, script_location: Path | None = None) -> RevisionDetail:
    """The revision ``target`` names (id, prefix or relative form). Raises NotFound (base has no file)."""
    rev = resolve(target, script_location)
    if rev is None:
        raise ConfigError("base is the empty database, not a revision file")
    script = script_directory(script_location).get_revision(rev)
    return RevisionDetail(rev, script.down_revision, rev == script_directory(script_location).get_current_head(),
                          str(script.path), file_checksum(rev, script_location),
                          bool(getattr(script.module, "UPGRADE_CONCURRENTLY", None)), (script.doc or "").strip())
