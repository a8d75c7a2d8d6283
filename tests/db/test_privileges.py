"""memctl as a plain owner, the usual role on managed PostgreSQL: LOGIN, NOSUPERUSER, NOCREATEDB,
NOCREATEROLE, NOBYPASSRLS, owning its database. Refused up front (exit 2, the administrator's SQL
named, nothing written) until the one-time administrator step of the README; after it, every
command works and sees every row (FORCEd row-level security would otherwise hide them all)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli import app
from memctl.db.engine import asyncpg_dsn, make_engine
from memctl.migration.revisions import head_revision
from memctl.schema import reference
from tests.cli import one_error_line, only_database_line
from tests.conftest import url_arg
from tests.migration.test_offline import _psql

runner = CliRunner()


def admin_step(owner: str) -> list[str]:
    """What an administrator runs once, in the owner's database (README, "Least privilege")."""
    return ["CREATE EXTENSION IF NOT EXISTS vector",
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'memory_app') THEN "
            "CREATE ROLE memory_app NOLOGIN; END IF; END $$",
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'memctl_admin') THEN "
            "CREATE ROLE memctl_admin NOLOGIN; END IF; END $$",
            f'GRANT memctl_admin TO "{owner}"']


def run_sql(url, *statements: str, scalar: str | None = None):
    """Run ``statements`` (autocommit) on ``url`` with an engine of its own; the value of ``scalar``."""
    async def go():
        engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.exec_driver_sql(statement)
                return (await conn.execute(text(scalar))).scalar() if scalar else None
        finally:
            await engine.dispose()
    return asyncio.run(go())


@pytest.fixture
def plain_owner(server_url):
    """(owner's URL, a superuser URL of the same database, the owner's name): a new database owned
    by a plain LOGIN role, both dropped afterwards."""
    role, database = f"memctl_owner_{secrets.token_hex(4)}", f"p_owned_{secrets.token_hex(4)}"
    run_sql(server_url, f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS',
            f'CREATE DATABASE "{database}" OWNER "{role}"')
    try:
        yield server_url.set(database=database, username=role, password=None), server_url.set(database=database), role
    finally:
        run_sql(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'DROP OWNED BY "{role}"',
                f'DROP ROLE "{role}"')


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_plain_owner_refused_up_front_then_every_command_works_after_the_admin_step(plain_owner):
    owner_url, superuser, role = plain_owner
    u = url_arg(owner_url)

    # Without the extension: refused before anything is written, with the administrator's SQL.
    out = cli("migrate", "--json", "--database-url", u)
    assert out.exit_code == 2 and json.loads(out.stdout)["run"]["exit_code"] == 2
    assert "CREATE EXTENSION vector" in one_error_line(out.stderr) and f'GRANT memctl_admin TO "{role}"' in out.stderr
    assert run_sql(superuser, scalar="SELECT to_regnamespace('agent_memory')") is None

    run_sql(superuser, *admin_step(role)[:-1])  # the administrator's step, but the GRANT
    out = cli("migrate", "--json", "--database-url", u)
    assert out.exit_code == 0 and json.loads(out.stdout)["after"] == head_revision(), out.stderr
    out = cli("verify-schema", "--json", "--database-url", u)  # no CREATEDB: a rolled-back scratch schema
    assert out.exit_code == 0 and json.loads(out.stdout)["clean"], out.stdout

    # Data commands refuse while RLS would hide rows from the owner, before writing.
    for args in (["seed", "--synthetic", 300], ["check-constraints"], ["maintain", "--dry-run"],
                 ["bench-hnsw", "-q", 5]):
        out = cli(*args, "--database-url", u)
        assert out.exit_code == 2 and out.stdout == "", args
        assert f'GRANT memctl_admin TO "{role}"' in one_error_line(out.stderr), args
    assert run_sql(superuser, scalar="SELECT count(*) FROM agent_memory.memories") == 0

    run_sql(superuser, admin_step(role)[-1])
    out = cli("seed", "--synthetic", 300, "--json", "--database-url", u)
    assert out.exit_code == 0 and json.loads(out.stdout)["memories_inserted"] == 300, out.stderr
    run_sql(superuser, "INSERT INTO agent_memory.organizations (slug, name) VALUES ('planted', 'planted')",
            "INSERT INTO agent_memory.agents (org_id, name) SELECT id, 'agent' FROM agent_memory.organizations "
            "WHERE slug = 'planted'",
            "INSERT INTO agent_memory.memories (org_id, agent_id, category, content, tier, expires_at) "
            "SELECT a.org_id, a.id, 'factual', 'stale ' || g, 'task', now() - interval '1 day' "
            "FROM agent_memory.agents a JOIN agent_memory.organizations o ON o.id = a.org_id, "
            "generate_series(1, 100) g WHERE o.slug = 'planted'")
    out = cli("check-constraints", "--json", "--database-url", u)
    found = {v["rule"]: v["count"] for v in json.loads(out.stdout)["violations"]}
    assert out.exit_code == 1 and found == {"active_past_expiry": 100, "missing_default_embedding": 100}
    as_owner = json.loads(cli("maintain", "expire", "--dry-run", "--json", "--database-url", u).stdout)
    as_superuser = json.loads(cli("maintain", "expire", "--dry-run", "--json", "--database-url",
                                  url_arg(superuser)).stdout)
    assert as_owner["tasks"][0]["rows"] == as_superuser["tasks"][0]["rows"] == 100
    out = cli("bench-hnsw", "-q", 5, "--ef-search", 40, "--json", "--database-url", u)
    assert out.exit_code == 0 and json.loads(out.stdout)["valid"], out.stdout[-500:] + out.stderr

    # A planted drift is found by the owner's verify-schema.
    run_sql(owner_url, "ALTER TABLE agent_memory.agents ADD COLUMN planted integer")
    out = cli("verify-schema", "--json", "--database-url", u)
    assert out.exit_code == 1 and {"kind": "column", "object": "agent_memory.agents.planted", "expected": None,
                                   "actual": "integer"} in json.loads(out.stdout)["findings"]

    # migrate check needs no privilege on the operator's server: it runs on a private one.
    out = cli("migrate", "check", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["clean"] and out.stderr == ""
    assert only_database_line(cli("current", "--database-url", u).stderr)


def test_a_vacuum_postgresql_skipped_is_a_failed_task_not_ok(plain_owner):
    owner_url, superuser, role = plain_owner
    run_sql(superuser, *admin_step(role))
    assert cli("migrate", "--database-url", url_arg(owner_url)).exit_code == 0
    cron = f"memctl_cron_{secrets.token_hex(4)}"
    run_sql(superuser, f'CREATE ROLE "{cron}" LOGIN IN ROLE memctl_admin',  # the cron role of the README
            "REVOKE MAINTAIN ON agent_memory.memories FROM memctl_admin",
            f'ALTER ROLE "{cron}" SET client_min_messages = error')  # would hide the skip's WARNING
    try:
        cron_url = url_arg(owner_url.set(username=cron))
        reference._CACHE.clear()  # a reference built earlier in this process would spare the scratch schema
        out = cli("verify-schema", "--database-url", cron_url)  # no CREATE on the database: refused, named
        assert out.exit_code == 2 and f'GRANT CREATE ON DATABASE "{owner_url.database}"' in one_error_line(out.stderr)
        out = cli("maintain", "vacuum", "--table", "memories", "--table", "agents", "--json",
                  "--database-url", cron_url)
        assert out.stdout, (out.stderr, out.exit_code, repr(out.exception))
        task = json.loads(out.stdout)["tasks"][0]
        assert out.exit_code == 1 and task["tables"] == ["agents"]
        assert "skipped VACUUM of memories" in task["error"] and "permission denied" in task["error"]
        vacuumed = "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'memories' AND last_vacuum IS NOT NULL"
        assert run_sql(superuser, scalar=vacuumed) == 0
        run_sql(superuser, "GRANT MAINTAIN ON agent_memory.memories TO memctl_admin")
        out = cli("maintain", "vacuum", "--table", "memories", "--json", "--database-url", cron_url)
        assert out.exit_code == 0 and json.loads(out.stdout)["tasks"][0]["tables"] == ["memories"]
        assert run_sql(superuser, scalar=vacuumed) == 1
    finally:
        run_sql(superuser, f'DROP ROLE "{cron}"')


def test_roles_memctl_must_not_trust_are_refused_and_a_held_lock_is_exit_75(plain_owner, tmp_path):
    owner_url, superuser, role = plain_owner
    run_sql(superuser, *admin_step(role))
    u = url_arg(owner_url)
    assert cli("migrate", "--database-url", u).exit_code == 0
    # A role's own search_path without the extension's schema: memctl adds it to its sessions.
    out = cli("check-constraints", "--database-url", u + "&options=-c%20search_path%3Dagent_memory")
    assert out.exit_code == 0, out.stderr
    noinherit, service = f"memctl_noinh_{secrets.token_hex(3)}", f"memctl_svc_{secrets.token_hex(3)}"
    run_sql(superuser, f'CREATE ROLE "{noinherit}" LOGIN', f'GRANT memctl_admin TO "{noinherit}" WITH INHERIT FALSE',
            f'CREATE ROLE "{service}" LOGIN IN ROLE memory_app')
    try:
        # A membership without memctl_admin's privileges sees nothing under RLS: refused, not "clean".
        out = cli("check-constraints", "--database-url", url_arg(owner_url.set(username=noinherit)))
        assert out.exit_code == 2 and f'GRANT memctl_admin TO "{noinherit}"' in one_error_line(out.stderr)
        # The application's role is not memctl's: refused up front, and not told to become admin silently.
        out = cli("maintain", "--dry-run", "--database-url", url_arg(owner_url.set(username=service)))
        assert out.exit_code == 2 and "never as the application's role" in one_error_line(out.stderr)
        # A database below 0010 lacks memctl_admin's policy: its members are refused, not shown nothing.
        assert cli("downgrade", "0009", "--yes", "--database-url", u).exit_code == 0
        out = cli("maintain", "--dry-run", "--database-url", u)
        assert out.exit_code == 2 and "below revision 0010" in one_error_line(out.stderr)
        out = cli("check-constraints", "--database-url", u)  # its rules read 0013's objects
        assert out.exit_code == 2 and "needs 0013 or later: run memctl migrate" in one_error_line(out.stderr)
        assert cli("migrate", "--database-url", u).exit_code == 0
        # Another session holds memories: the command gives up after lock_timeout with exit 75.
        holder = subprocess.Popen([_psql(), "-X", "-q", "-c", "BEGIN", "-c",
                                   "LOCK TABLE agent_memory.memories IN ACCESS EXCLUSIVE MODE", "-c",
                                   "SELECT pg_sleep(60)", asyncpg_dsn(superuser)])
        try:
            held = ("SELECT count(*) FROM pg_locks WHERE relation = 'agent_memory.memories'::regclass "
                    "AND mode = 'AccessExclusiveLock' AND granted")
            for _ in range(200):
                if run_sql(superuser, scalar=held):
                    break
                time.sleep(0.05)
            out = runner.invoke(app, ["check-constraints", "--database-url", u], env={"MEMCTL_LOCK_TIMEOUT": "0.5"})
            assert out.exit_code == 75 and "past lock_timeout" in one_error_line(out.stderr)
        finally:
            holder.kill()
            holder.wait()
    finally:
        run_sql(superuser, f'DROP ROLE "{noinherit}"', f'DROP ROLE "{service}"')
