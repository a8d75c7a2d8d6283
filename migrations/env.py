"""Alembic environment of memctl (async).

memctl's migrate module opens the connection itself, sets the guard's ``lock_timeout`` and
``statement_timeout`` on it, and hands it over in ``config.attributes["connection"]`` (a sync
facade over an asyncpg connection, from ``AsyncConnection.run_sync``). pytest-alembic hands
over an ``AsyncEngine`` (or an engine-like wrapper of a sync connection) the same way. Run as
plain ``alembic``, this file builds an async engine from the URL memctl would use. Offline mode
(``--sql``) renders the SQL without a database, starting with the guard's ``SET lock_timeout``
and ``SET statement_timeout``.

Each revision runs in its own transaction, and records its file's checksum in that same
transaction (``memctl.migration.revisions.record_checksum``), so a revision is applied whole or not at all.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.migration.revisions import VERSION_TABLE_SCHEMA, record_checksum
from memctl.models import SCHEMA, metadata
from memctl.models.embeddings import is_hnsw_index_name

config = context.config


def _on_version_apply(ctx, step, heads, run_args) -> None:
    if not ctx.as_sql:
        record_checksum(ctx.connection, step)


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate compares (pytest-alembic's model-definitions test): agent_memory only,
    without the per-model HNSW indexes, which follow the embedding_models rows, not the models
    (verify-schema checks those against the rows)."""
    if type_ == "table" and obj.schema != SCHEMA:
        return False
    if type_ == "index" and reflected and compare_to is None and is_hnsw_index_name(name or ""):
        return False
    return True


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=metadata,
        version_table_schema=VERSION_TABLE_SCHEMA,
        include_schemas=True,
        transaction_per_migration=True,
        on_version_apply=_on_version_apply,
        include_object=_include_object,
        **kwargs,
    )


def run_offline() -> None:
    """Render the SQL of the requested revisions to the output buffer (``memctl migrate --sql``)."""
    url = config.attributes.get("url") or "postgresql+asyncpg://"
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    context.execute(f"SET lock_timeout = '{config.attributes.get('lock_timeout', '5000ms')}'")
    context.execute(f"SET statement_timeout = '{config.attributes.get('statement_timeout', '1800000ms')}'")
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with(engine: AsyncEngine, dispose: bool) -> None:
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_on)
            await conn.commit()
    finally:
        if dispose:
            await engine.dispose()


def _standalone_engine() -> AsyncEngine:
    from memctl.config import Settings
    from memctl.db.engine import make_engine, resolve_url

    return make_engine(resolve_url(Settings.resolve()))


if context.is_offline_mode():
    run_offline()
elif isinstance(connectable := config.attributes.get("connection"), Connection):
    _run_on(connectable)
elif isinstance(connectable, AsyncEngine):
    asyncio.run(_run_with(connectable, dispose=False))
elif connectable is not None:  # a sync Engine, or pytest-alembic's WrappingConnection
    with connectable.connect() as sync_connection:
        _run_on(sync_connection)
else:
    asyncio.run(_run_with(_standalone_engine(), dispose=True))
