"""memctl maintain: each task on the real server, batches, --dry-run, scoping and the lock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from memctl.data.checks import check_constraints
from memctl.db.locks import advisory_lock
from memctl.errors import LockHeld, NotFound
from memctl.maintenance.batches import Batch, UnsafeStatement
from memctl.maintenance.run import LOCK_NAME, maintain
from memctl.maintenance.types import MaintainOptions
from tests.tenants import add_memories, make_org
from tests.tenants import count_memories as _count


async def _max_rows_per_transaction(engine, where: str) -> int:
    """Rows changed by one transaction, read from the new row versions' xmin: the row locks it held."""
    async with engine.connect() as conn:
        return (await conn.execute(text(
            f"SELECT coalesce(max(n), 0) FROM (SELECT xmin::text, count(*) AS n FROM agent_memory.memories "
            f"WHERE {where} GROUP BY 1) x"))).scalar()


async def test_retention_default_policy_and_org_policy_in_batches(migrated):
    a_org, a_agent = await make_org(migrated, "ret-a")
    b_org, b_agent = await make_org(migrated, "ret-b")
    await add_memories(migrated, a_org, a_agent, 2500, "old task", accessed_days_ago=40)
    await add_memories(migrated, a_org, a_agent, 50, "recent task", accessed_days_ago=5)
    await add_memories(migrated, a_org, a_agent, 20, "old personal", tier="personal", accessed_days_ago=400)
    await add_memories(migrated, b_org, b_agent, 100, "b created", created_days_ago=20, accessed_days_ago=1)
    await add_memories(migrated, b_org, b_agent, 30, "b young", created_days_ago=2, accessed_days_ago=1)
    async with migrated.begin() as conn:  # org B: task memories archived 10 days after creation
        await conn.execute(text("INSERT INTO agent_memory.retention_policies (org_id, tier, max_age_days, age_basis, "
                                "action) VALUES (:o, 'task', 10, 'created_at', 'archive')"), {"o": b_org})

    result = await maintain(migrated, MaintainOptions(tasks=("retention",), batch_size=500,
                                                      orgs=("ret-a", "ret-b")))
    task = result.tasks[0]
    assert result.ok and task.rows == 2600 and task.max_batch_rows == 500 and task.batches == 5 + 1
    assert await _count(migrated, "org_id = :o AND deleted_at IS NOT NULL", o=a_org) == 2500
    assert await _count(migrated, "org_id = :o AND content LIKE 'old task %' AND deleted_at IS NULL", o=a_org) == 0
    assert await _count(migrated, "org_id = :o AND deleted_at IS NULL AND status = 'active'", o=a_org) == 70
    assert await _count(migrated, "org_id = :o AND status = 'archived'", o=b_org) == 100
    assert await _count(migrated, "org_id = :o AND status = 'active' AND content LIKE 'b young%'", o=b_org) == 30
    assert await _max_rows_per_transaction(migrated, "deleted_at IS NOT NULL") <= 500
    again = await maintain(migrated, MaintainOptions(tasks=("retention",), orgs=("ret-a", "ret-b")))
    assert again.tasks[0].rows == 0  # nothing is changed twice


async def test_expire_purge_with_children_and_stale_consolidation(migrated):
    org, agent = await make_org(migrated, "exp-a")
    await add_memories(migrated, org, agent, 40, "expired", tier="personal", expires_days_ago=1)
    await add_memories(migrated, org, agent, 10, "not yet", tier="personal", expires_days_ago=-3)
    await add_memories(migrated, org, agent, 30, "long gone", tier="personal", deleted_days_ago=10)
    await add_memories(migrated, org, agent, 5, "just gone", tier="personal", deleted_days_ago=1)
    async with migrated.begin() as conn:
        await conn.execute(text(
            "INSERT INTO agent_memory.memory_tags (org_id, memory_id, tag) SELECT org_id, id, 'x' "
            "FROM agent_memory.memories WHERE org_id = :o AND content LIKE 'long gone%'"), {"o": org})
        await conn.execute(text(
            "UPDATE agent_memory.memories SET content = content || ' (edited)' WHERE org_id = :o "
            "AND content LIKE 'long gone%'"), {"o": org})  # one memory_versions row each
        for started_s, retries in ((7200, 0), (7200, 3), (600, 0)):
            await conn.execute(text(
                "INSERT INTO agent_memory.consolidation_jobs (org_id, status, trigger_type, triggered_by, started_at, "
                "retry_count, max_retries) VALUES (:o, 'running', 'scheduled', 'test', "
                "now() - make_interval(secs => :s), :r, 3)"), {"o": org, "s": started_s, "r": retries})

    result = await maintain(migrated, MaintainOptions(tasks=("expire", "purge", "consolidation", "vacuum"),
                                                      orgs=("exp-a",), batch_size=7))
    by = {t.task: t for t in result.tasks}
    assert result.ok and [t.task for t in result.tasks] == ["expire", "purge", "consolidation", "vacuum"]
    assert by["expire"].rows == 40 and by["expire"].max_batch_rows == 7
    assert await _count(migrated, "org_id = :o AND content LIKE 'expired%' AND status = 'archived'", o=org) == 40
    assert await _count(migrated, "org_id = :o AND content LIKE 'not yet%' AND status = 'active'", o=org) == 10
    assert by["purge"].rows == 30
    assert await _count(migrated, "org_id = :o AND content LIKE 'long gone%'", o=org) == 0
    assert await _count(migrated, "org_id = :o AND content LIKE 'just gone%'", o=org) == 5
    async with migrated.connect() as conn:
        for child in ("memory_tags", "memory_versions"):
            assert (await conn.execute(text(f"SELECT count(*) FROM agent_memory.{child} WHERE org_id = :o"),
                                       {"o": org})).scalar() == 0
        jobs = (await conn.execute(text("SELECT status, retry_count FROM agent_memory.consolidation_jobs "
                                        "WHERE org_id = :o ORDER BY status, retry_count"), {"o": org})).all()
    assert [tuple(j) for j in jobs] == [("failed", 3), ("pending", 1), ("running", 0)]
    assert by["consolidation"].rows == 2 and "1 failed, 1 pending" in by["consolidation"].details[0]
    assert set(by["vacuum"].tables) >= {"memories", "memory_tags", "consolidation_jobs"}


async def test_purge_keeps_what_a_consolidation_or_stage_memory_cites(migrated):
    """S1 "preserve source memories": after retention and purge --grace 0s, nothing dangles."""
    org, agent = await make_org(migrated, "cite-a")
    await add_memories(migrated, org, agent, 12, "cited old task", accessed_days_ago=40)
    async with migrated.begin() as conn:
        ids = (await conn.execute(text("SELECT id FROM agent_memory.memories WHERE org_id = :o ORDER BY content"),
                                  {"o": org})).scalars().all()
        await conn.execute(text(
            "INSERT INTO agent_memory.consolidated_memories (org_id, content, tier, abstraction_level, pattern_type, "
            "source_memory_ids, consolidation_method) VALUES (:o, 'summary', 'project', 1, 'summary', "
            "ARRAY[:a, :b, :c]::uuid[], 'manual')"), {"o": org, "a": ids[0], "b": ids[1], "c": ids[2]})
        task = (await conn.execute(text(
            "INSERT INTO agent_memory.task_contexts (org_id, agent_id, task_goal) VALUES (:o, :a, 'g') RETURNING id"),
            {"o": org, "a": agent})).scalar()
        await conn.execute(text(  # an upper-case id is the same uuid
            "INSERT INTO agent_memory.stage_memories (org_id, task_id, stage_type, raw_memory_refs) VALUES "
            "(:o, :t, 'planning', jsonb_build_array(CAST(:d AS text), upper(CAST(:e AS text))))"),
            {"o": org, "t": task, "d": str(ids[3]), "e": str(ids[4])})

    result = await maintain(migrated, MaintainOptions(tasks=("retention", "purge"), orgs=("cite-a",), grace_s=0))
    by = {t.task: t for t in result.tasks}
    assert result.ok and by["retention"].rows == 12 and by["purge"].rows == 7
    assert "cite-a: 5 kept, cited by a consolidation or stage memory (S1)" in by["purge"].details
    left = set(await _ids(migrated, org))
    assert left == set(ids[:5])  # cited: kept, soft-deleted
    assert await _count(migrated, "org_id = :o AND deleted_at IS NULL", o=org) == 0
    checked = await check_constraints(migrated)
    assert not {"dangling_source_memory_ids", "dangling_raw_memory_refs"} & {v.rule for v in checked.violations}

    async with migrated.begin() as conn:  # once nothing cites them, the next purge removes them
        await conn.execute(text("DELETE FROM agent_memory.consolidated_memories WHERE org_id = :o"), {"o": org})
        await conn.execute(text("DELETE FROM agent_memory.stage_memories WHERE org_id = :o"), {"o": org})
    again = await maintain(migrated, MaintainOptions(tasks=("purge",), orgs=("cite-a",), grace_s=0))
    assert again.tasks[0].rows == 5 and await _ids(migrated, org) == []


async def _ids(engine, org) -> list:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT id FROM agent_memory.memories WHERE org_id = :o"),
                                   {"o": org})).scalars().all()


async def _tuple_counters(engine) -> dict:
    async with engine.connect() as conn:
        return {r.relname: (r.n_tup_ins, r.n_tup_upd, r.n_tup_del) for r in (await conn.execute(text(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
            "WHERE schemaname = 'agent_memory'"))).all()}


async def _settled_counters(engine) -> dict:
    """Counters once every backend's pending statistics are flushed: an idle backend may hold them
    for up to 10 s, an exiting one flushes them, so the pool is closed first."""
    await engine.dispose()
    await asyncio.sleep(0.3)
    last = await _tuple_counters(engine)
    for _ in range(30):
        await asyncio.sleep(0.2)
        now = await _tuple_counters(engine)
        if now == last:
            return now
        last = now
    return last


async def test_dry_run_writes_nothing(migrated):
    org, agent = await make_org(migrated, "dry-a")
    await add_memories(migrated, org, agent, 300, "old", accessed_days_ago=60)
    await add_memories(migrated, org, agent, 20, "gone", deleted_days_ago=30)
    before = await _settled_counters(migrated)
    dry = await maintain(migrated, MaintainOptions(dry_run=True, batch_size=100))
    assert dry.ok and dry.dry_run
    by = {t.task: t for t in dry.tasks}
    assert by["retention"].rows >= 300 and by["retention"].batches >= 3 and by["purge"].rows >= 20
    assert await _settled_counters(migrated) == before
    assert await _count(migrated, "org_id = :o AND deleted_at IS NULL", o=org) == 300
    done = await maintain(migrated, MaintainOptions(tasks=("retention",), orgs=("dry-a",)))
    assert done.tasks[0].rows == 300
    after = await _settled_counters(migrated)  # the measurement sees real changes
    assert after["memories"][1] >= before["memories"][1] + 300


async def test_runtime_budget_stops_between_batches_and_the_next_run_continues(migrated):
    org, agent = await make_org(migrated, "budget-a")
    await add_memories(migrated, org, agent, 3000, "old", accessed_days_ago=90)
    first = await maintain(migrated, MaintainOptions(tasks=("retention", "expire"), orgs=("budget-a",), batch_size=10,
                                                     max_runtime_s=0.3))
    retention, expire = first.tasks
    assert first.ok and retention.stopped_by_budget and 0 < retention.rows < 3000
    assert expire.stopped_by_budget and expire.rows == 0  # no batch starts once the budget is spent
    second = await maintain(migrated, MaintainOptions(tasks=("retention",), orgs=("budget-a",), batch_size=1000))
    assert second.tasks[0].rows == 3000 - retention.rows and not second.tasks[0].stopped_by_budget


async def test_second_run_exits_75_at_once_and_bad_names_are_refused(migrated):
    async with advisory_lock(migrated, LOCK_NAME):
        with pytest.raises(LockHeld, match="another memctl maintain run holds the lock"):
            await maintain(migrated, MaintainOptions(tasks=("expire",)))
    with pytest.raises(NotFound, match="no organisation with slug"):
        await maintain(migrated, MaintainOptions(orgs=("nope'; DROP TABLE x; --",)))
    with pytest.raises(NotFound, match="no table"):
        await maintain(migrated, MaintainOptions(tasks=("vacuum",), tables=('memories"; DROP TABLE x; --',)))


def test_unscoped_statements_are_refused():
    good = Batch("memories", "tier = :tier", "DELETE").sql()
    assert good.count("org_id = :org") == 2 and "FOR UPDATE SKIP LOCKED" in good
    with pytest.raises(UnsafeStatement):
        Batch("memories", "", "DELETE").sql()
    from memctl.maintenance.batches import ensure_scoped
    with pytest.raises(UnsafeStatement):
        ensure_scoped("DELETE FROM agent_memory.memories WHERE (tier = :tier)", "tier = :tier")
    with pytest.raises(UnsafeStatement):
        ensure_scoped("DELETE FROM agent_memory.memories WHERE org_id = :org AND org_id = :org", "tier = :tier")
