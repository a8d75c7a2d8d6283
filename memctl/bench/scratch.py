"""Scratch copies of a model's vectors as a plain ``vector(d)`` table, for --build and --vs-raw.

Copies live in schema ``memctl_bench`` (never in agent_memory, so verify-schema is unaffected),
are UNLOGGED (no WAL for throwaway data) and named by the backend pid so two runs never collide;
they are dropped when the run ends, however it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from memctl.models import SCHEMA, ModelSpec

SCRATCH_SCHEMA = "memctl_bench"


@asynccontextmanager
async def scratch_copy(conn: asyncpg.Connection, model: ModelSpec, purpose: str) -> AsyncIterator[tuple[str, int]]:
    """Yield (qualified table name, rows): ``id uuid, embedding <model.cast_sql>`` of the model's rows."""
    name = f"{SCRATCH_SCHEMA}.{purpose}_{conn.get_server_pid()}"
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCRATCH_SCHEMA}")
    await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.execute(f"CREATE UNLOGGED TABLE {name} AS SELECT memory_id AS id, embedding::{model.cast_sql} "
                       f"AS embedding FROM {SCHEMA}.memory_embeddings WHERE model_id = {int(model.id)}")
    await conn.execute(f"ANALYZE {name}")
    rows = await conn.fetchval(f"SELECT count(*) FROM {name}")
    try:
        yield name, int(rows)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")


def create_hnsw(table: str, model: ModelSpec, m: int, ef_construction: int) -> str:
    """CREATE INDEX of an HNSW index on a scratch copy, named ``<table>_hnsw``."""
    index = table.split(".")[1] + "_hnsw"
    return (f"CREATE INDEX {index} ON {table} USING hnsw (embedding {model.opclass}) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")
