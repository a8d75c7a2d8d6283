"""memctl maintain under load: 100,000 expired task memories, a concurrent
writer, overlapping runs and a killed run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import asyncpg
from sqlalchemy import text

from memctl.db.engine import asyncpg_dsn
from memctl.maintenance.run import maintain
from memctl.maintenance.types import MaintainOptions
from tests.cli import one_error_line
from tests.conftest import url_arg
from tests.tenants import add_memories, make_org
from tests.tenants import count_memories as _count


async def test_retention_of_100k_never_blocks_a_writer_and_locks_one_batch_at_a_time(migrated, db_url):
    org, agent = await make_org(migrated, "load-a")
    other, other_agent = await make_org(migrated, "load-b")
    await add_memories(migrated, org, agent, 100_000, "expired", accessed_days_ago=45)
    await add_memories(migrated, org, agent, 500, "fresh", accessed_days_ago=1)
    await add_memories(migrated, org, agent, 500, "personal", tier="personal", accessed_days_ago=400)
    await add_memories(migrated, other, other_agent, 300, "other org fresh", accessed_days_ago=2)
    async with migrated.connect() as conn:
        untouched_before = (await conn.execute(text(
            "SELECT md5(string_agg(id::text || updated_at::text || status || coalesce(deleted_at::text, ''), ',' "
            "ORDER BY id)) FROM agent_memory.memories WHERE content NOT LIKE 'expired %'"))).scalar()

    writer = await asyncpg.connect(asyncpg_dsn(db_url))
    await writer.execute("SET lock_timeout = '200ms'")  # a longer lock wait fails the writer, and the test
    waits: list[float] = []
    stop = asyncio.Event()

    async def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            t0 = time.perf_counter()
            await writer.execute(
                "INSERT INTO agent_memory.memories (org_id, agent_id, category, content, tier) "
                "VALUES ($1, $2, 'factual', $3, 'task')", org, agent, f"written during maintain {i}")
            waits.append(time.perf_counter() - t0)
            await asyncio.sleep(0.005)

    sampler = await asyncpg.connect(asyncpg_dsn(db_url))
    lock_waits: list[float] = []

    async def sample_lock_waits() -> None:
        """How long the writer is seen waiting on a lock (pg_locks, not granted), every 5 ms."""
        since = None
        while not stop.is_set():
            waiting = await sampler.fetchval("SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
                                             writer.get_server_pid())
            now = time.perf_counter()
            if waiting and since is None:
                since = now
            elif not waiting and since is not None:
                lock_waits.append(now - since)
                since = None
            await asyncio.sleep(0.005)

    task = asyncio.create_task(write())
    watch = asyncio.create_task(sample_lock_waits())
    try:
        result = await maintain(migrated, MaintainOptions(tasks=("retention",), batch_size=1000))
    finally:
        stop.set()
        await task
        await watch
        await writer.close()
        await sampler.close()
    retention = result.tasks[0]
    print(f"retention of 100k: {retention.elapsed_s} s in {retention.batches} batches; writer: {len(waits)} inserts, "
          f"max {max(waits) * 1000:.1f} ms, p50 {sorted(waits)[len(waits) // 2] * 1000:.2f} ms; lock waits seen: "
          f"{len(lock_waits)}, longest {max(lock_waits, default=0) * 1000:.1f} ms")
    assert result.ok and retention.rows == 100_000 and retention.batches == 100
    assert retention.max_batch_rows <= 1000
    # The writer kept inserting through the run, and every insert finished within the server's
    # lock_timeout of 200 ms (a longer lock wait raises in the writer, and fails this test).
    assert len(waits) > 0
    async with migrated.connect() as conn:
        per_xact = (await conn.execute(text(
            "SELECT max(n) FROM (SELECT xmin::text, count(*) AS n FROM agent_memory.memories "
            "WHERE deleted_at IS NOT NULL GROUP BY 1) x"))).scalar()
        untouched_after = (await conn.execute(text(
            "SELECT md5(string_agg(id::text || updated_at::text || status || coalesce(deleted_at::text, ''), ',' "
            "ORDER BY id)) FROM agent_memory.memories WHERE content NOT LIKE 'expired %' "
            "AND content NOT LIKE 'written during%'"))).scalar()
    assert per_xact <= 1000  # rows changed (row locks held) by any one transaction
    assert untouched_after == untouched_before  # nothing outside the policy was touched
    assert await _count(migrated, "content LIKE 'written during%' AND deleted_at IS NULL") == len(waits)


async def _cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "memctl", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_overlapping_runs_exit_75_and_a_killed_run_is_resumed_without_double_work(scratch_migrated):
    engine, url = scratch_migrated
    org, agent = await make_org(engine, "kill-a")
    await add_memories(engine, org, agent, 30_000, "expired", accessed_days_ago=45)
    await add_memories(engine, org, agent, 200, "fresh", accessed_days_ago=1)
    u = url_arg(url)

    first = await _cli("maintain", "retention", "--batch-size", "50", "--json", "--database-url", u)
    for _ in range(200):  # until the first run is visibly working
        if await _count(engine, "deleted_at IS NOT NULL") > 0:
            break
        await asyncio.sleep(0.05)
    second = await _cli("maintain", "--database-url", u)
    out, err = await second.communicate()
    assert second.returncode == 75 and out == b""
    assert "another memctl maintain run holds the lock" in one_error_line(err.decode())

    os.kill(first.pid, signal.SIGKILL)
    await first.wait()
    done_by_first = await _count(engine, "deleted_at IS NOT NULL")
    assert 0 < done_by_first < 30_000, done_by_first

    third = await _cli("maintain", "retention", "--batch-size", "5000", "--json", "--database-url", u)
    out, err = await third.communicate()
    assert third.returncode == 0, err.decode()
    report = json.loads(out)["tasks"][0]
    assert report["rows"] == 30_000 - done_by_first  # no row changed twice
    assert await _count(engine, "deleted_at IS NOT NULL") == 30_000
    assert await _count(engine, "content LIKE 'fresh %' AND deleted_at IS NULL") == 200



async def test_two_cron_runs_appended_to_one_file_parse_line_by_line(scratch_migrated, tmp_path):
    _engine, url = scratch_migrated
    log = tmp_path / "maintain.json"
    for _ in range(2):  # what the README's crontab line does: stdout appended, not a terminal
        with log.open("a") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "memctl", "maintain", "--dry-run", "--json", "--database-url", url_arg(url),
                stdout=out, stderr=asyncio.subprocess.PIPE)
            await proc.wait()
        assert proc.returncode == 0
    with log.open("a") as out:  # a night the database is down: recorded too, with its exit code
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "memctl", "maintain", "--json", "--database-url", "postgresql://u:pw-x1@127.0.0.1:1/db",
            stdout=out, stderr=asyncio.subprocess.PIPE)
        await proc.wait()
    *runs, down = [json.loads(line) for line in log.read_text().splitlines()]
    assert down["run"]["exit_code"] == 2 == proc.returncode and "cannot connect" in down["error"]
    assert "pw-x1" not in json.dumps(down) and down["run"]["database"] == "postgresql+asyncpg://u:***@127.0.0.1:1/db"
    assert len(runs) == 2 and all(r["dry_run"] and r["run"]["exit_code"] == 0 for r in runs)
    for r in runs:
        assert r["run"]["command"] == "maintain" and r["run"]["memctl_version"]
        assert f"/{url.database}?" in r["run"]["database"] and r["run"]["started_at"] <= r["run"]["finished_at"]
