"""search(k) returns min(k, active memories with an embedding) rows, on the HNSW index, as a service."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from memctl.data import registry
from memctl.data.datasets import load_npz
from memctl.db.engine import make_engine
from memctl.models.embeddings import hnsw_index_name
from memctl.repositories import org_scope
from memctl.repositories.search_sql import search_sql
from tests.tenants import make_org

N = 3000  # enough rows that the planner would rather use the index than sort them all
K = 10


@pytest.fixture(scope="module")
async def big_org(migrated, app_login, dataset_path):
    """(service engine, org id, ids (N,), vectors (N, 384) float32) of one organisation's memories."""
    vectors = load_npz(dataset_path).embeddings[:N]
    org, agent = await make_org(migrated, "contract-big")
    async with migrated.begin() as conn:
        ids = (await conn.execute(text(
            "INSERT INTO agent_memory.memories (org_id, agent_id, category, content) SELECT :o, :a, 'factual', "
            "'m ' || g FROM generate_series(0, :n - 1) g RETURNING id, content"), {"o": org, "a": agent, "n": N})).all()
        order = {content: i for i, (_id, content) in enumerate(ids)}
        ids = [i for i, _c in sorted(ids, key=lambda r: int(r[1].split()[1]))]
        assert len(order) == N
        raw = await (await conn.get_raw_connection()).driver_connection.executemany(
            "INSERT INTO agent_memory.memory_embeddings (org_id, memory_id, model_id, dim, embedding) "
            "VALUES ($1, $2, 1, 384, $3)", [(org, ids[i], vectors[i]) for i in range(N)])
        del raw
        await conn.execute(text("ANALYZE agent_memory.memories, agent_memory.memory_embeddings"))
    engine = make_engine(app_login)
    yield engine, org, np.array(ids), vectors
    await engine.dispose()


def exact_order(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Indexes of ``vectors`` by cosine distance to ``q``, nearest first."""
    return np.argsort(1.0 - (vectors @ q) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(q)), kind="stable")


async def test_k_rows_on_the_index_when_the_nearest_are_archived_or_deleted(big_org, migrated):
    engine, org, ids, vectors = big_org
    q = vectors[7]
    nearest = exact_order(vectors, q)
    hidden = ids[nearest[:60]]  # the 60 nearest: 40 archived, 20 soft-deleted
    async with org_scope(engine, org) as uow:
        await uow.conn.execute(text("UPDATE agent_memory.memories SET status = 'archived' WHERE id = ANY(:i)"),
                               {"i": list(hidden[:40])})
        for memory_id in hidden[40:]:
            assert await uow.memories.soft_delete(memory_id)
    async with org_scope(engine, org) as uow:
        await uow.conn.execute(text("SET LOCAL enable_seqscan = off"))
        hits = await uow.memories.search(q, k=K)
        model = await registry.get_model(uow.conn)
        plan = (await uow.conn.exec_driver_sql(f"EXPLAIN {search_sql(model, K)}", (q, org))).scalars().all()
    assert any(hnsw_index_name("memory_embeddings", model.id) in line for line in plan), plan
    assert len(hits) == K and hits.available is None and not hits.stopped_early
    assert not {h.id for h in hits} & set(hidden)
    truth = set(ids[nearest[60:60 + K]])  # the exact top-k of what is searchable
    assert len({h.id for h in hits} & truth) >= K - 1  # HNSW is approximate; the count is not

    # Only the K farthest stay searchable: the iterative scan must cross the whole graph to find them,
    # and with hnsw.max_scan_tuples = 10 it cannot: fewer rows, and the result says why.
    async with org_scope(engine, org) as uow:
        await uow.conn.execute(text("UPDATE agent_memory.memories SET status = 'archived' WHERE NOT id = ANY(:i)"),
                               {"i": list(ids[nearest[-K:]])})
    async with org_scope(engine, org) as uow:
        await uow.conn.execute(text("SET LOCAL enable_seqscan = off"))
        far = await uow.memories.search(q, k=K)
        await uow.conn.execute(text("SET LOCAL hnsw.max_scan_tuples = 10"))
        short = await uow.memories.search(q, k=K)
    assert {h.id for h in far} == set(ids[nearest[-K:]]) and not far.stopped_early
    assert len(short) < K and short.stopped_early and short.available == K


async def test_fewer_rows_than_k_returns_them_all(migrated, app_login):
    org, agent = await make_org(migrated, "contract-small")
    engine = make_engine(app_login)
    try:
        rng = np.random.default_rng(3)
        async with org_scope(engine, org) as uow:
            added = [await uow.memories.add(agent, f"small {i}", embedding=rng.normal(size=384).astype(np.float32))
                     for i in range(6)]
            await uow.memories.add(agent, "no embedding")
            assert await uow.memories.soft_delete(added[0].id)
        async with org_scope(engine, org) as uow:
            hits = await uow.memories.search(rng.normal(size=384).astype(np.float32), k=K)
        assert len(hits) == 5 and hits.available == 5 and not hits.stopped_early
        assert added[0].id not in {h.id for h in hits}
    finally:
        await engine.dispose()
