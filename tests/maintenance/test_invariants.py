"""A hypothesis state machine on the real server: random add / update / soft-delete / archive /
consolidate / link / age steps and every maintain task, and after every step check-constraints is
clean and search(k) returns min(k, active memories of the organisation with an embedding) rows."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import text

from memctl.data import registry
from memctl.data.checks import check_constraints
from memctl.db.engine import make_engine
from memctl.maintenance.run import maintain
from memctl.maintenance.types import TASKS, MaintainOptions
from memctl.repositories import org_scope
from memctl.repositories.search_sql import available_sql
from tests.tenants import make_org

K = 5
S = "agent_memory"


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


class MemoryLifecycle(RuleBasedStateMachine):
    """One organisation's memories under random service and maintenance steps (URL set per test)."""

    url = None
    memories = Bundle("memories")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(self.url)
        self.slug = f"sm-{uuid.uuid4().hex[:10]}"
        self.org, self.agent = self.run(make_org(self.engine, self.slug))
        self.counter = 0

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    async def _sql(self, sql: str, **params) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(sql), {"o": self.org, **params})

    @rule(target=memories, seed=st.integers(0, 50))
    def add(self, seed):
        self.counter += 1

        async def go():
            async with org_scope(self.engine, self.org) as uow:
                return (await uow.memories.add(self.agent, f"fact {self.counter}", embedding=unit(seed))).id
        return self.run(go())

    @rule(memory=memories, seed=st.integers(0, 50))
    def update(self, memory, seed):
        async def go():  # a service re-embeds what it edits (else check-constraints reports stale_embedding)
            async with org_scope(self.engine, self.org) as uow:
                model = await uow.memories.current_model()
                await uow.memories.update_content(memory, f"edited {uuid.uuid4().hex[:6]}", changed_by="sm",
                                                  embeddings={model: unit(seed)})
        self.run(go())

    @rule(memory=memories)
    def soft_delete(self, memory):
        async def go():
            async with org_scope(self.engine, self.org) as uow:
                await uow.memories.soft_delete(memory)
        self.run(go())

    @rule(memory=memories)
    def archive(self, memory):
        self.run(self._sql(f"UPDATE {S}.memories SET status = 'archived' WHERE org_id = :o AND id = :m", m=memory))

    @rule(memory=memories)
    def age(self, memory):  # retention's default policy takes task memories 30 days after last access
        self.run(self._sql(f"UPDATE {S}.memories SET accessed_at = now() - interval '40 days', "
                           f"created_at = now() - interval '40 days' WHERE org_id = :o AND id = :m", m=memory))

    @rule(sources=st.lists(memories, min_size=1, max_size=3, unique=True))
    def consolidate(self, sources):
        self.run(self._sql(
            f"INSERT INTO {S}.consolidated_memories (org_id, content, tier, abstraction_level, pattern_type, "
            f"source_memory_ids, consolidation_method) SELECT :o, 'summary', 'project', 1, 'summary', "
            f"array_agg(id), 'manual' FROM {S}.memories WHERE org_id = :o AND id = ANY(:s) HAVING count(*) > 0",
            s=list(sources)))
        # with its embedding in the organisation's model, as a consolidator writes it
        self.run(self._sql(
            f"INSERT INTO {S}.consolidated_memory_embeddings (org_id, consolidated_memory_id, model_id, dim, "
            f"embedding) "
            f"SELECT c.org_id, c.id, 1, 384, array_fill(0.1, ARRAY[384])::vector FROM {S}.consolidated_memories c "
            f"WHERE c.org_id = :o AND NOT EXISTS (SELECT 1 FROM {S}.consolidated_memory_embeddings e "
            f"WHERE e.org_id = c.org_id AND e.consolidated_memory_id = c.id)"))

    @rule(a=memories, b=memories)
    def link(self, a, b):
        if a != b:
            self.run(self._sql(
                f"INSERT INTO {S}.memory_relationships (org_id, source_memory_id, target_memory_id, relationship_type) "
                f"SELECT :o, :a, :b, 'related' WHERE EXISTS (SELECT 1 FROM {S}.memories WHERE org_id = :o AND id = :a) "
                f"AND EXISTS (SELECT 1 FROM {S}.memories WHERE org_id = :o AND id = :b) ON CONFLICT DO NOTHING",
                a=a, b=b))

    @rule(task=st.sampled_from(TASKS))
    def maintain_task(self, task):
        result = self.run(maintain(self.engine, MaintainOptions(tasks=(task,), orgs=(self.slug,), grace_s=0)))
        assert result.ok, result

    @invariant()
    def constraints_hold_and_search_returns_min_k(self):
        checked = self.run(check_constraints(self.engine))
        assert checked.clean, checked.violations

        async def go():
            async with org_scope(self.engine, self.org) as uow:
                hits = await uow.memories.search(unit(7), k=K)
                model = await registry.get_model(uow.conn)
                available = (await uow.conn.exec_driver_sql(available_sql(model), (self.org,))).scalar()
            return hits, available
        hits, available = self.run(go())
        assert len(hits) == min(K, available) and not hits.stopped_early, (len(hits), available)


def test_memory_lifecycle_state_machine(scratch_migrated):
    _engine, url = scratch_migrated  # a database of its own: check-constraints sees only this test's rows
    MemoryLifecycle.url = url
    test = MemoryLifecycle.TestCase
    test.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                             suppress_health_check=list(HealthCheck))
    test().runTest()
