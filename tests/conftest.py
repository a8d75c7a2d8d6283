"""One PostgreSQL server per test session (embedded, or DATABASE_URL's), a fresh database per module."""

from __future__ import annotations

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

from memctl import embedded, migrate
from memctl.config import normalise_url
from memctl.database import make_engine

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
    yield url
    embedded.stop(server_home)


@pytest.fixture(scope="session")
def server_log(server_home, server_url) -> Path | None:
    """The embedded server's log file (None on a DATABASE_URL server, whose log we cannot read)."""
    return embedded.log_path(server_home) if server_home is not None else None


@asynccontextmanager
async def _database(server_url: URL, name: str) -> AsyncIterator[URL]:
    """Database ``name`` created fresh on the test server, dropped afterwards (WITH FORCE)."""
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(drop)
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server_url.set(database=name)
        async with admin.connect() as conn:
            await conn.exec_driver_sql(drop)
    finally:
        await admin.dispose()


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


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(db_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine on the module's database (not migrated)."""
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def migrated(engine: AsyncEngine) -> AsyncEngine:
    """The module's engine, its database upgraded to head. Pooled connections are recycled so the
    pgvector codecs (registered on connect) apply once the extension exists."""
    await migrate.upgrade(engine)
    await engine.dispose()
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
