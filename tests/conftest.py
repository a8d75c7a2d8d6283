"""One PostgreSQL server per test session (embedded, or DATABASE_URL's), a fresh database per module.

A migrated module database is a copy of one template database migrated to head once per session
(``CREATE DATABASE ... TEMPLATE``), not nine revisions applied again per module.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.config import normalise_url
from memctl.db import embedded
from memctl.db.engine import make_engine
from memctl.migration import runner as migrate

DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-minilm-20k.npz"


@pytest.fixture(scope="session")
def server_home(tmp_path_factory) -> Path | None:
    """MEMCTL_HOME of the embedded test server (None when DATABASE_URL names the server)."""
    return None if os.environ.get("DATABASE_URL") else tmp_path_factory.mktemp("memctl-home")


@pytest.fixture(scope="session")
def server_url(server_home) -> URL:
    """Admin URL of the test server: DATABASE_URL if set, else an embedded server in a temp dir."""
    if server_home is None:
        yield normalise_url(os.environ["DATABASE_URL"])
        return
    url = embedded.start(server_home, database="postgres")
    asyncio.run(_throwaway_durability(url))
    yield url
    embedded.stop(server_home)


async def _throwaway_durability(url: URL) -> None:
    """The embedded test cluster lives for one session: it need not survive an OS crash, so it
    skips WAL flushes (fsync, synchronous_commit, full_page_writes off; PostgreSQL docs,
    "Non-Durable Settings"). A killed backend still rolls back as usual."""
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                await conn.exec_driver_sql(f"ALTER SYSTEM SET {setting} = off")
            await conn.exec_driver_sql("SELECT pg_reload_conf()")
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def server_log(server_home, server_url) -> Path | None:
    """The embedded server's log file (None on a DATABASE_URL server, whose log we cannot read)."""
    return embedded.log_path(server_home) if server_home is not None else None


async def _create(server_url: URL, name: str, template: str | None = None) -> URL:
    """(Re)create database ``name`` on the test server, empty or a copy of ``template``; its URL."""
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await admin.dispose()
    return server_url.set(database=name)


async def _drop(server_url: URL, name: str) -> None:
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


@asynccontextmanager
async def _database(server_url: URL, name: str) -> AsyncIterator[URL]:
    """Database ``name`` created fresh on the test server, dropped afterwards (WITH FORCE)."""
    url = await _create(server_url, name)
    try:
        yield url
    finally:
        await _drop(server_url, name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def head_template(server_url: URL) -> AsyncIterator[str]:
    """Name of a database migrated to head once per session, the template of every ``migrated`` one."""
    name = f"t_template_head_{secrets.token_hex(4)}"
    url = await _create(server_url, name)
    engine = make_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it without connections
    yield name
    await _drop(server_url, name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db_url(server_url: URL, request) -> AsyncIterator[URL]:
    """A fresh database for the test module (not migrated), dropped afterwards."""
    async with _database(server_url, "t_" + re.sub(r"\W", "_", request.module.__name__.split(".")[-1])[:50]) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_url(server_url: URL, request) -> AsyncIterator[URL]:
    """A fresh, empty database for one test, dropped afterwards."""
    async with _database(server_url, "f_" + re.sub(r"\W", "_", request.node.name)[:55]) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_migrated(server_url: URL, head_template: str, request) -> AsyncIterator[tuple[AsyncEngine, URL]]:
    """(engine, URL) of a database at head for one test, copied from the template and dropped
    afterwards: for a test that leaves the schema broken (planted drift)."""
    name = "s_" + re.sub(r"\W", "_", request.node.name)[:55]
    url = await _create(server_url, name, template=head_template)
    eng = make_engine(url)
    try:
        yield eng, url
    finally:
        await eng.dispose()
        await _drop(server_url, name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(db_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine on the module's database (not migrated)."""
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def migrated(engine: AsyncEngine, db_url: URL, server_url: URL, head_template: str) -> AsyncEngine:
    """The module's engine, its database recreated as a copy of the head template (the same catalog,
    checksums and alembic_version as ``memctl migrate`` leaves). Pooled connections are dropped
    first, so new ones see the copy and register the pgvector codecs."""
    await engine.dispose()
    await _create(server_url, db_url.database, template=head_template)
    return engine


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app_login(migrated: AsyncEngine, db_url: URL) -> AsyncIterator[URL]:
    """URL of a LOGIN role that is a member of memory_app, NOSUPERUSER, NOBYPASSRLS, owning nothing:
    how a service connects. Dropped afterwards."""
    role = f"memctl_probe_{secrets.token_hex(4)}"
    password = secrets.token_hex(12)
    async with migrated.begin() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE '
                                f"PASSWORD '{password}'"))
        await conn.execute(text(f'GRANT memory_app TO "{role}"'))
    yield db_url.set(username=role, password=password)
    await migrated.dispose()
    async with migrated.begin() as conn:
        await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


@pytest.fixture(scope="session")
def dataset_path() -> Path:
    """The real dataset of shared/data (skips when it is absent)."""
    if not DATASET.exists():
        pytest.skip(f"dataset not found at {DATASET}")
    return DATASET


def url_arg(url: URL) -> str:
    """A URL for --database-url (with its password, as a user would type it)."""
    return url.render_as_string(hide_password=False)
