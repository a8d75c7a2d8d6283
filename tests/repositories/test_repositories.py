"""memctl.repositories as a service uses them: connected as a member of memory_app (RLS applies)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from memctl.db.engine import make_engine
from memctl.errors import ConfigError, DatasetError
from memctl.repositories import org_scope
from tests.tenants import make_org


@pytest.fixture(scope="module")
async def service(migrated, app_login):
    """(service engine, (org A, agent A), (org B, agent B)); orgs made by the owner."""
    a = await make_org(migrated, "repo-a")
    b = await make_org(migrated, "repo-b")
    engine = make_engine(app_login)
    yield engine, a, b
    await engine.dispose()


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


async def test_add_deduplicates_and_search_stays_in_the_organisation(service):
    engine, (org_a, agent_a), (org_b, agent_b) = service
    async with org_scope(engine, org_a) as uow:
        first = await uow.memories.add(agent_a, "likes green tea", category="preference", embedding=unit(1))
        again = await uow.memories.add(agent_a, "likes green tea", category="preference", embedding=unit(1))
        for i in range(2, 30):
            await uow.memories.add(agent_a, f"a fact {i}", embedding=unit(i))
    assert first.created and not again.created and again.id == first.id
    async with org_scope(engine, org_b) as uow:
        b_mem = await uow.memories.add(agent_b, "likes green tea", category="preference", embedding=unit(1))
        assert b_mem.created and b_mem.id != first.id  # same content, another tenant: its own memory

    async with org_scope(engine, org_a) as uow:
        hits = await uow.memories.search(unit(1), k=5)
        assert hits[0].id == first.id and hits[0].distance == pytest.approx(0.0, abs=1e-5)
        assert [h.distance for h in hits] == sorted(h.distance for h in hits) and len(hits) == 5
        assert b_mem.id not in {h.id for h in hits}
        assert await uow.memories.get(b_mem.id) is None  # B's memory does not exist for A
        assert await uow.memories.soft_delete(b_mem.id) is False
    async with org_scope(engine, org_b) as uow:
        assert (await uow.memories.get(b_mem.id)).deleted_at is None  # untouched by A


async def test_hot_cache_versions_and_soft_delete(service):
    engine, (org_a, agent_a), _ = service
    async with org_scope(engine, org_a) as uow:
        m = (await uow.memories.add(agent_a, "meeting at 10")).id
        other = (await uow.memories.add(agent_a, "meeting room 4")).id
        assert await uow.memories.mark_retrieved([m, other]) == 2
        assert await uow.memories.mark_retrieved([m]) == 1
        hot = await uow.memories.hot(agent_a, limit=2)
        assert [h.id for h in hot] == [m, other] and hot[0].retrieval_count == 2
        assert await uow.memories.update_content(m, "meeting at 11", changed_by="planner", reason="moved")
        versions = await uow.memories.versions(m)
        assert [(v.version_num, v.content, v.changed_by, v.change_reason) for v in versions] == [
            (1, "meeting at 10", "planner", "moved")]
        assert await uow.memories.soft_delete(m) and not await uow.memories.soft_delete(m)
        assert m not in {h.id for h in await uow.memories.hot(agent_a, limit=50)}
        assert (await uow.memories.add(agent_a, "meeting at 11")).created  # the deleted one no longer dedups


async def test_sessions_and_bad_input(service):
    engine, (org_a, agent_a), (org_b, _agent_b) = service
    async with org_scope(engine, org_a) as uow:
        sid = await uow.sessions.start(agent_a, metadata={"channel": "chat"})
        assert [s.id for s in await uow.sessions.list(agent_a, open_only=True)] == [sid]
        assert await uow.sessions.end(sid) and not await uow.sessions.end(sid)
        assert (await uow.sessions.get(sid)).ended_at is not None
    async with org_scope(engine, org_b) as uow:
        assert await uow.sessions.get(sid) is None and await uow.sessions.list() == []
    with pytest.raises(ConfigError, match="UUID"):
        async with org_scope(engine, "acme'; DROP TABLE x; --"):
            pass
    with pytest.raises(DatasetError, match="shape"):
        async with org_scope(engine, org_a) as uow:
            await uow.memories.add(agent_a, "bad vector", embedding=np.zeros(10, dtype=np.float32))
    async with org_scope(engine, uuid.uuid4()) as uow:  # an organisation that does not exist sees nothing
        assert await uow.memories.hot() == []


async def test_a_pooled_connection_never_carries_a_tenant_to_the_next_checkout(service):
    engine, (org_a, agent_a), _b = service
    async with org_scope(engine, org_a) as uow:
        await uow.memories.add(agent_a, "seen only by org A", embedding=unit(7))
        # A careless service sets the tenant for the session, not the transaction:
        await uow.conn.execute(text("SELECT set_config('app.current_org_id', :o, false)"), {"o": str(org_a)})
    for _ in range(3):  # whichever pooled connection comes next, with no organisation set
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT current_setting('app.current_org_id', true)"))).scalar() == ""
            assert (await conn.execute(text("SELECT count(*) FROM agent_memory.memories"))).scalar() == 0


async def test_the_application_cannot_create_organisations_nor_learn_their_slugs(service, app_login):
    engine, _a, _b = service
    for slug in ("repo-b", "brand-new"):  # an existing slug, and a free one: the same refusal
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as err:
                await conn.execute(text("INSERT INTO agent_memory.organizations (slug, name) VALUES (:s, :s)"),
                                   {"s": slug})
        assert "permission denied for table organizations" in str(err.value) and "duplicate" not in str(err.value)
