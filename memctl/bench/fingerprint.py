"""The environment fingerprint printed at the top of every bench-hnsw run, with its warnings."""

from __future__ import annotations

import asyncpg

from memctl.bench.types import Fingerprint
from memctl.models import SCHEMA, ModelSpec
from memctl.models.embeddings import DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_M

_INDEX = """
SELECT x.indisvalid, pg_relation_size(c.oid) AS bytes, coalesce(c.reloptions, '{}') AS reloptions,
       oc.opcname
  FROM pg_class c
  JOIN pg_index x ON x.indexrelid = c.oid
  JOIN pg_opclass oc ON oc.oid = x.indclass[0]
 WHERE c.relnamespace = $1::regnamespace AND c.relname = $2
"""

_TABLE = """
SELECT n_live_tup, n_dead_tup, last_vacuum::text, last_autovacuum::text
  FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'memory_embeddings'
"""


async def fingerprint(conn: asyncpg.Connection, model: ModelSpec, index: str, rows: int,
                      ef_search: tuple[int, ...], k: int) -> Fingerprint:
    """Versions, the index (m, ef_construction, opclass, bytes, validity), the table's tuples and
    vacuums, shared_buffers and every ``hnsw.*`` setting, with warnings for ef_search below k, an
    index larger than shared_buffers, an opclass that does not match the model's distance, and a
    missing or INVALID index."""
    postgres = await conn.fetchval("SHOW server_version")
    pgvector = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    idx = await conn.fetchrow(_INDEX, SCHEMA, index)
    table = await conn.fetchrow(_TABLE, SCHEMA)
    shared_buffers = await conn.fetchval("SELECT pg_size_bytes(current_setting('shared_buffers'))")
    settings = dict(await conn.fetch("SELECT name, setting FROM pg_settings WHERE name LIKE 'hnsw.%' ORDER BY name"))
    options = dict(o.split("=", 1) for o in idx["reloptions"]) if idx else {}
    fp = Fingerprint(
        postgres=postgres, pgvector=pgvector, index=index, index_exists=idx is not None,
        index_valid=idx["indisvalid"] if idx else None, index_bytes=idx["bytes"] if idx else None,
        m=int(options.get("m", DEFAULT_HNSW_M)) if idx else None,
        ef_construction=int(options.get("ef_construction", DEFAULT_HNSW_EF_CONSTRUCTION)) if idx else None,
        opclass=idx["opcname"] if idx else None, expected_opclass=model.opclass, rows=rows,
        table_live_tuples=table["n_live_tup"] if table else None,
        table_dead_tuples=table["n_dead_tup"] if table else None,
        last_vacuum=table["last_vacuum"] if table else None,
        last_autovacuum=table["last_autovacuum"] if table else None,
        shared_buffers_bytes=int(shared_buffers), settings=settings)
    fp.warnings = warnings(fp, ef_search, k)
    return fp


def warnings(fp: Fingerprint, ef_search: tuple[int, ...], k: int) -> list[str]:
    """What makes the numbers of a run suspect (each one line)."""
    out = []
    low = [ef for ef in ef_search if ef < k]
    if low:
        out.append(f"ef_search {', '.join(map(str, low))} below k={k}: an HNSW scan returns at most ef_search "
                   "rows, so those points return short results (pgvector README, 'Query Options')")
    if not fp.index_exists:
        out.append(f"index {fp.index} does not exist: the run cannot measure it")
    elif fp.index_valid is False:
        out.append(f"index {fp.index} is INVALID (failed concurrent build?): the planner will not use it")
    if fp.index_bytes and fp.index_bytes > fp.shared_buffers_bytes:
        out.append(f"index {fp.index} ({fp.index_bytes:,} bytes) is larger than shared_buffers "
                   f"({fp.shared_buffers_bytes:,} bytes): latencies include reads from outside the buffer cache")
    if fp.opclass and fp.opclass != fp.expected_opclass:
        out.append(f"index opclass {fp.opclass} does not match the model's distance ({fp.expected_opclass}): "
                   "the model's queries cannot use it")
    if fp.table_dead_tuples and fp.table_live_tuples and fp.table_dead_tuples > 0.1 * fp.table_live_tuples:
        out.append(f"memory_embeddings has {fp.table_dead_tuples:,} dead tuples ({fp.table_live_tuples:,} live): "
                   "vacuum before benchmarking")
    return out
