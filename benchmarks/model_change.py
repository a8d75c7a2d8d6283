"""The cost of ``memctl models`` against the raw operations it wraps, in one run on the same vectors.

    python benchmarks/model_change.py [--limit 5000] [--database-url URL] [--json]

In a scratch database (``memctl_bench_models``, dropped and recreated; on the embedded server
unless a URL is given) the first ``--limit`` Debian paragraphs are seeded in MiniLM, then the
multilingual-e5-small model is added and:

- backfill: ``models backfill --from debian-e5-5k.npz`` (content-hash matching, COPY into a
  staging table, INSERT ... SELECT joined on the content hash, triggers) against a binary COPY of
  the same (org_id, memory_id, vector) records into a bare table. Target: rows/s ratio >= 0.5.
- index: ``models index`` (both embedding tables, CONCURRENTLY, a partial expression index over a
  table that also holds the MiniLM rows) against ``CREATE INDEX CONCURRENTLY`` of the same m,
  ef_construction and maintenance_work_mem on the bare table. Target: time ratio <= 1.1.

Also prints recall@10 at ef_search 40 of the e5 queries against the exact top-10 (bench-hnsw's
measure) for the model's m / ef_construction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from memctl.bench.run import BenchOptions, bench_hnsw
from memctl.config import Settings
from memctl.data.datasets import load_npz, load_queries
from memctl.data.seed import seed
from memctl.db.engine import asyncpg_dsn, make_engine, resolve_url
from memctl.lifecycle.backfill import backfill
from memctl.lifecycle.index import build_index
from memctl.lifecycle.sources import FileSource, content_hash
from memctl.lifecycle.status import add
from memctl.migration import runner

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
E5 = "intfloat/multilingual-e5-small"
DB = "memctl_bench_models"


async def _scratch(url):
    admin = make_engine(url)
    async with admin.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        await conn.execute(text(f"CREATE DATABASE {DB}"))
    await admin.dispose()
    return url.set(database=DB)


async def main(limit: int, database_url: str | None, m: int, ef_construction: int) -> dict:
    url = await _scratch(resolve_url(Settings.resolve(database_url)))
    engine = make_engine(url)
    try:
        await runner.upgrade(engine, "head")
        await seed(engine, load_npz(DATA / "debian-minilm-20k.npz", limit=limit), orgs=3, agents=2)
        model = await add(engine, E5, 384, m=m, ef_construction=ef_construction)
        source = FileSource.load(DATA / "debian-e5-5k.npz", model)

        t0 = time.perf_counter()
        filled = await backfill(engine, E5, source, batch_size=5000)
        backfill_s = time.perf_counter() - t0

        async with engine.connect() as sa:
            raw = (await sa.get_raw_connection()).driver_connection
            rows = await raw.fetch("SELECT org_id, id, content_hash FROM agent_memory.memories")
            records = [(r["org_id"], r["id"], source.embeddings[source.by_hash[r["content_hash"]]])
                       for r in rows if r["content_hash"] in source.by_hash]
            await raw.execute("DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw "
                              "(org_id uuid, memory_id uuid, embedding vector(384))")
            t0 = time.perf_counter()
            await raw.copy_records_to_table("bench_raw", records=records)
            copy_s = time.perf_counter() - t0
            await sa.commit()

        t0 = time.perf_counter()
        built = await build_index(engine, E5)
        index_s = time.perf_counter() - t0

        async with engine.connect() as sa:
            raw = (await sa.get_raw_connection()).driver_connection
            await sa.commit()
            await raw.execute(f"SET maintenance_work_mem = '{built.maintenance_work_mem_bytes // 1024}kB'")
            t0 = time.perf_counter()
            await raw.execute(f"CREATE INDEX CONCURRENTLY bench_raw_hnsw ON bench_raw USING hnsw "
                              f"(embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {ef_construction})")
            raw_index_s = time.perf_counter() - t0

        queries = load_queries(DATA / "debian-e5-5k.npz")
        bench = await bench_hnsw(engine, BenchOptions(model_name=E5, queries=queries, ef_search=(40,), k=10,
                                                      num_queries=len(queries)))
        point = bench.point(40)
        return {
            "rows": len(records), "m": m, "ef_construction": ef_construction,
            "backfill_rows_per_s": round(filled.written / backfill_s, 1),
            "raw_copy_rows_per_s": round(len(records) / copy_s, 1),
            "backfill_vs_raw_copy": round((filled.written / backfill_s) / (len(records) / copy_s), 3),
            "index_s": round(index_s, 3), "raw_create_index_concurrently_s": round(raw_index_s, 3),
            "index_vs_raw": round(index_s / raw_index_s, 3),
            "maintenance_work_mem_bytes": built.maintenance_work_mem_bytes,
            "recall_at_10_ef_search_40": None if point is None else point.recall_mean,
            "targets": {"backfill_vs_raw_copy": ">= 0.5", "index_vs_raw": "<= 1.1"},
            "database": asyncpg_dsn(url).split("@")[-1],
        }
    finally:
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=5000, help="Rows (at most 5000: the e5 file's size).")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--m", type=int, default=24)
    parser.add_argument("--ef-construction", type=int, default=128)
    args = parser.parse_args()
    result = asyncio.run(main(min(args.limit, 5000), args.database_url, args.m, args.ef_construction))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    ok = result["backfill_vs_raw_copy"] >= 0.5 and result["index_vs_raw"] <= 1.1
    sys.exit(0 if ok else 1)
