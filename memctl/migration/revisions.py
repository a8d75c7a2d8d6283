"""The revision directory: Alembic config and script directory, revision order, file checksums.

Every revision file's SHA-256 is recorded in ``public.memctl_revision_checksums`` in the same
transaction that applies the revision (``migrations/env.py`` calls :func:`record_checksum` from
Alembic's ``on_version_apply`` hook) and removed when the revision is downgraded, so
``verify-schema`` can tell a revision file edited after it was applied.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.config import mask_url
from memctl.errors import ConfigError, NotFound, SchemaNotReady


def _migrations_dir() -> Path:
    """The Alembic chain: inside an installed wheel ``memctl/migration/scripts/`` (pyproject maps the
    repository's ``migrations/`` there), in a source checkout or an editable install the top-level
    ``migrations/``. Found from the package's own location, never from the working directory."""
    packaged = Path(__file__).resolve().parent / "scripts"
    return packaged if (packaged / "env.py").is_file() else Path(__file__).resolve().parents[2] / "migrations"


MIGRATIONS_DIR = _migrations_dir()
# alembic_version lives outside agent_memory, so a downgrade to base leaves that schema empty
VERSION_TABLE_SCHEMA = "public"
CHECKSUM_TABLE = "public.memctl_revision_checksums"
_CREATE_CHECKSUMS = (f"CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} (revision TEXT PRIMARY KEY, "
                     "sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")


def alembic_config(script_location: Path | None = None) -> Config:
    """An Alembic Config on memctl's migrations (or on ``script_location``); no ini file needed.

    Raises :class:`ConfigError` when the directory has no ``env.py``.
    """
    location = Path(script_location or MIGRATIONS_DIR)
    if not (location / "env.py").exists():
        raise ConfigError(f"migrations directory not found at {location}")
    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    return cfg


def script_directory(script_location: Path | None = None) -> ScriptDirectory:
    """The revision scripts (memctl's unless ``script_location`` is given), read once per directory
    and process: revision files do not change under a running memctl (``migrate check`` and the
    checksums read the files' bytes themselves)."""
    return _script_directory(str(Path(script_location or MIGRATIONS_DIR).resolve()))


@functools.lru_cache(maxsize=16)
def _script_directory(location: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(Path(location)))


def head_revision(script_location: Path | None = None) -> str:
    """The single head revision id of the chain."""
    return script_directory(script_location).get_current_head()


def ordered(script_location: Path | None = None) -> list[str]:
    """Revision ids from the first to head."""
    return [r.revision for r in reversed(list(script_directory(script_location).walk_revisions()))]


_RELATIVE = re.compile(r"(?P<anchor>.+?)(?P<step>[+-]\d+)")


def resolve(target: str, script_location: Path | None = None) -> str | None:
    """A revision id (None for base) for ``target``: 'head', 'base', an id or a unique prefix, or one
    of them plus or minus a number of revisions in Alembic's form ('head-1', 'base+2', '0005+1').
    Raises NotFound for a name that matches nothing or a step past either end of the chain."""
    if not target.strip():
        raise NotFound("no revision given (an empty name)")
    relative = _RELATIVE.fullmatch(target) if target not in ("head", "base") else None
    if relative:
        chain = [None, *ordered(script_location)]
        at = chain.index(resolve(relative["anchor"], script_location)) + int(relative["step"])
        if not 0 <= at < len(chain):
            raise NotFound(f"revision {target!r} is outside the chain base..{chain[-1]}")
        return chain[at]
    if target == "base":
        return None
    try:
        rev = script_directory(script_location).get_revision(target)
    except CommandError as exc:
        raise NotFound(f"unknown revision {target!r}: {exc}") from None
    if rev is None:
        raise NotFound(f"unknown revision {target!r}")
    return rev.revision


def path_between(before: str | None, after: str | None, script_location: Path | None = None) -> list[str]:
    """Revision ids strictly after ``before`` up to and including ``after``, oldest first."""
    revs = ordered(script_location)
    lo = revs.index(before) + 1 if before else 0
    hi = revs.index(after) + 1 if after else 0
    return revs[lo:hi]


def file_checksum(revision: str, script_location: Path | None = None) -> str:
    """SHA-256 (hex) of the bytes of ``revision``'s file."""
    script = script_directory(script_location).get_revision(revision)
    return hashlib.sha256(Path(script.path).read_bytes()).hexdigest()


def record_checksums(connection: Connection, revisions: list[str], script_location: Path | None = None) -> None:
    """Make ``revisions`` (every revision applied, oldest first) exactly the recorded ones, each
    with its file's SHA-256: what ``memctl stamp`` writes, in the caller's transaction."""
    connection.execute(text(_CREATE_CHECKSUMS))
    connection.execute(text(f"DELETE FROM {CHECKSUM_TABLE} WHERE NOT (revision = ANY(:r))"), {"r": revisions})
    for revision in revisions:
        connection.execute(text(
            f"INSERT INTO {CHECKSUM_TABLE} (revision, sha256) VALUES (:r, :s) "
            "ON CONFLICT (revision) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()"),
            {"r": revision, "s": file_checksum(revision, script_location)})


def record_checksum(connection: Connection, step) -> None:
    """Alembic ``on_version_apply`` hook: record (upgrade) or forget (downgrade) one revision's checksum.

    ``step`` is Alembic's ``MigrationInfo``; runs inside the revision's own transaction.
    """
    connection.execute(text(_CREATE_CHECKSUMS))
    revision = step.up_revision_id
    if step.is_upgrade:
        digest = hashlib.sha256(Path(step.up_revision.path).read_bytes()).hexdigest()
        connection.execute(text(
            f"INSERT INTO {CHECKSUM_TABLE} (revision, sha256) VALUES (:r, :s) "
            "ON CONFLICT (revision) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()"),
            {"r": revision, "s": digest})
    else:
        connection.execute(text(f"DELETE FROM {CHECKSUM_TABLE} WHERE revision = :r"), {"r": revision})


async def ensure_migrated(engine: AsyncEngine, minimum: str | None = None) -> str:
    """The revision the database is at; :class:`SchemaNotReady` naming the database (masked) when it
    is at base, or below ``minimum`` (a revision the command needs, e.g. '0013' for memctl models),
    so a command says so instead of a missing-relation error. Raises PrivilegeMissing when the role
    may not read the revision table."""
    from memctl.db.privileges import require_catalog_reads

    await require_catalog_reads(engine, "this command")
    async with engine.connect() as conn:
        table = f"{VERSION_TABLE_SCHEMA}.alembic_version"
        revision = None
        if (await conn.execute(text("SELECT to_regclass(:t)"), {"t": table})).scalar() is not None:
            revision = (await conn.execute(text(f"SELECT max(version_num) FROM {table}"))).scalar()
    if revision is None:
        raise SchemaNotReady(f"the schema is not migrated in {mask_url(engine.url)} (it is at base): "
                             "run memctl migrate first")
    chain = ordered()
    if minimum is not None and revision in chain and chain.index(revision) < chain.index(minimum):
        raise SchemaNotReady(f"{mask_url(engine.url)} is at revision {revision}; this command needs {minimum} or "
                             f"later: run memctl migrate first")
    return revision


async def stored_checksums(conn: AsyncConnection) -> dict[str, str]:
    """revision -> SHA-256 recorded when it was applied (empty when nothing was recorded)."""
    exists = (await conn.execute(text("SELECT to_regclass(:t)"), {"t": CHECKSUM_TABLE})).scalar()
    if exists is None:
        return {}
    return dict((await conn.execute(text(f"SELECT revision, sha256 FROM {CHECKSUM_TABLE}"))).all())

