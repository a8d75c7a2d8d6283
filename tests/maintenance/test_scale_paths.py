"""Revision 0018's maintenance paths: the HNSW graph holds searchable rows only, expire
reads only its organisation's due rows, and reindex judges the dead share against the table's size
when the statistics were reset (issue 15)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from memctl.data.datasets import load_npz
from memctl.data.seed import seed
from memctl.maintenance.run import maintain
from memctl.maintenance.tasks import EXPIRE
from memctl.maintenance.types import MaintainOptions

S = "agent_memory"
INDEX = f"{S}.ix_memory_embeddings_hnsw_1"


async def _scalar(engine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def _expire(engine, share_mod: int) -> int:
    async with engine.begin() as conn:
        return (await conn.execute(text(
            f"UPDATE {S}.memories SET expires_at = now() - interval '1 day' WHERE status = 'active' "
            f"AND deleted_at IS NULL AND abs(hashtext(id::text)) % {share_mod} = 0"))).rowcount


async def test_archived_rows_leave_the_graph_and_expire_reads_only_due_rows(migrated, dataset_path):
    await seed(migrated, load_npz(dataset_path, limit=1200), orgs=3)
    expired = await _expire(migrated, 4)
    assert expired > 200
    # The batch picker reads the organisation's due rows through the per-organisation partial index.
    async with migrated.connect() as conn:
        await conn.execute(text(f"ANALYZE {S}.memories"))
        org = (await conn.execute(text(f"SELECT id FROM {S}.organizations WHERE slug = 'seed-org-01'"))).scalar()
        plan = "\n".join((await conn.execute(text("EXPLAIN " + EXPIRE.sql()), {"org": org, "batch": 50})).scalars())
    assert "ix_memories_org_id_expires_at" in plan, plan
    done = await maintain(migrated, MaintainOptions(tasks=("expire",), batch_size=50))
    assert done.ok and done.tasks[0].rows == expired
    # The graph holds searchable rows only, so an archived row's new version gets no graph entry
    # (PostgreSQL inserts into a partial index only rows its predicate admits). The time this saves
    # is measured by benchmarks/scale.py, not here.
    predicate = await _scalar(migrated, f"SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                                        f"WHERE indexrelid = '{INDEX}'::regclass")
    assert "searchable" in predicate


async def _settle(engine, dead_at_least: int) -> None:
    """Close the pool's sessions (a backend flushes its statistics on exit) and wait until
    memory_embeddings' dead tuples reach ``dead_at_least`` (at most 10 s)."""
    await engine.dispose()
    for _ in range(100):
        dead = await _scalar(engine, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = "
                                     f"'{S}.memory_embeddings'::regclass")
        if dead >= dead_at_least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"memory_embeddings shows {dead} dead tuples, expected {dead_at_least}")


async def test_reindex_reads_the_dead_share_against_the_table_after_a_statistics_reset(migrated, dataset_path):
    await seed(migrated, load_npz(dataset_path, limit=1000), orgs=2)
    async with migrated.begin() as conn:  # autovacuum would clear the dead tuples this test counts
        await conn.execute(text(f"ALTER TABLE {S}.memory_embeddings SET (autovacuum_enabled = off)"))
    try:
        await _scalar(migrated, f"SELECT pg_stat_reset_single_table_counters('{S}.memory_embeddings'::regclass)")
    except Exception as exc:  # DATABASE_URL as a role without the function's privilege
        pytest.skip(f"cannot reset statistics here: {exc}")
    expired = await _expire(migrated, 10)
    assert 50 < expired < 200
    await maintain(migrated, MaintainOptions(tasks=("expire",)))
    await _settle(migrated, expired)
    dry = await maintain(migrated, MaintainOptions(tasks=("reindex",), dry_run=True))
    assert dry.tasks[0].indexes == []  # about 10 % dead: the reset statistics alone read 100 %
    more = await _expire(migrated, 2)  # about half of the rest
    await maintain(migrated, MaintainOptions(tasks=("expire",)))
    await _settle(migrated, expired + more)
    dry = await maintain(migrated, MaintainOptions(tasks=("reindex",), dry_run=True))
    assert dry.tasks[0].indexes == ["ix_memory_embeddings_hnsw_1"], dry.tasks[0].details
