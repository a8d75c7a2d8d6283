"""Revision 0018's HNSW rebuild is safe to re-run (issue 15's hostile review): an INVALID leftover of a
killed build is dropped, not swapped in; an index already in the target shape is left alone; an index
of an unknown shape stops the revision in one line before anything changes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from memctl.data.datasets import synthetic
from memctl.data.seed import seed
from memctl.db.indexes import repair_invalid_indexes
from memctl.errors import MigrationFailed
from memctl.migration import runner

pytestmark = pytest.mark.asyncio(loop_scope="session")

S = "agent_memory"
CREATE = (f"CREATE INDEX {{name}} ON {S}.memory_embeddings USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
          "WITH (m = 16, ef_construction = 64) WHERE {where}")


async def _indexes(engine) -> dict[str, tuple[bool, str]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT c.relname, x.indisvalid, pg_get_expr(x.indpred, x.indrelid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE c.relname LIKE 'ix\\_memory\\_embeddings\\_hnsw\\_%' "
            "OR c.relname LIKE 'ix\\_memories\\_%\\_at'"))).all()
    return {r[0]: (r[1], r[2]) for r in rows}


async def _execute(engine, *statements: str) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def test_invalid_leftover_is_dropped_and_target_shape_kept(scratch_migrated):
    engine, _ = scratch_migrated
    await seed(engine, synthetic(300, seed=3), orgs=1)
    # A downgrade killed mid-build leaves an INVALID old-shape copy beside the index.
    await _execute(engine, CREATE.format(name="ix_memory_embeddings_hnsw_1_0018", where="model_id = 1"),
                   f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{S}.ix_memory_embeddings_hnsw_1_0018'"
                   "::regclass")
    await runner.downgrade(engine, "0017")
    found = await _indexes(engine)
    assert found["ix_memory_embeddings_hnsw_1"] == (True, "(model_id = 1)"), found
    assert "ix_memory_embeddings_hnsw_1_0018" not in found and "ix_memories_expires_at" in found
    # At head, memctl's INVALID-index repair drops such a leftover instead of rebuilding a duplicate.
    await runner.upgrade(engine, "head")
    await _execute(engine, CREATE.format(name="ix_memory_embeddings_hnsw_1_0018", where="model_id = 1"),
                   f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{S}.ix_memory_embeddings_hnsw_1_0018'"
                   "::regclass")
    assert await repair_invalid_indexes(engine) == [f"dropped {S}.ix_memory_embeddings_hnsw_1_0018"]
    # An index already in 0018's shape (built by a newer memctl at 0017) is left as it is.
    await runner.downgrade(engine, "0017")
    await _execute(engine, f"DROP INDEX {S}.ix_memory_embeddings_hnsw_1",
                   CREATE.format(name="ix_memory_embeddings_hnsw_1", where="model_id = 1 AND searchable"))
    before = await _indexes(engine)
    await runner.upgrade(engine, "head")
    after = await _indexes(engine)
    assert after["ix_memory_embeddings_hnsw_1"] == before["ix_memory_embeddings_hnsw_1"] == (
        True, "((model_id = 1) AND searchable)")
    assert not [n for n in after if n.endswith("_0018")]


async def test_unknown_index_shape_stops_before_anything_changes(scratch_migrated):
    engine, _ = scratch_migrated
    await runner.downgrade(engine, "0017")
    await _execute(engine, f"DROP INDEX {S}.ix_memory_embeddings_hnsw_1",
                   CREATE.format(name="ix_memory_embeddings_hnsw_1", where="model_id = 1 AND dim = 384"))
    before = await _indexes(engine)
    with pytest.raises(MigrationFailed, match="is not an index revision 0018 knows") as failed:
        await runner.upgrade(engine, "head")
    assert "\n" not in str(failed.value) and "the database is at 0017" in str(failed.value)
    assert await _indexes(engine) == before  # the memories indexes were not swapped either
