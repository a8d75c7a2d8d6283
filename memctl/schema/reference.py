"""The expected catalog: the models' DDL applied to a scratch database, then snapshotted.

Comparing catalog with catalog lets PostgreSQL itself normalise every expression (CHECKs,
defaults, predicates, policies), so no deparsing rule of ours can disagree with the server's.
The scratch database ``memctl_ref_<random>`` is created on the same server and always dropped.

A built reference is kept for the life of the process, keyed on everything it is built from
(:func:`reference_key`): the DDL text of the models, the registered models, the head revision
and the server's and pgvector's versions. A change to any of them is a new key, so a cached
reference can never be stale; the same key means the same statements on the same server.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from memctl.db.engine import make_engine
from memctl.db.scratch import scratch_database
from memctl.models import SCHEMA, ModelSpec, ddl, metadata
from memctl.models.embeddings import EMBEDDING_TABLES, hnsw_index_ddl
from memctl.schema.catalog import Snapshot, read_snapshot


def model_statements_before_tables() -> list[str]:
    """Extension, schema, role and functions the tables depend on (revision 0001's objects)."""
    return [*ddl.CREATE_SCHEMA, ddl.CREATE_ROLE, ddl.CURRENT_ORG_ID, ddl.SHA256_HEX, ddl.TOUCH_UPDATED_AT]


def model_statements_after_tables() -> list[str]:
    """Triggers, RLS policies and grants, applied once the tables exist."""
    stmts = [ddl.RECORD_MEMORY_VERSION, ddl.VERSION_TRIGGER_SQL]
    stmts += [ddl.touch_trigger(t) for t in ddl.tables_with_updated_at()]
    for t in sorted(set(ddl.tenant_tables()) | {"organizations"}):
        stmts += ddl.rls_statements(t)
    return stmts + ddl.grant_statements()


def hnsw_statements(models: Sequence[ModelSpec], dialect) -> list[str]:
    """One CREATE INDEX per (embedding table, registered model)."""
    return [hnsw_index_ddl(dialect, t, m) for m in models for t in EMBEDDING_TABLES]


async def registered_models(conn: AsyncConnection) -> list[ModelSpec]:
    """The rows of embedding_models as :class:`ModelSpec` (empty if the table does not exist)."""
    exists = (await conn.execute(text("SELECT to_regclass(:t)"), {"t": f"{SCHEMA}.embedding_models"})).scalar()
    if exists is None:
        return []
    rows = (await conn.execute(text(
        f"SELECT id, name, dim, distance, index_storage, hnsw_m, hnsw_ef_construction "
        f"FROM {SCHEMA}.embedding_models ORDER BY id"))).mappings().all()
    return [ModelSpec(**r) for r in rows]


async def _apply_models(conn: AsyncConnection, models: Sequence[ModelSpec]) -> None:
    for stmt in model_statements_before_tables():
        await conn.exec_driver_sql(stmt)
    await conn.run_sync(metadata.create_all)
    for m in models:
        await conn.execute(text(
            f"INSERT INTO {SCHEMA}.embedding_models (id, name, dim, distance, index_storage, hnsw_m, "
            f"hnsw_ef_construction) OVERRIDING SYSTEM VALUE VALUES (:id, :name, :dim, :distance, "
            f":index_storage, :hnsw_m, :hnsw_ef_construction)"), vars(m))
    for stmt in hnsw_statements(models, conn.dialect):
        await conn.exec_driver_sql(stmt)
    for stmt in model_statements_after_tables():
        await conn.exec_driver_sql(stmt)


def model_statements(models: Sequence[ModelSpec], dialect: Dialect) -> list[str]:
    """Every statement the reference runs, in order, as text: what :func:`_apply_models` executes
    (``metadata.create_all`` as its CREATE TABLE / CREATE INDEX statements)."""
    tables = []
    for table in metadata.sorted_tables:
        tables.append(str(CreateTable(table).compile(dialect=dialect)))
        tables += [str(CreateIndex(i).compile(dialect=dialect)) for i in sorted(table.indexes, key=lambda i: i.name)]
    rows = [repr(m) for m in models]
    return [*model_statements_before_tables(), *tables, *rows, *hnsw_statements(models, dialect),
            *model_statements_after_tables()]


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


async def reference_snapshot(admin: AsyncEngine, url: URL, models: Sequence[ModelSpec],
                             head: str | None = None) -> Snapshot:
    """Snapshot of the schema the models define, with one HNSW index per model in ``models``.

    ``admin`` is an engine on the live server (used to create and drop the scratch database);
    ``url`` is its URL; ``head`` the head revision (part of the cache key). Served from the
    process's cache when nothing it is built from changed (see the module's docstring). Raises
    :class:`~memctl.errors.DatabaseUnavailable` if the role may not create databases.
    """
    async with admin.connect() as conn:
        key = await reference_key(conn, models, head)
    if key not in _CACHE:
        _CACHE[key] = await _build(admin, url, models)
    return copy.deepcopy(_CACHE[key])


async def _build(admin: AsyncEngine, url: URL, models: Sequence[ModelSpec]) -> Snapshot:
    async with scratch_database(admin, url, "memctl_ref", "verify-schema") as ref_url:
        scratch = make_engine(ref_url, pool_size=1)
        try:
            async with scratch.begin() as conn:
                await _apply_models(conn, models)
            async with scratch.connect() as conn:
                return await read_snapshot(conn, SCHEMA)
        finally:
            await scratch.dispose()
