"""The expected catalog: the models' DDL applied in a scratch schema of the live database, snapshotted,
and rolled back.

Comparing catalog with catalog lets PostgreSQL itself normalise every expression (CHECKs,
defaults, predicates, policies), so no deparsing rule of ours can disagree with the server's.
The scratch schema ``memctl_ref_<random>`` lives inside one transaction that is always rolled
back: nothing is left behind, and the role needs only CREATE on the database (which its owner
has), not CREATEDB or superuser. Every statement qualifies its objects with the schema, so the
statements are written for ``agent_memory`` and re-pointed at the scratch schema
(:func:`in_schema`); the snapshot's deparsed text (policies, generated columns, function
bodies, foreign keys) is pointed back before the comparison.

A built reference is kept for the life of the process, keyed on everything it is built from
(:func:`reference_key`): the DDL text of the models, the registered models, the head revision
and the server's and pgvector's versions. A change to any of them is a new key, so a cached
reference can never be stale; the same key means the same statements on the same server.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable, sort_tables_and_constraints

from memctl.config import mask_url
from memctl.errors import DatabaseUnavailable
from memctl.models import SCHEMA, ModelSpec, ddl, metadata
from memctl.models.embeddings import EMBEDDING_TABLES, MODEL_COLUMNS, hnsw_index_ddl
from memctl.models.enums import ModelState
from memctl.schema.catalog import Snapshot, read_snapshot

SCRATCH_PREFIX = "memctl_ref_"
_SCHEMA_WORD = re.compile(rf"\b{SCHEMA}\b")


def in_schema(statement: str, schema: str) -> str:
    """``statement`` with every mention of the ``agent_memory`` schema pointed at ``schema``."""
    return _SCHEMA_WORD.sub(schema, statement)


def model_statements_before_tables() -> list[str]:
    """Extension, schema, roles and functions the tables depend on (revision 0001's objects)."""
    return [*ddl.CREATE_SCHEMA, ddl.CREATE_ROLE, ddl.CREATE_ADMIN_ROLE, ddl.CURRENT_ORG_ID, ddl.SHA256_HEX,
            ddl.TOUCH_UPDATED_AT]


def model_statements_after_tables() -> list[str]:
    """Triggers, RLS policies and grants, applied once the tables exist."""
    stmts = [ddl.RECORD_MEMORY_VERSION, ddl.VERSION_TRIGGER_SQL, ddl.SYNC_SEARCHABLE, ddl.SYNC_SEARCHABLE_TRIGGER_SQL,
             ddl.EMBEDDING_SEARCHABLE, ddl.EMBEDDING_SEARCHABLE_TRIGGER_SQL, *ddl.freeze_hash_statements(),
             ddl.ERASE_USER_DERIVED, ddl.ERASE_USER_TRIGGER_SQL]
    stmts += [ddl.touch_trigger(t) for t in ddl.tables_with_updated_at()]
    for t in sorted(set(ddl.tenant_tables()) | {"organizations"}):
        stmts += ddl.rls_statements(t)
    return stmts + ddl.grant_statements()


def hnsw_statements(models: Sequence[ModelSpec], dialect: Dialect) -> list[str]:
    """One CREATE INDEX per (embedding table, ready model). A registered model (backfilling) or a
    retiring one may have its index or not (revision 0013): verify-schema leaves those out."""
    return [hnsw_index_ddl(dialect, t, m) for m in models if m.state == ModelState.READY for t in EMBEDDING_TABLES]


def _model_row(m: ModelSpec) -> str:
    values = ", ".join(str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
                       for v in (m.id, m.name, m.dim, m.distance, m.index_storage, m.hnsw_m, m.hnsw_ef_construction,
                                 m.state))
    return (f"INSERT INTO {SCHEMA}.embedding_models (id, name, dim, distance, index_storage, hnsw_m, "
            f"hnsw_ef_construction, state) OVERRIDING SYSTEM VALUE VALUES ({values})")


def model_statements(models: Sequence[ModelSpec], dialect: Dialect) -> list[str]:
    """Every statement that builds the expected schema, in order, for ``agent_memory``: functions,
    each table with its indexes (in ``metadata.create_all``'s order), the rows of ``models`` in
    embedding_models, their HNSW indexes, then triggers, policies and grants."""
    tables = []
    # As metadata.create_all orders them: the foreign keys of a cycle (task_contexts <-> stage_memories)
    # come last, as ALTER TABLE ... ADD CONSTRAINT.
    for table, fks in sort_tables_and_constraints(metadata.sorted_tables):
        if table is None:
            tables += [str(AddConstraint(fk).compile(dialect=dialect)) for fk in fks]
            continue
        tables.append(str(CreateTable(table, include_foreign_key_constraints=fks).compile(dialect=dialect)))
        tables += [str(CreateIndex(i).compile(dialect=dialect)) for i in sorted(table.indexes, key=lambda i: i.name)]
    return [*model_statements_before_tables(), *tables, *map(_model_row, models), *hnsw_statements(models, dialect),
            *model_statements_after_tables()]


async def registered_models(conn: AsyncConnection) -> list[ModelSpec]:
    """The rows of embedding_models as :class:`ModelSpec` (empty if the table does not exist; every
    model ready below revision 0013, which added the state)."""
    exists = (await conn.execute(text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.embedding_models"})).scalar()
    if exists is None:
        return []
    has_state = (await conn.execute(text(
        "SELECT 1 FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attname = 'state' AND NOT attisdropped"),
        {"t": f"{SCHEMA}.embedding_models"})).scalar()
    columns = MODEL_COLUMNS if has_state else MODEL_COLUMNS.replace(", state", "")  # below revision 0013: ready
    rows = (await conn.execute(text(
        f"SELECT {columns} FROM {SCHEMA}.embedding_models ORDER BY id"))).mappings().all()
    return [ModelSpec(**r) for r in rows]


async def reference_key(conn: AsyncConnection, models: Sequence[ModelSpec], head: str | None) -> str:
    """SHA-256 (hex) of the reference's inputs: the model statements, ``head``, and the versions of
    the server and of pgvector as ``conn`` sees them."""
    versions = (await conn.execute(text(
        "SELECT current_setting('server_version_num'), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'vector')"))).one()
    digest = hashlib.sha256()
    for part in [*model_statements(models, conn.dialect), str(head), *map(str, versions)]:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


_CACHE: dict[str, Snapshot] = {}


async def reference_snapshot(engine: AsyncEngine, models: Sequence[ModelSpec], head: str | None = None) -> Snapshot:
    """Snapshot of the schema the models define, with one HNSW index per model in ``models``, built
    in a rolled-back scratch schema of ``engine``'s database; ``head`` is part of the cache key.
    Served from the process's cache when nothing it is built from changed. Raises
    :class:`~memctl.errors.DatabaseUnavailable` naming the privilege when the role may not create
    a schema in the database (CREATE on the database)."""
    async with engine.connect() as conn:
        key = await reference_key(conn, models, head)
    if key not in _CACHE:
        _CACHE[key] = await _build(engine, models)
    return copy.deepcopy(_CACHE[key])


def _pointed_back(value: Any, scratch: str) -> Any:
    if isinstance(value, str):
        return value.replace(scratch, SCHEMA)
    if isinstance(value, list):
        return [_pointed_back(v, scratch) for v in value]
    if isinstance(value, dict):
        return {_pointed_back(k, scratch): _pointed_back(v, scratch) for k, v in value.items()}
    return value


async def _build(engine: AsyncEngine, models: Sequence[ModelSpec]) -> Snapshot:
    scratch = SCRATCH_PREFIX + secrets.token_hex(6)
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT current_user, current_database(), has_database_privilege(current_database(), 'CREATE')"))).one()
        if not row[2]:
            raise DatabaseUnavailable(
                f"verify-schema builds the expected catalog in a scratch schema of {mask_url(engine.url)} (rolled "
                f"back): role {row[0]} needs CREATE on database {row[1]}; an administrator runs: "
                f'GRANT CREATE ON DATABASE "{row[1]}" TO "{row[0]}"')
        await conn.rollback()  # end the autobegun transaction of the privilege check
        transaction = await conn.begin()
        try:
            for statement in model_statements(models, conn.dialect):
                await conn.exec_driver_sql(in_schema(statement, scratch))
            snap = await read_snapshot(conn, scratch)
        finally:
            await transaction.rollback()
    return Snapshot(SCHEMA, _pointed_back(snap.objects, scratch))
