"""Tenant isolation proven as a role that is not the owner (the application role, RLS forced).

A LOGIN role, NOSUPERUSER, NOBYPASSRLS, member of memory_app, works on two organisations that
each have a row in every tenant table. For every table the catalog lists with ``org_id`` (and
organizations, keyed by ``id``), with organisation A set: SELECT, UPDATE and DELETE reach none of
B's rows but all of A's (the positive control: a dropped policy hides A too), INSERT with B's id
fails the WITH CHECK; with no organisation set, and after resetting the setting to '' on a reused
connection, nothing is visible. Dropping a policy or FORCE from any table makes the proof fail.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from memctl.db.engine import asyncpg_dsn
from memctl.models import ddl
from tests.tenant_rows import add_tenant_rows, covered_tables

RLS_VIOLATION = "42501"  # insufficient_privilege: "new row violates row-level security policy"


@pytest.fixture(scope="module")
async def world(migrated, app_login):
    """(admin engine, probe DSN, org A, org B) with a row of A and of B in every tenant table."""
    async with migrated.begin() as conn:
        a = await add_tenant_rows(conn, "iso-a")
        b = await add_tenant_rows(conn, "iso-b")
    return migrated, asyncpg_dsn(app_login), a, b


class _Undo(Exception):
    """Raised inside a savepoint to roll it back."""


async def _tables(admin) -> dict[str, str]:
    """table -> tenant key column: every table with org_id, plus RLS tables keyed by id (organizations)."""
    async with admin.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT c.relname, bool_or(a.attname = 'org_id') AS has_org FROM pg_class c "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relnamespace = 'agent_memory'::regnamespace AND c.relkind IN ('r', 'p') "
            "GROUP BY c.relname, c.relrowsecurity HAVING bool_or(a.attname = 'org_id') OR c.relrowsecurity"))).all()
    return {r.relname: "org_id" if r.has_org else "id" for r in rows}


async def _insertable_columns(admin, table: str) -> list[str]:
    async with admin.connect() as conn:
        return list((await conn.execute(text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' AND attidentity = '' ORDER BY attnum"),
            {"t": f"agent_memory.{table}"})).scalars())


async def _read_only(probe, q: str, key: str, a) -> list[str]:
    """A table the role may only read: every write of its own organisation's rows is refused."""
    failures = []
    for sql in (f"UPDATE {q} SET {key} = {key} WHERE {key} = $1", f"DELETE FROM {q} WHERE {key} = $1",
                f"INSERT INTO {q} SELECT * FROM {q} WHERE {key} = $1"):
        try:
            async with probe.transaction():
                await probe.execute(sql, a)
            failures.append(f"{sql.split()[0]} of A's rows was accepted by a read-only table")
        except asyncpg.InsufficientPrivilegeError:
            pass
    return failures


async def prove(admin, dsn: str, table: str, key: str, a, b) -> list[str]:
    """Every way ``table`` fails to isolate A from B, as the probe role (empty: isolated)."""
    q = f"agent_memory.{table}"
    failures: list[str] = []
    async with admin.connect() as conn:
        own = (await conn.execute(text(f"SELECT count(*) FROM {q} WHERE {key} = :a"), {"a": a})).scalar()
        catalog = (await conn.execute(text(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = :pol "
            " AND pg_get_expr(p.polqual, p.polrelid) = :expr AND pg_get_expr(p.polwithcheck, p.polrelid) = :expr) "
            "FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"),
            {"t": q, "pol": ddl.POLICY_NAME, "expr": f"({key} = agent_memory.current_org_id())"})).one()
    if own == 0:
        failures.append("no row of A to prove with")
    if not catalog[0] or not catalog[1]:
        failures.append(f"row level security enabled={catalog[0]} forced={catalog[1]}")
    if catalog[2] != 1:
        failures.append(f"policy {ddl.POLICY_NAME} missing or changed")
    cols = await _insertable_columns(admin, table)
    copy = ", ".join("$1::uuid" if c == key else c for c in cols)

    probe = await asyncpg.connect(dsn)
    try:
        async with probe.transaction():
            await probe.execute("SELECT set_config('app.current_org_id', $1, true)", str(a))
            if (n := await probe.fetchval(f"SELECT count(*) FROM {q} WHERE {key} = $1", b)) != 0:
                failures.append(f"SELECT sees {n} rows of B")
            if (n := await probe.fetchval(f"SELECT count(*) FROM {q} WHERE {key} = $1", a)) != own:
                failures.append(f"SELECT sees {n} of A's {own} rows")
            if (n := await probe.fetchval(f"SELECT count(*) FROM {q} WHERE {key} IS NOT NULL")) != own:
                failures.append(f"SELECT without a filter sees {n} rows, A has {own}")
            if not await probe.fetchval("SELECT has_table_privilege($1, 'UPDATE')", q):
                failures += await _read_only(probe, q, key, a)  # organization_models: memctl's to write
            else:
                if (status := await probe.execute(f"UPDATE {q} SET {key} = {key} WHERE {key} = $1", b)) != "UPDATE 0":
                    failures.append(f"UPDATE of B: {status}")
                if (status := await probe.execute(f"DELETE FROM {q} WHERE {key} = $1", b)) != "DELETE 0":
                    failures.append(f"DELETE of B: {status}")
                try:
                    async with probe.transaction():  # a savepoint, rolled back: the positive control is undone
                        status = await probe.execute(f"UPDATE {q} SET {key} = {key} WHERE {key} = $1", a)
                        raise _Undo(status)
                except _Undo as undo:
                    if str(undo) != f"UPDATE {own}":
                        failures.append(f"UPDATE of A: {undo}, expected UPDATE {own}")
                try:
                    async with probe.transaction():
                        await probe.execute(f"INSERT INTO {q} ({', '.join(cols)}) SELECT {copy} FROM {q} "
                                            f"WHERE {key} = $2 LIMIT 1", b, a)
                    failures.append("INSERT with B's id was accepted")
                except asyncpg.PostgresError as exc:
                    if exc.sqlstate != RLS_VIOLATION:
                        failures.append(f"INSERT with B's id failed for another reason: {exc.sqlstate} {exc}")
        async with probe.transaction():  # nothing set: nothing visible
            if (n := await probe.fetchval(f"SELECT count(*) FROM {q} WHERE {key} IS NOT NULL")) != 0:
                failures.append(f"with no organisation set, SELECT sees {n} rows")
        await probe.execute("SELECT set_config('app.current_org_id', $1, false)", str(a))
        seen = await probe.fetchval(f"SELECT count(*) FROM {q} WHERE {key} IS NOT NULL")
        await probe.execute("SELECT set_config('app.current_org_id', '', false)")  # a pool resetting it
        if (n := await probe.fetchval(f"SELECT count(*) FROM {q} WHERE {key} IS NOT NULL")) != 0 or seen != own:
            failures.append(f"reused connection: {seen} rows while set, {n} after reset to ''")
    finally:
        await probe.close()
    return failures


async def test_every_tenant_table_is_isolated_for_a_non_owner_role(world):
    admin, dsn, a, b = world
    probe = await asyncpg.connect(dsn)
    try:
        flags = await probe.fetchrow("SELECT rolsuper, rolbypassrls, pg_has_role(current_user, $1, 'MEMBER') AS app "
                                     "FROM pg_roles WHERE rolname = current_user", ddl.APP_ROLE)
        owners = await probe.fetchval("SELECT count(*) FROM pg_class WHERE relnamespace = "
                                      "'agent_memory'::regnamespace AND relowner = (SELECT oid FROM pg_roles "
                                      "WHERE rolname = current_user)")
    finally:
        await probe.close()
    assert tuple(flags) == (False, False, True) and owners == 0
    tables = await _tables(admin)
    assert set(tables) == set(ddl.tenant_tables()) | {"organizations"} and tables["organizations"] == "id"
    assert set(tables) <= covered_tables(), f"no sample row for {set(tables) - covered_tables()}"
    failures = {t: f for t, key in sorted(tables.items()) if (f := await prove(admin, dsn, t, key, a, b))}
    assert failures == {}


async def test_removing_force_or_the_policy_from_any_table_breaks_the_proof(world):
    admin, dsn, a, b = world
    for table, key in sorted((await _tables(admin)).items()):
        q = f"agent_memory.{table}"
        policy = next(s for s in ddl.rls_statements(table) if s.startswith(f"CREATE POLICY {ddl.POLICY_NAME}"))
        for mutate, restore in ((f"ALTER TABLE {q} NO FORCE ROW LEVEL SECURITY", f"ALTER TABLE {q} FORCE ROW LEVEL "
                                 "SECURITY"), (f"DROP POLICY {ddl.POLICY_NAME} ON {q}", policy)):
            async with admin.begin() as conn:
                await conn.execute(text(mutate))
            try:
                assert await prove(admin, dsn, table, key, a, b), f"{mutate}: the proof still passes"
            finally:
                async with admin.begin() as conn:
                    await conn.execute(text(restore))
        assert await prove(admin, dsn, table, key, a, b) == []
