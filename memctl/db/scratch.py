"""Scratch databases: created beside the live one on the same server, always dropped."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db.engine import first_error_line
from memctl.errors import DatabaseUnavailable


@asynccontextmanager
async def scratch_database(admin: AsyncEngine, url: URL, prefix: str, purpose: str) -> AsyncIterator[URL]:
    """Create database ``<prefix>_<12 hex>`` from template0, yield its URL, drop it (WITH FORCE).

    ``admin`` is an engine on the server, ``url`` its URL. Raises :class:`DatabaseUnavailable`
    naming ``purpose`` when the role may not create databases (CREATEDB).
    """
    name = f"{prefix}_{secrets.token_hex(6)}"
    auto = admin.execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with auto.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot build the scratch database"
        raise DatabaseUnavailable(f"{purpose} needs CREATEDB for a scratch database: {first_error_line(exc)}") from None
    try:
        yield url.set(database=name)
    finally:
        async with auto.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
