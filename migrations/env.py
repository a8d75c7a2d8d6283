"""Alembic environment of memctl (async).

memctl's migrate module opens the connection itself and hands it over in
``config.attributes["connection"]`` (a sync facade over an asyncpg connection, from
``AsyncConnection.run_sync``). Run as plain ``alembic``, this file builds an async engine from the
URL memctl would use. Offline mode (``--sql``) renders the SQL without a database.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from memctl.models import metadata

config = context.config
VERSION_TABLE_SCHEMA = "public"  # outside agent_memory, so downgrade to base leaves that schema empty


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=metadata,
        version_table_schema=VERSION_TABLE_SCHEMA,
        include_schemas=True,
        transaction_per_migration=True,
        **kwargs,
    )


def run_offline() -> None:
    """Render the SQL of the requested revisions to the output buffer (``memctl migrate --sql``)."""
    url = config.attributes.get("url") or "postgresql+asyncpg://"
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    from memctl.config import Settings
    from memctl.database import make_engine, resolve_url

    engine = make_engine(resolve_url(Settings.resolve()))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_on)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run_on(connection)
else:
    asyncio.run(_run_standalone())
