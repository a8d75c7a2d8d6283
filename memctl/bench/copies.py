"""Scratch copies of a model's vectors as a plain ``vector(d)`` table, for --build and --vs-raw.

Copies live in schema ``memctl_bench`` (never in agent_memory, so verify-schema is unaffected),
are UNLOGGED (no WAL for throwaway data) and named by the backend pid so two runs never collide;
they are dropped when the run ends, however it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from memctl.models import SCHEMA, ModelSpec

SCRATCH_SCHEMA = "memctl_bench"


@dataclass(frozen=True)
class VectorCopy:
    """A scratch copy: ``table`` (schema-qualified, columns ``id uuid, embedding <model.cast_sql>``),
    the name of its HNSW index (``index``, unqualified; ``qualified_index`` with the schema) and
    its row count."""

    table: str
    index: str
    rows: int

    @property
    def qualified_index(self) -> str:
        """``memctl_bench.<index>``."""
        return f"{SCRATCH_SCHEMA}.{self.index}"

    def create_hnsw(self, model: ModelSpec, m: int, ef_construction: int) -> str:
        """CREATE INDEX of the copy's HNSW index with ``m`` and ``ef_construction`` (pgvector's options)."""
        return (f"CREATE INDEX {self.index} ON {self.table} USING hnsw (embedding {model.opclass}) "
                f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")


@asynccontextmanager
async def scratch_copy(conn: asyncpg.Connection, model: ModelSpec, purpose: str) -> AsyncIterator[VectorCopy]:
    """Yield a :class:`VectorCopy` of the model's rows, dropped when the body ends."""
    name = f"{purpose}_{conn.get_server_pid()}"
    table = f"{SCRATCH_SCHEMA}.{name}"
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCRATCH_SCHEMA}")
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE UNLOGGED TABLE {table} AS SELECT memory_id AS id, embedding::{model.cast_sql} "
                       f"AS embedding FROM {SCHEMA}.memory_embeddings WHERE model_id = {int(model.id)}")
    await conn.execute(f"ANALYZE {table}")
    rows = await conn.fetchval(f"SELECT count(*) FROM {table}")
    try:
        yield VectorCopy(table, f"{name}_hnsw", int(rows))
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
