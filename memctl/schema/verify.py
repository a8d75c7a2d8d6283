"""``verify-schema``: prove the live database is what the code says it is.

Compares the live catalog of ``agent_memory`` with a reference built from the models (see
:mod:`memctl.schema.reference`), and checks what a diff cannot see: the pgvector extension
(0.8 or newer, schema.md "Minimum server"), the Alembic revision (must be head) and the
checksums of the applied revision files (none edited since applied). ``target="citus"`` adds
the distribution checks of :mod:`memctl.schema.citus`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.config import mask_url
from memctl.db.privileges import require_catalog_reads
from memctl.errors import ConfigError
from memctl.migration import runner as migrate
from memctl.migration.revisions import VERSION_TABLE_SCHEMA
from memctl.models import SCHEMA, ModelSpec, ddl, hnsw_index_name
from memctl.models.embeddings import EMBEDDING_TABLES
from memctl.models.enums import ModelState
from memctl.schema.app_role import app_role_findings
from memctl.schema.catalog import Snapshot, read_snapshot
from memctl.schema.citus import citus_findings
from memctl.schema.diff import Finding, diff, qualified
from memctl.schema.integrity import checksum_findings
from memctl.schema.reference import reference_snapshot, registered_models

MIN_PGVECTOR = (0, 8, 0)  # iterative index scans (schema.md "Minimum server")
TARGETS = ("postgres", "citus")


@dataclass
class VerifyResult:
    """Outcome of verify-schema: the findings (empty = clean) and what was compared.

    ``checked`` counts the expected objects per category (tables, columns, indexes ...).
    """

    database: str
    target: str
    revision: str | None
    head: str
    pgvector: str | None
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when nothing drifted."""
        return not self.findings


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


async def live_snapshot(engine: AsyncEngine) -> Snapshot:
    """Snapshot of the live ``agent_memory`` schema."""
    async with engine.connect() as conn:
        return await read_snapshot(conn, SCHEMA)


def _without_grants_to(snap: Snapshot, roles: Sequence[str]) -> None:
    """Drop the ``other_role_privileges`` of ``roles`` from ``snap`` (grants the operator allows)."""
    objects = snap.get("other_role_privileges")
    for name in list(objects):
        for role in roles:
            objects[name].pop(role, None)
        if not objects[name]:
            del objects[name]


def _without_transitional_indexes(snap: Snapshot, models: Sequence[ModelSpec]) -> None:
    """Drop from ``snap`` the HNSW indexes of models that are not ready: a registered model's index
    may be missing or still building, a retiring one's may be gone (revision 0013). A ready model's
    index stays, so a missing or INVALID one is a finding."""
    indexes = snap.get("index")
    for model in models:
        if model.state != ModelState.READY:
            for table in EMBEDDING_TABLES:
                indexes.pop(f"{table}.{hnsw_index_name(table, model.id)}", None)


async def _require_roles(conn, roles: Sequence[str]) -> None:
    known = set((await conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:r)"),
                                    {"r": list(roles)})).scalars())
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ConfigError(f"--allow-grants-to: no role named {', '.join(map(repr, unknown))} on this server")


async def verify_schema(engine: AsyncEngine, url: URL, target: str = "postgres",
                        app_role: str | None = None, allow_grants_to: Sequence[str] = ()) -> VerifyResult:
    """Compare the live schema with the models; every difference is a :class:`Finding`.

    ``url`` is the live database's URL (named in the result, masked); the expected catalog is built
    in a rolled-back scratch schema of the same database (needs CREATE on the database).
    ``target``: 'postgres' (default) or 'citus' (also report what blocks distributing by org_id).
    ``app_role``: the role the application uses (it and its members must not escape RLS; default
    memory_app, ``ddl.APP_ROLE``).
    ``allow_grants_to``: roles other than memctl's whose grants in the schema are the operator's own
    business (not reported as ``other_role_privileges``); grants to memory_app, memctl_admin and PUBLIC
    are always compared.
    Raises :class:`~memctl.errors.ConfigError` for an unknown target or role and
    :class:`~memctl.errors.DatabaseUnavailable` if the reference cannot be built.
    """
    app_role = ddl.APP_ROLE if app_role is None else app_role
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    await require_catalog_reads(engine, "verify-schema")
    head = migrate.head_revision()
    revision = await migrate.current_revision(engine)
    async with engine.connect() as conn:
        pgvector = (await conn.execute(text(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"))).scalar()
        models = await registered_models(conn)
        await _require_roles(conn, allow_grants_to)
        has_schema = (await conn.execute(text(
            "SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": SCHEMA})).scalar()
        integrity = await checksum_findings(conn, revision)
        citus = await citus_findings(conn, SCHEMA) if target == "citus" and has_schema else []
        roles = await app_role_findings(conn, SCHEMA, app_role) if has_schema else []
    result = VerifyResult(mask_url(url), target, revision, head, pgvector)
    if revision != head:
        result.findings.append(Finding("revision", qualified(VERSION_TABLE_SCHEMA, "alembic_version"), head, revision))
    if pgvector is None or _version_tuple(pgvector) < MIN_PGVECTOR:
        result.findings.append(Finding("extension", qualified("pg_extension", "vector"), ">= 0.8.0", pgvector))
    result.findings += integrity
    if not has_schema:
        result.findings.append(Finding("schema", qualified("pg_namespace", SCHEMA), "present", None))
        return result
    expected = await reference_snapshot(engine, models, head)
    actual = await live_snapshot(engine)
    _without_grants_to(actual, allow_grants_to)
    _without_transitional_indexes(actual, models)
    result.findings += diff(expected, actual) + roles + citus
    result.checked = dict(Counter({cat: len(objs) for cat, objs in expected.objects.items()}))
    return result
