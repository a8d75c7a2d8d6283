"""Revision 0013 on a database with data: embeddings written before it (content_hash NULL) become stale
when their content changes, a model name that breaks name_format is named, and a downgrade that would
forget states, choices or staleness is refused (issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from memctl.data.checks import check_constraints
from memctl.db.engine import make_engine
from memctl.errors import ConfigError, MigrationFailed
from memctl.migration import runner

pytestmark = pytest.mark.asyncio(loop_scope="session")
S = "agent_memory"


async def _at_revision_with_an_agent(url, revision: str):
    """An engine on ``url`` migrated to ``revision``, with one organisation and one agent."""
    engine = make_engine(url)
    await runner.upgrade(engine, revision)
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO {S}.organizations (slug, name) VALUES ('o', 'o')"))
        await conn.execute(text(f"INSERT INTO {S}.agents (org_id, name) SELECT id, 'a' FROM {S}.organizations"))
    return engine


async def test_embeddings_written_before_0013_turn_stale_when_their_content_changes(fresh_url):
    engine = await _at_revision_with_an_agent(fresh_url, "0012")
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                f"INSERT INTO {S}.memories (org_id, agent_id, category, content) SELECT org_id, id, 'factual', c "
                f"FROM {S}.agents, (VALUES ('kept as it is'), ('to be edited')) AS v(c)"))
            await conn.execute(text(
                f"INSERT INTO {S}.memory_embeddings (org_id, memory_id, model_id, dim, embedding) "
                f"SELECT org_id, id, 1, 384, array_fill(0.1, ARRAY[384])::vector FROM {S}.memories"))
            await conn.execute(text(f"INSERT INTO {S}.embedding_models (name, dim) VALUES ('old model ', 8)"))
        with pytest.raises(MigrationFailed, match="'old model '.*rename them"):
            await runner.upgrade(engine, "head")
        async with engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM {S}.embedding_models WHERE name = 'old model '"))
        await runner.upgrade(engine, "head")
        await engine.dispose()  # new connections see the new columns' types
        async with engine.connect() as conn:
            assert (await conn.execute(text(
                f"SELECT count(*) FROM {S}.memory_embeddings WHERE content_hash IS NULL"))).scalar() == 2
        assert (await check_constraints(engine)).clean  # NULL: unchanged since written, not stale
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {S}.memories SET content = 'edited after 0013' "
                                    f"WHERE content = 'to be edited'"))
        found = {v.rule: v for v in (await check_constraints(engine)).violations}
        assert set(found) == {"stale_embedding"} and found["stale_embedding"].count == 1
        # undoing 0013 now would make that stale vector pass for current: refused, nothing changed
        with pytest.raises(ConfigError, match="undoing 0013 would forget"):
            await runner.downgrade(engine, "0012")
        assert await runner.current_revision(engine) == runner.head_revision()
    finally:
        await engine.dispose()


async def test_personal_memories_without_a_user_are_named_before_validation(fresh_url):
    """Revisions 0014/0015 (issue 14): erasing a user must find every personal memory."""
    engine = await _at_revision_with_an_agent(fresh_url, "0013")
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                f"INSERT INTO {S}.memories (org_id, agent_id, category, content, tier) "
                f"SELECT org_id, id, 'factual', 'whose is this?', 'personal' FROM {S}.agents"))
        with pytest.raises(MigrationFailed, match="1 personal memories have no user_id"):
            await runner.upgrade(engine, "head")
        assert await runner.current_revision(engine) == "0014"  # 0014 applied: new rows are checked already
        async with engine.begin() as conn:
            with pytest.raises(Exception, match="ck_memories_personal_has_user"):
                await conn.execute(text(
                    f"INSERT INTO {S}.memories (org_id, agent_id, category, content, tier) "
                    f"SELECT org_id, id, 'factual', 'another one', 'personal' FROM {S}.agents"))
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {S}.memories SET tier = 'project' WHERE user_id IS NULL"))
        await runner.upgrade(engine, "head")
        assert await runner.current_revision(engine) == runner.head_revision()
        async with engine.connect() as conn:
            assert (await conn.execute(text(
                "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_memories_personal_has_user'"))).scalar()
    finally:
        await engine.dispose()
