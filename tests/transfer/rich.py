"""A seeded organisation made rich: two users with personal memories, versions, tags, edges, a collection,
sessions with checkpoints, API tokens, consolidated memories (one built from both users' memories, one
from bob's only), tasks with stages citing memories in raw_memory_refs (one in upper case) and errors,
and the self-references of memories (superseded_by, merged_into) and of the task/stage cycle.

Everything is consistent: check-constraints is clean on it (the tests assert so first).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.transfer.tables import tenant_tables

S = "agent_memory"


@dataclass
class Rich:
    """Ids of what :func:`enrich` made: the organisation, alice and bob, their memories (alice's
    first), the consolidation citing both (``mixed``) and bob's own (``bobs``)."""

    org: uuid.UUID
    alice: uuid.UUID
    bob: uuid.UUID
    alice_memories: list[uuid.UUID]
    bob_memories: list[uuid.UUID]
    mixed: uuid.UUID
    bobs: uuid.UUID


async def _one(conn: AsyncConnection, sql: str, **params):
    return (await conn.execute(text(sql), params)).scalar()


async def enrich(conn: AsyncConnection, slug: str) -> Rich:
    """Make seeded organisation ``slug`` rich (module docstring); the ids."""
    org = await _one(conn, f"SELECT id FROM {S}.organizations WHERE slug = :s", s=slug)
    agent = await _one(conn, f"SELECT id FROM {S}.agents WHERE org_id = :o ORDER BY name LIMIT 1", o=org)
    ids = (await conn.execute(text(f"SELECT id FROM {S}.memories WHERE org_id = :o ORDER BY created_at, id LIMIT 260"),
                              {"o": org})).scalars().all()
    alice = await _one(conn, f"INSERT INTO {S}.users (org_id, external_id) VALUES (:o, 'alice') RETURNING id", o=org)
    bob = await _one(conn, f"INSERT INTO {S}.users (org_id, external_id) VALUES (:o, 'bob') RETURNING id", o=org)
    a, b = list(ids[:120]), list(ids[120:200])
    run = conn.execute
    await run(text(f"UPDATE {S}.memories SET user_id = :u WHERE id = ANY(:ids)"), {"u": alice, "ids": a})
    await run(text(f"UPDATE {S}.memories SET user_id = :u WHERE id = ANY(:ids)"), {"u": bob, "ids": b})
    await run(text(f"UPDATE {S}.memories SET tier = 'personal' WHERE id = ANY(:ids)"), {"ids": a[:40] + b[:20]})
    for i, m in enumerate(a[:3] + b[:2]):
        await run(text(f"INSERT INTO {S}.memory_versions (org_id, memory_id, version_num, content, content_hash) "
                       "VALUES (:o, :m, 1, :c, :h)"), {"o": org, "m": m, "c": f"draft {i}",
                                                       "h": hashlib.sha256(f"draft {i}".encode()).hexdigest()})
    await run(text(f"UPDATE {S}.memories SET superseded_by = :t WHERE id = :m"), {"t": a[6], "m": a[5]})
    await run(text(f"UPDATE {S}.memories SET merged_into = :t WHERE id = :m"), {"t": b[5], "m": a[7]})
    await run(text(f"UPDATE {S}.memories SET merged_into = :t WHERE id = :m"), {"t": a[8], "m": b[6]})
    await run(text(f"INSERT INTO {S}.memory_tags (org_id, memory_id, tag) SELECT :o, unnest(CAST(:ids AS uuid[])), "
                   "'tag-a'"), {"o": org, "ids": a[:60] + b[:30]})
    for i in range(20):
        await run(text(f"INSERT INTO {S}.memory_relationships (org_id, source_memory_id, target_memory_id, "
                       "relationship_type) VALUES (:o, :s, :t, 'supports')"), {"o": org, "s": a[i], "t": b[i]})
    coll = await _one(conn, f"INSERT INTO {S}.memory_collections (org_id, user_id, collection_type, name) "
                            "VALUES (:o, :u, 'list', 'favourites') RETURNING id", o=org, u=bob)
    await run(text(f"INSERT INTO {S}.memory_collection_items (org_id, collection_id, memory_id) "
                   "SELECT :o, :c, unnest(CAST(:ids AS uuid[]))"), {"o": org, "c": coll, "ids": a[:5] + b[:5]})
    for user in (alice, bob):
        sess = await _one(conn, f"INSERT INTO {S}.sessions (org_id, agent_id, user_id) VALUES (:o, :a, :u) "
                                "RETURNING id", o=org, a=agent, u=user)
        for step in (1, 2):
            await run(text(f"INSERT INTO {S}.checkpoints (org_id, session_id, step) VALUES (:o, :s, :n)"),
                      {"o": org, "s": sess, "n": step})
        await run(text(f"INSERT INTO {S}.api_tokens (org_id, user_id, name, token_prefix, token_hash) "
                       "VALUES (:o, :u, 'token', 'abcdefgh', :h)"),
                  {"o": org, "u": user, "h": hashlib.sha256(str(user).encode()).hexdigest()})
    cms = []
    for sources in ([a[0], b[0]], [b[1], b[2]]):
        cm = await _one(conn, f"INSERT INTO {S}.consolidated_memories (org_id, content, tier, abstraction_level, "
                              "pattern_type, source_memory_ids, consolidation_method) VALUES (:o, :c, 'task', 2, "
                              "'summary', CAST(:s AS uuid[]), 'manual') RETURNING id",
                        o=org, c=f"summary of {len(cms)}", s=sources)
        await run(text(f"INSERT INTO {S}.consolidated_memory_embeddings (org_id, consolidated_memory_id, model_id, "
                       f"dim, embedding) SELECT org_id, :cm, model_id, dim, embedding FROM {S}.memory_embeddings "
                       "WHERE org_id = :o AND memory_id = :m"), {"o": org, "cm": cm, "m": sources[0]})
        cms.append(cm)
    await run(text(f"UPDATE {S}.memories SET consolidated_into_id = :c, is_consolidated = true WHERE id = ANY(:ids)"),
              {"c": cms[0], "ids": [a[0], b[0], b[3]]})
    await run(text(f"UPDATE {S}.memories SET consolidated_into_id = :c, is_consolidated = true WHERE id = ANY(:ids)"),
              {"c": cms[1], "ids": [b[1], b[2]]})
    for t in range(2):
        task = await _one(conn, f"INSERT INTO {S}.task_contexts (org_id, agent_id, task_goal) VALUES (:o, :a, :g) "
                                "RETURNING id", o=org, a=agent, g=f"goal {t}")
        stage = None
        for _ in range(2):
            refs = json.dumps([str(a[10 + t]).upper(), str(b[10 + t])])
            stage = await _one(conn, f"INSERT INTO {S}.stage_memories (org_id, task_id, stage_type, raw_memory_refs) "
                                     "VALUES (:o, :t, 'planning', CAST(:r AS jsonb)) RETURNING id",
                               o=org, t=task, r=refs)
        await run(text(f"UPDATE {S}.task_contexts SET current_stage_id = :s WHERE id = :t"), {"s": stage, "t": task})
        await run(text(f"INSERT INTO {S}.task_errors (org_id, task_id, stage_id, error_type, error_severity) "
                       "VALUES (:o, :t, :s, 'missing_info', 0.5)"), {"o": org, "t": task, "s": stage})
    return Rich(org, alice, bob, a, b, cms[0], cms[1])


async def row_hashes(engine: AsyncEngine, org: uuid.UUID, *, without_ids: bool = False) -> dict[str, list[str]]:
    """Per tenant table, the sorted MD5 of each of the organisation's rows (stored columns). With
    ``without_ids`` the columns that hold ids (uuid, uuid[], raw_memory_refs) and the slug are left out,
    so a copy under new ids compares equal to its source."""
    out = {}
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        for t in await tenant_tables(raw):
            cols = [c.name for c in t.columns if not without_ids or (
                c.type not in ("uuid", "_uuid") and c.name not in ("raw_memory_refs", "slug"))]
            row = ", ".join(f'"{c}"' for c in cols)
            rows = (await conn.execute(text(f"SELECT md5(row({row})::text) FROM {S}.{t.name} WHERE {t.key} = :o"),
                                       {"o": org})).scalars()
            out[t.name] = sorted(rows)
    return out
