"""check-constraints: clean on seeded data; each rule caught when planted."""

import pytest
from sqlalchemy import text

from memctl.data.checks import RULES, check_constraints
from memctl.data.datasets import load_npz
from memctl.data.seed import seed

S = "agent_memory"


@pytest.fixture(scope="module")
async def seeded(migrated, dataset_path):
    await seed(migrated, load_npz(dataset_path, limit=300), orgs=2)
    return migrated


async def _first_memories(engine, n):
    async with engine.connect() as conn:
        return (await conn.execute(text(
            f"SELECT org_id, id, agent_id FROM {S}.memories ORDER BY org_id, id LIMIT {n}"))).all()


async def test_clean_on_seeded_data(seeded):
    result = await check_constraints(seeded)
    assert result.clean, result.violations
    assert len(result.rules) == len(RULES)


async def test_each_rule_caught_when_planted(seeded):
    m = await _first_memories(seeded, 6)
    org, a, b, c = m[0][0], m[0][1], m[1][1], m[2][1]
    foreign = await _memory_of_another_org(seeded, org)  # exists, but in another organisation
    async with seeded.begin() as conn:
        x = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
        await x(f"ALTER TABLE {S}.directives ADD CONSTRAINT ck_directives_planted "
                f"CHECK (priority < 0) NOT VALID")
        await x("UPDATE pg_index SET indisvalid = false "
                "WHERE indexrelid = 'agent_memory.ix_memories_org_id_category'::regclass")
        await x(f"INSERT INTO {S}.consolidated_memories (org_id, content, tier, abstraction_level, pattern_type, "
                f"source_memory_ids, consolidation_method) VALUES (:org, 'summary', 'project', 1, 'summary', "
                f"ARRAY[:a, gen_random_uuid(), :foreign], 'manual')", org=org, a=a, foreign=foreign)
        task = (await x(f"INSERT INTO {S}.task_contexts (org_id, agent_id, task_goal) VALUES (:org, :agent, 'g') "
                        f"RETURNING id", org=org, agent=m[0][2])).scalar()
        await x(f"INSERT INTO {S}.stage_memories (org_id, task_id, stage_type, raw_memory_refs) VALUES "
                f"(:org, :task, 'planning', jsonb_build_array(CAST(:a AS text), 'not-a-uuid'))",
                org=org, task=task, a=str(a))
        await x(f"UPDATE {S}.memories SET is_consolidated = true WHERE org_id = :org AND id = :a", org=org, a=a)
        await x(f"UPDATE {S}.memories SET expires_at = now() - interval '1 day' WHERE org_id = :org AND id = :b",
                org=org, b=b)
        await x(f"UPDATE {S}.memories SET merged_into = :b WHERE org_id = :org AND id = :a", org=org, a=a, b=b)
        await x(f"UPDATE {S}.memories SET merged_into = :a WHERE org_id = :org AND id = :b", org=org, a=a, b=b)
        await x(f"UPDATE {S}.memories SET superseded_by = :c WHERE org_id = :org AND id = :c2", org=org, c=c, c2=b)
        await x(f"UPDATE {S}.memories SET superseded_by = :b WHERE org_id = :org AND id = :c", org=org, b=b, c=c)
        await x(f"UPDATE {S}.memory_embeddings SET embedding = array_fill(0, ARRAY[384])::vector "
                f"WHERE org_id = :org AND memory_id = :c", org=org, c=c)
        await x(f"DELETE FROM {S}.memory_embeddings WHERE org_id = :org AND memory_id = :id",
                org=m[3][0], id=m[3][1])
        await x(f"UPDATE {S}.memory_embeddings SET searchable = false WHERE org_id = :org AND memory_id = :id",
                org=m[4][0], id=m[4][1])
    result = await check_constraints(seeded)
    by_rule = {v.rule: v for v in result.violations}
    expected = {"constraint_not_valid", "index_invalid", "dangling_source_memory_ids", "dangling_raw_memory_refs",
                "consolidation_flag_mismatch", "active_past_expiry", "merged_into_cycle", "superseded_by_cycle",
                "zero_vector_cosine", "missing_default_embedding", "searchable_mismatch"}
    assert set(by_rule) == expected
    assert by_rule["constraint_not_valid"].sample == ["directives.ck_directives_planted"]
    assert by_rule["index_invalid"].sample == ["ix_memories_org_id_category"]
    dangling = by_rule["dangling_source_memory_ids"]  # a exists; the random id and the foreign one do not
    assert dangling.count == 2 and any(s.endswith(f" -> {foreign}") for s in dangling.sample)
    raw_refs = by_rule["dangling_raw_memory_refs"]
    assert raw_refs.count == 1 and "not-a-uuid" in raw_refs.sample[0]
    assert by_rule["merged_into_cycle"].count == 2 and by_rule["superseded_by_cycle"].count == 2
    missing = {v.table: v for v in result.violations if v.rule == "missing_default_embedding"}
    assert missing["agent_memory.memories"].sample == [f"{m[3][0]}/{m[3][1]}"]
    assert missing["agent_memory.consolidated_memories"].count == 1  # the planted one has no embedding either
    assert by_rule["searchable_mismatch"].sample == [f"{m[4][0]}/{m[4][1]}/1"]


async def _memory_of_another_org(engine, org):
    async with engine.connect() as conn:
        found = (await conn.execute(text(f"SELECT id FROM {S}.memories WHERE org_id <> :o LIMIT 1"),
                                    {"o": org})).scalar()
    assert found is not None, "the seed made a single organisation"
    return found
