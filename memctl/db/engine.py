"""Engines and connections: one place that turns settings into a connected ``AsyncEngine``.

Every engine registers pgvector's asyncpg codecs (``vector``, ``halfvec``) on each new
connection, so numpy arrays go in and come out of vector columns without text round trips.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, quote_plus

import asyncpg
from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from memctl.config import Settings, mask_url
from memctl.db import embedded
from memctl.errors import DatabaseUnavailable


def resolve_url(settings: Settings) -> URL:
    """The database URL to use: the configured one, or the embedded server's (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url
    return embedded.start(settings.home)


def scrub(message: str, url: URL | None) -> str:
    """``message`` with the URL's password removed, plain and URL-encoded (belt and braces)."""
    if url is None or not url.password:
        return message
    secret = str(url.password)
    for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
        message = message.replace(form, "***")
    return message


def make_engine(url: URL, *, pool_size: int = 5) -> AsyncEngine:
    """An ``AsyncEngine`` on ``url`` (asyncpg) with pgvector codecs registered on connect."""
    engine = create_async_engine(url, pool_size=pool_size, pool_pre_ping=False)

    @event.listens_for(engine.sync_engine, "connect")
    def _register(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        dbapi_connection.run_async(_register_codecs)

    return engine


async def _register_codecs(conn: asyncpg.Connection) -> None:
    # The extension may not exist yet (before the first migration); codecs are then skipped.
    has_vector = await conn.fetchval("SELECT 1 FROM pg_type WHERE typname = 'vector'")
    if has_vector:
        await register_vector(conn)


_CONNECT_ERRORS = (OSError, asyncpg.PostgresError, OperationalError, InterfaceError, DBAPIError)


@asynccontextmanager
async def engine_for(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Yield a connected engine for ``settings`` and always dispose it.

    Raises :class:`DatabaseUnavailable` (password masked) if the first connection fails.
    """
    url = resolve_url(settings)
    engine = make_engine(url)
    try:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except _CONNECT_ERRORS as exc:
            detail = scrub(first_error_line(exc), url)
            raise DatabaseUnavailable(f"cannot connect to {mask_url(url)}: {detail}") from None
        yield engine
    finally:
        await engine.dispose()


def asyncpg_dsn(url: URL) -> str:
    """``url`` as a plain asyncpg DSN, password included: for asyncpg only, never to be printed."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def first_error_line(exc: BaseException) -> str:
    """The first line of a (driver) error's message, without SQLAlchemy's background link."""
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    text = re.sub(r"\s*\(Background on this error at:.*\)$", "", text.strip())
    return text.splitlines()[0] if text else type(exc).__name__
