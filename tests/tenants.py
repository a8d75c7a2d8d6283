"""Test data: organisations with an agent, and bulk memories, written as the owner (RLS bypassed)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def make_org(engine: AsyncEngine, slug: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Create organisation ``slug`` with one agent; (org id, agent id)."""
    async with engine.begin() as conn:
        org = (await conn.execute(text(
            "INSERT INTO agent_memory.organizations (slug, name) VALUES (:s, :s) RETURNING id"), {"s": slug})).scalar()
        agent = (await conn.execute(text(
            "INSERT INTO agent_memory.agents (org_id, name) VALUES (:o, 'agent') RETURNING id"), {"o": org})).scalar()
    return org, agent


async def add_memories(engine: AsyncEngine, org: uuid.UUID, agent: uuid.UUID, n: int, label: str, *,
                       tier: str = "task", accessed_days_ago: float = 0, created_days_ago: float = 0,
                       expires_days_ago: float | None = None, deleted_days_ago: float | None = None) -> None:
    """Insert ``n`` memories 'label i' with the given ages (days before now); personal ones belong to
    the organisation's user 'owner' (CHECK personal_has_user, revision 0014)."""
    async with engine.begin() as conn:
        user = None
        if tier == "personal":
            user = (await conn.execute(text(
                "INSERT INTO agent_memory.users (org_id, external_id) VALUES (:o, 'owner') ON CONFLICT "
                "(org_id, external_id) DO UPDATE SET external_id = EXCLUDED.external_id RETURNING id"),
                {"o": org})).scalar()
        await conn.execute(text(
            "INSERT INTO agent_memory.memories (org_id, agent_id, user_id, category, content, tier, accessed_at, "
            "created_at, expires_at, deleted_at) SELECT :o, :a, :u, 'factual', :label || ' ' || g, :tier, "
            "now() - make_interval(secs => :acc * 86400), now() - make_interval(secs => :cre * 86400), "
            "now() - make_interval(secs => :exp * 86400), now() - make_interval(secs => :del * 86400) "
            "FROM generate_series(1, :n) g"),
            {"o": org, "a": agent, "u": user, "label": label, "tier": tier, "acc": accessed_days_ago,
             "cre": max(created_days_ago, accessed_days_ago), "n": n,
             "exp": expires_days_ago, "del": deleted_days_ago})


async def count_memories(engine: AsyncEngine, where: str, **params) -> int:
    """How many memories match ``where`` (a condition with named parameters)."""
    async with engine.connect() as conn:
        return (await conn.execute(text(f"SELECT count(*) FROM agent_memory.memories WHERE {where}"), params)).scalar()
