"""Engines and connections: one place that turns settings into a connected ``AsyncEngine``.

Connections are made the way libpq users expect: asyncpg is handed the libpq form of the URL
(SQLAlchemy's ``async_creator``), so ``sslmode`` (disable .. verify-full), ``sslrootcert``,
``sslcert``, ``sslkey``, ``application_name``, ``options``, the PG* environment variables and
``.pgpass`` work as in psql (asyncpg docs, "Connection"). What asyncpg does not read, memctl maps:
``connect_timeout`` (URL) and ``PGCONNECT_TIMEOUT`` become asyncpg's ``timeout``, ``PGAPPNAME``
and ``PGOPTIONS`` become startup settings (libpq docs, "Environment Variables").

Every engine registers pgvector's asyncpg codecs (``vector``, ``halfvec``) on each new
connection, so numpy arrays go in and come out of vector columns without text round trips.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, quote_plus

import asyncpg
from pgvector.asyncpg import register_vector
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from memctl.config import Settings, mask_url, secrets_of
from memctl.db import embedded
from memctl.errors import ConfigError, DatabaseUnavailable


def resolve_url(settings: Settings) -> URL:
    """The database URL to use: the configured one, or the embedded server's (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url
    return embedded.start(settings.home)


MIN_SCRUBBED = 4  # a shorter password is not searched for in messages: "p" would mangle every word


def scrub(message: str, url: URL | None) -> str:
    """``message`` with the URL's secrets (password, ``password=`` / ``sslpassword=`` parameters)
    removed, plain and URL-encoded (belt and braces)."""
    for secret in secrets_of(url) if url is not None else []:
        if len(secret) >= MIN_SCRUBBED:
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                message = message.replace(form, "***")
    return message


DEFAULT_CONNECT_TIMEOUT_S = 10.0
# A memctl command never queues behind another session's table lock for longer than this (migrate
# sets its own, --lock-timeout); past it PostgreSQL cancels the wait (SQLSTATE 55P03), exit 75.
COMMAND_LOCK_TIMEOUT_S = 30.0
NO_LIMIT_S = 86400.0  # libpq's connect_timeout=0 means "wait indefinitely"; a day stands for it
TENANT_SETTING = "app.current_org_id"  # read by agent_memory.current_org_id() (schema.md rule 2)
MEMCTL_ONLY = ("connect_timeout",)  # libpq parameters asyncpg would send to the server as settings


def connect_timeout_s(url: URL, option: float | None = None) -> float:
    """Seconds to wait for a connection: ``option`` (--connect-timeout), else the URL's
    ``connect_timeout``, else ``PGCONNECT_TIMEOUT``, else 10; 0 means no limit (libpq).
    Raises ConfigError for a value that is not a number of seconds."""
    raw = option if option is not None else url.query.get("connect_timeout") or os.environ.get("PGCONNECT_TIMEOUT")
    if raw is None:
        return DEFAULT_CONNECT_TIMEOUT_S
    try:
        seconds = float(raw[0] if isinstance(raw, tuple) else raw)
    except ValueError:
        raise ConfigError(f"connect_timeout must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"connect_timeout must not be negative, got {raw!r}")
    return seconds or NO_LIMIT_S


def connect_kwargs(url: URL, timeout_s: float, lock_timeout_s: float | None = None) -> tuple[str, dict[str, Any]]:
    """(libpq DSN, asyncpg.connect keyword arguments) for ``url``; ``lock_timeout_s`` becomes the
    sessions' ``lock_timeout``. The DSN holds the password: for asyncpg only, never to be printed."""
    settings = {name: os.environ[env] for name, env in (("application_name", "PGAPPNAME"), ("options", "PGOPTIONS"))
                if env in os.environ and name not in url.query}
    if lock_timeout_s is not None:
        settings["lock_timeout"] = pg_ms(lock_timeout_s)
    if "application_name" not in url.query:
        settings.setdefault("application_name", "memctl")
    return asyncpg_dsn(url), {"timeout": timeout_s, "server_settings": settings}


def make_engine(url: URL, *, pool_size: int = 5, connect_timeout: float | None = None,
                lock_timeout: float | None = None) -> AsyncEngine:
    """An ``AsyncEngine`` on ``url`` (asyncpg, libpq parameters honoured, see the module's
    docstring) with pgvector codecs registered on connect. ``connect_timeout`` in seconds
    (None: the URL's, PGCONNECT_TIMEOUT or 10); ``lock_timeout`` in seconds for every session
    (None: the server's). Raises ConfigError for a bad connect_timeout."""
    dsn, kwargs = connect_kwargs(url, connect_timeout_s(url, connect_timeout), lock_timeout)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn, **kwargs)

    engine = create_async_engine(url, async_creator=connect, pool_size=pool_size, pool_pre_ping=False)

    @event.listens_for(engine.sync_engine, "connect")
    def _register(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        dbapi_connection.run_async(register_codecs)

    @event.listens_for(engine.sync_engine, "reset")
    def _forget_tenant(dbapi_connection, _record, reset_state):
        # Every connection goes back to the pool without a tenant: a session-level set_config of
        # app.current_org_id (not org_scope's transaction-local one) must not reach the next user.
        if not reset_state.terminate_only:
            dbapi_connection.run_async(_reset_tenant)

    return engine


async def _reset_tenant(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SELECT set_config('{TENANT_SETTING}', '', false)")


async def register_codecs(conn: asyncpg.Connection) -> None:
    """pgvector's codecs, for the schema the extension lives in, and that schema on the session's
    search_path (a role's own search_path may leave it out: then ``vector`` names no type). The
    extension may not exist yet (before the first migration); nothing is done then, and a pooled
    connection made then is without them: code that COPYs vectors calls this again first."""
    schema = await conn.fetchval("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'")
    if schema is None:
        return
    await conn.execute("SELECT set_config('search_path', current_setting('search_path') || ', ' || $1, false) "
                       "WHERE NOT ($1 = ANY(current_schemas(false)))", schema)
    await register_vector(conn, schema=schema.strip('"'))


# What a failed first connection raises: socket errors, a server's refusal, asyncpg's own checks
# (a bad sslmode value, a port out of range: ValueError / OverflowError), and the timeout.
_CONNECT_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, OperationalError, InterfaceError,
                   DBAPIError, ValueError, OverflowError, TimeoutError)


@asynccontextmanager
async def engine_for(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Yield a connected engine for ``settings`` and always dispose it. Its sessions wait at most
    ``MEMCTL_LOCK_TIMEOUT`` seconds (default ``COMMAND_LOCK_TIMEOUT_S``, 30) for a table lock.

    Raises :class:`DatabaseUnavailable` (password masked) if the first connection fails.
    """
    url = resolve_url(settings)
    timeout = connect_timeout_s(url, settings.connect_timeout)
    lock_timeout = float(os.environ.get("MEMCTL_LOCK_TIMEOUT", COMMAND_LOCK_TIMEOUT_S))
    engine = make_engine(url, connect_timeout=timeout, lock_timeout=lock_timeout)
    try:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except _CONNECT_ERRORS as exc:
            detail = (f"no answer within {timeout:g} s (--connect-timeout)" if isinstance(exc, TimeoutError)
                      else scrub(first_error_line(exc), url))
            raise DatabaseUnavailable(f"cannot connect to {mask_url(url)}: {detail}") from None
        yield engine
    finally:
        await engine.dispose()


def asyncpg_dsn(url: URL) -> str:
    """``url`` as a plain libpq DSN for asyncpg, without the parameters asyncpg would misread
    (``connect_timeout``), password included: for asyncpg only, never to be printed."""
    query = {k: v for k, v in url.query.items() if k not in MEMCTL_ONLY}
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)



LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout expiry (PostgreSQL docs, Appendix A)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy's wrapper or asyncpg's own), else None."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(getattr(exc, "orig", None), "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if state:
            return state
    return None


def pg_ms(seconds: float) -> str:
    """Seconds as a PostgreSQL duration setting in milliseconds: 1.5 -> '1500ms'."""
    return f"{int(round(seconds * 1000))}ms"


def first_error_line(exc: BaseException) -> str:
    """The first line of a (driver) error's message, without SQLAlchemy's background link."""
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    text = re.sub(r"\s*\(Background on this error at:.*\)$", "", text.strip())
    return text.splitlines()[0] if text else type(exc).__name__
