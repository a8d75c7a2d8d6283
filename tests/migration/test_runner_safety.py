"""Migrations that are safe under load, each protection proven on the real server (no wall-clock bounds)."""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.util import await_only

from memctl.db.engine import asyncpg_dsn, make_engine
from memctl.db.locks import lock_key
from memctl.errors import ConfigError, LockHeld, LockTimeout, MigrationFailed
from memctl.migration import runner as migrate
from memctl.migration.revisions import head_revision, ordered, script_directory, stored_checksums
from memctl.migration.runner import Guard
from memctl.schema.diff import diff
from memctl.schema.verify import live_snapshot, verify_schema
from tests.cli import one_error_line, only_database_line
from tests.conftest import url_arg

INVALID_INDEXES = ("SELECT count(*) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                   "WHERE i.relnamespace = 'agent_memory'::regnamespace AND NOT x.indisvalid")



async def memctl_cli(*args: str) -> tuple[int, str, str]:
    """Run the memctl CLI in its own process: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "memctl", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_five_concurrent_migrates_exactly_one_applies(fresh_url, server_log):
    log_offset = server_log.stat().st_size if server_log else 0
    runs = await asyncio.gather(*(memctl_cli("migrate", "--json", "--database-url", url_arg(fresh_url))
                                  for _ in range(5)))
    codes = [code for code, _, _ in runs]
    assert set(codes) <= {0, 75}, runs
    done = [json.loads(out) for code, out, _ in runs if code == 0]
    appliers = [r for r in done if r["revisions"]]
    assert len(appliers) == 1 and appliers[0]["revisions"] == ordered()
    assert all(r["after"] == head_revision() for r in done)
    for code, _, err in runs:
        assert only_database_line(err) if code == 0 else "holds the lock" in one_error_line(err)
    engine = make_engine(fresh_url)
    try:
        assert await migrate.current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
    if server_log is not None:
        new = server_log.read_text(errors="replace")[log_offset:]
        assert " ERROR: " not in new and " FATAL: " not in new, new


async def _migrate_lock_waiters(conn: asyncpg.Connection) -> int:
    """Sessions of memctl migrate waiting for (polling) the migrate advisory lock."""
    return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                               "AND datname = current_database()", f"memctl {migrate.LOCK_NAME} lock")


async def test_waiting_migrator_exits_75_naming_holder_and_killed_holder_frees_lock(fresh_url):
    engine = make_engine(fresh_url)
    holder = await asyncpg.connect(asyncpg_dsn(fresh_url))
    probe = await asyncpg.connect(asyncpg_dsn(fresh_url))
    try:
        await holder.execute("SELECT set_config('application_name', 'deploy pod 1', false)")
        await holder.fetchval("SELECT pg_advisory_lock($1)", lock_key(migrate.LOCK_NAME))
        holder_pid = holder.get_server_pid()

        with pytest.raises(LockHeld) as err:
            await migrate.upgrade(engine, guard=Guard(wait_s=0.6))
        assert "after waiting 0.6 s" in str(err.value)
        assert f"pid {holder_pid} (deploy pod 1" in str(err.value) and err.value.exit_code == 75
        assert await migrate.current_revision(engine) is None

        code, out, err_text = await memctl_cli("migrate", "--wait", "0", "--database-url", url_arg(fresh_url))
        assert code == 75 and out == "" and "holds the lock" in one_error_line(err_text)

        # A migrator with time to wait is seen by the server polling for the lock, applies nothing
        # while the holder lives, and runs as soon as the server releases a killed holder's lock.
        waiting = asyncio.create_task(migrate.upgrade(engine, guard=Guard(wait_s=60)))
        for _ in range(400):
            if await _migrate_lock_waiters(probe):
                break
            await asyncio.sleep(0.025)
        assert await _migrate_lock_waiters(probe) == 1 and not waiting.done()
        assert await migrate.current_revision(engine) is None
        await probe.execute("SELECT pg_terminate_backend($1)", holder_pid)
        result = await waiting
        assert result.after == head_revision() and result.revisions == ordered()
    finally:
        await holder.close()
        await probe.close()
        await engine.dispose()


async def test_lock_timeout_bounds_waits_retries_and_names_the_blocker(fresh_url):
    engine = make_engine(fresh_url)
    await migrate.upgrade(engine, "0007")  # 0008 alters memories (ENABLE/FORCE RLS: ACCESS EXCLUSIVE)
    await engine.dispose()
    app = await asyncpg.connect(asyncpg_dsn(fresh_url))
    reader = await asyncpg.connect(asyncpg_dsn(fresh_url))
    probe = await asyncpg.connect(asyncpg_dsn(fresh_url))
    reads = 0
    seen: dict[str, int | None] = {"blocked": 0, "reads_when_first_blocked": None}
    stop = asyncio.Event()

    async def read_memories() -> None:
        nonlocal reads
        while not stop.is_set():
            await reader.fetchval("SELECT count(*) FROM agent_memory.memories")
            reads += 1
            await asyncio.sleep(0.02)

    async def watch_reader() -> None:
        # Evidence from the server: is the reader queued behind the migrator's lock request?
        while not stop.is_set():
            blocked = await probe.fetchval(
                "SELECT bool_or(a.application_name = 'memctl migrate') FROM unnest(pg_blocking_pids($1)) b(pid) "
                "JOIN pg_stat_activity a ON a.pid = b.pid", reader.get_server_pid())
            if blocked:
                seen["blocked"] += 1
                if seen["reads_when_first_blocked"] is None:
                    seen["reads_when_first_blocked"] = reads
            await asyncio.sleep(0.01)

    try:
        await app.execute("SELECT set_config('application_name', 'app holding memories', false)")
        tx = app.transaction()
        await tx.start()
        await app.fetch("SELECT 1 FROM agent_memory.memories LIMIT 1")  # ACCESS SHARE until rollback
        tasks = [asyncio.create_task(read_memories()), asyncio.create_task(watch_reader())]
        guard = Guard(lock_timeout_s=0.5, retries=2, backoff_s=0.2, wait_s=0)
        with pytest.raises(LockTimeout) as err:
            await migrate.upgrade(engine, guard=guard)
        reads_at_end = reads
        stop.set()
        await asyncio.gather(*tasks)

        message = str(err.value)
        print(f"lock-timeout scenario: reader blocked by the migrator in {seen['blocked']} probes, "
              f"{reads_at_end} reads; {message}")
        assert "revision 0008" in message and "on 3 attempts" in message
        assert "agent_memory.memories (this run wanted AccessExclusiveLock)" in message
        assert f"pid {app.get_server_pid()} 'app holding memories'" in message
        assert err.value.exit_code == 75
        # The reader queued behind the migrator's lock request (the scenario happened), and went on
        # reading while the app still held its lock: lock_timeout withdrew the request each time,
        # so nobody waits behind a migration for longer than the timeout.
        assert seen["blocked"] > 0, "the reader never queued behind the migrator: scenario not exercised"
        assert reads_at_end > seen["reads_when_first_blocked"]
        assert await probe.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                    "AND relation = 'agent_memory.memories'::regclass") == 0
        # Nothing of 0008 half-applied: tables it altered before memories are untouched.
        assert await migrate.current_revision(engine) == "0007"
        async with engine.connect() as conn:
            rls = (await conn.execute(text(
                "SELECT bool_or(relrowsecurity) FROM pg_class WHERE relnamespace = 'agent_memory'::regnamespace"
            ))).scalar()
        assert rls is False

        await tx.rollback()
        result = await migrate.upgrade(engine, guard=guard)
        assert result.after == head_revision() and result.attempts == 1
    finally:
        stop.set()
        await app.close()
        await reader.close()
        await probe.close()
        await engine.dispose()


def _statements(revision: str) -> tuple[list[str], list[str]]:
    module = script_directory().get_revision(revision).module
    # 0018's transactional part (the HNSW swap) is built from the catalog: no UPGRADE list
    return list(getattr(module, "UPGRADE_CONCURRENTLY", [])), list(getattr(module, "UPGRADE", []))


def _index_names(statements: list[str]) -> set[str]:
    """The indexes a revision's concurrent statements create or drop (without the schema)."""
    return {s.split(" EXISTS ")[1].split(" ON ")[0].split()[0].rsplit(".", 1)[-1] for s in statements}


async def test_migrator_killed_mid_revision_leaves_previous_revision_then_rerun_reaches_head(fresh_url):
    engine = make_engine(fresh_url)
    killer = await asyncpg.connect(asyncpg_dsn(fresh_url))
    state: dict = {"target": None, "killed": 0}

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def kill_migrator(conn, cursor, statement, parameters, context, executemany):
        if state["target"] and state["target"][:80] in statement:
            state["target"] = None
            state["killed"] += 1
            await_only(killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'memctl migrate' AND datname = current_database()"))

    try:
        previous = None
        for rev in ordered():  # the database is at the revision before ``rev``: its catalog is the expected one
            expected = await live_snapshot(engine)
            concurrent, transactional = _statements(rev)
            statements = concurrent + transactional
            state["target"] = statements[len(statements) // 2]
            with pytest.raises(MigrationFailed) as err:
                await migrate.upgrade(engine, rev, Guard(retries=0))
            assert f"revision {rev} failed" in str(err.value)
            assert str(err.value).endswith(f"the database is at {previous or 'base'}")
            assert state["killed"] and state["target"] is None, f"{rev}: the kill point was never reached"
            await engine.dispose()

            assert await migrate.current_revision(engine) == previous, rev
            drift = diff(expected, await live_snapshot(engine))
            # A transactional revision leaves nothing; a concurrent one at most its finished indexes.
            allowed = _index_names(concurrent)
            assert all(f.object.rsplit(".", 1)[-1] in allowed for f in drift), (rev, drift)
            async with engine.connect() as conn:
                assert rev not in await stored_checksums(conn)

            again = await migrate.upgrade(engine, rev, Guard(retries=0))  # the re-run applies the revision
            assert again.after == rev and again.revisions == [rev], rev
            async with engine.connect() as conn:
                assert (await conn.execute(text(INVALID_INDEXES))).scalar() == 0, rev
            await engine.dispose()
            previous = rev
        assert await migrate.current_revision(engine) == head_revision()
        assert (await verify_schema(engine, fresh_url)).clean
        assert state["killed"] == len(ordered())
    finally:
        await killer.close()
        await engine.dispose()


async def test_invalid_index_from_killed_concurrent_build_is_rebuilt_on_next_run(fresh_url):
    engine = make_engine(fresh_url)
    await migrate.upgrade(engine, "0008")
    await engine.dispose()
    old_snapshot = await asyncpg.connect(asyncpg_dsn(fresh_url))
    admin = await asyncpg.connect(asyncpg_dsn(fresh_url))
    try:
        tx = old_snapshot.transaction(isolation="repeatable_read")
        await tx.start()
        await old_snapshot.fetchval("SELECT 1")  # a snapshot CREATE INDEX CONCURRENTLY must wait for
        run = asyncio.create_task(migrate.upgrade(engine, guard=Guard(retries=0)))
        for _ in range(200):  # the build is done and waits for old snapshots: index present, INVALID
            phase = await admin.fetchval("SELECT phase FROM pg_stat_progress_create_index")
            if phase == "waiting for old snapshots":
                break
            await asyncio.sleep(0.05)
        assert phase == "waiting for old snapshots"
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = 'memctl migrate' AND datname = current_database()")
        with pytest.raises(MigrationFailed, match="revision 0009 failed .* the database is at 0008"):
            await run
        await tx.rollback()
        invalid = await admin.fetch("SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                                    "WHERE NOT x.indisvalid")
        assert [r["relname"] for r in invalid] == ["uq_api_tokens_org_id_token_hash"]
        await engine.dispose()
        assert await migrate.current_revision(engine) == "0008"

        result = await migrate.upgrade(engine)
        assert result.repaired == ["rebuilt agent_memory.uq_api_tokens_org_id_token_hash"]
        assert result.after == head_revision()
        assert await admin.fetchval(INVALID_INDEXES) == 0
        await engine.dispose()
        assert (await verify_schema(engine, fresh_url)).clean
    finally:
        await old_snapshot.close()
        await admin.close()
        await engine.dispose()


async def test_a_downgrade_the_data_forbids_is_refused_and_a_forced_invalid_index_is_repaired(scratch_migrated):
    engine, _url = scratch_migrated
    async with engine.begin() as conn:  # one token hash in two organisations: legal since 0009
        for slug in ("tok-a", "tok-b"):
            await conn.execute(text(
                "WITH o AS (INSERT INTO agent_memory.organizations (slug, name) VALUES (:s, :s) RETURNING id) "
                "INSERT INTO agent_memory.api_tokens (org_id, name, token_hash, token_prefix) "
                "SELECT id, 'ci', repeat('a', 64), :p FROM o"), {"s": slug, "p": slug[-1] * 8})
    before = await live_snapshot(engine)
    with pytest.raises(ConfigError, match="refused, nothing changed: 1 api token hash"):
        await migrate.downgrade(engine, "0008")
    assert await migrate.current_revision(engine) == head_revision()
    assert diff(before, await live_snapshot(engine)) == []

    async with engine.begin() as conn:  # an index left INVALID, and a stale leftover of an earlier repair
        await conn.execute(text("UPDATE pg_index SET indisvalid = false "
                                "WHERE indexrelid = 'agent_memory.ix_memories_org_id_category'::regclass"))
        await conn.execute(text("CREATE INDEX ix_memories_org_id_category_ccnew ON agent_memory.memories (org_id)"))
        await conn.execute(text("UPDATE pg_index SET indisvalid = false "
                                "WHERE indexrelid = 'agent_memory.ix_memories_org_id_category_ccnew'::regclass"))
    result = await migrate.upgrade(engine)
    assert result.after == head_revision()
    assert result.repaired == ["dropped agent_memory.ix_memories_org_id_category_ccnew",
                               "rebuilt agent_memory.ix_memories_org_id_category"]
    async with engine.connect() as conn:
        assert (await conn.execute(text(INVALID_INDEXES))).scalar() == 0
        leftovers = "SELECT count(*) FROM pg_class WHERE relname ~ '_cc(new|old)[0-9]*$'"
        assert (await conn.execute(text(leftovers))).scalar() == 0
