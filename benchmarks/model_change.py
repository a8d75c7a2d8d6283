"""The cost of ``memctl models`` against the raw operations it wraps, in one run on the same vectors.

    python benchmarks/model_change.py [--limit 5000] [--database-url URL] [--json]

In a scratch database (``memctl_bench_models``, dropped and recreated; on the embedded server
unless a URL is given) the first ``--limit`` Debian paragraphs are seeded in MiniLM, then the
multilingual-e5-small model is added and:

- backfill: ``models backfill --from debian-e5-5k.npz`` (content-hash matching, COPY into a
  staging table, INSERT ... SELECT joined on the content hash, triggers) against a binary COPY of
  the same (org_id, memory_id, vector) records into a bare table. Target: rows/s ratio >= 0.5.
  Also a binary COPY of the same rows straight into memory_embeddings (its primary key, two foreign
  keys, CHECKs and triggers, no staging, no conflict handling): the floor of any writer of the schema.
- index: ``models index`` (both embedding tables, CONCURRENTLY, a partial expression index over a
  table that also holds the MiniLM rows) against ``CREATE INDEX CONCURRENTLY`` of the same m,
  ef_construction and maintenance_work_mem on the bare table. Target: time ratio <= 1.1.

Each measurement runs ``--rounds`` times (3), alternating which of the pair goes first; the
medians are compared. Also prints recall@10 at ef_search 40 of the e5 queries against the exact top-10 (bench-hnsw's
measure) for the model's m / ef_construction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from scratch import scratch_database  # benchmarks/scratch.py

from memctl.bench.run import BenchOptions, bench_hnsw
from memctl.config import Settings
from memctl.data.datasets import load_npz, load_queries
from memctl.data.seed import seed
from memctl.db.build_memory import DEFAULT_MEMORY_BUDGET, graph_bytes, maintenance_work_mem_for
from memctl.db.engine import asyncpg_dsn, make_engine, resolve_url
from memctl.lifecycle.backfill import backfill
from memctl.lifecycle.index import build_index
from memctl.lifecycle.sources import FileSource
from memctl.lifecycle.status import add
from memctl.migration import runner

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
E5 = "intfloat/multilingual-e5-small"
DB = "memctl_bench_models"


async def main(limit: int, database_url: str | None, m: int, ef_construction: int, rounds: int) -> dict:
    url = await scratch_database(resolve_url(Settings.resolve(database_url)), DB, migrate=False)
    engine = make_engine(url)
    try:
        await runner.upgrade(engine, "head")
        await engine.dispose()  # new connections register pgvector's codecs (the extension exists now)
        await seed(engine, load_npz(DATA / "debian-minilm-20k.npz", limit=limit), orgs=3, agents=2)
        model = await add(engine, E5, 384, m=m, ef_construction=ef_construction)
        source = FileSource.load(DATA / "debian-e5-5k.npz", model)
        await engine.dispose()

        async with engine.connect() as sa:
            raw = (await sa.get_raw_connection()).driver_connection
            await sa.commit()
            rows = await raw.fetch("SELECT org_id, id, content_hash FROM agent_memory.memories")
            records = [(r["org_id"], r["id"], source.embeddings[source.by_hash[r["content_hash"]]])
                       for r in rows if r["content_hash"] in source.by_hash]
            await raw.execute("DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw "
                              "(org_id uuid, memory_id uuid, embedding vector(384))")
            backfill_s, copy_s, schema_s = [], [], []
            hashes = {r["id"]: r["content_hash"] for r in rows}
            schema_records = [(o, i, model.id, model.dim, v, hashes[i], True) for o, i, v in records]
            for i in range(rounds):  # alternate which goes first, so neither always meets a cold cache
                for step in (("backfill", "copy", "schema") if i % 2 == 0 else ("schema", "copy", "backfill")):
                    if step == "schema":  # the floor of any writer: COPY straight into the table, no checks of ours
                        await raw.execute("DELETE FROM agent_memory.memory_embeddings WHERE model_id = $1", model.id)
                        await raw.execute("VACUUM agent_memory.memory_embeddings")
                        t0 = time.perf_counter()
                        columns = ["org_id", "memory_id", "model_id", "dim", "embedding", "content_hash", "searchable"]
                        await raw.copy_records_to_table("memory_embeddings", schema_name="agent_memory",
                                                        records=schema_records, columns=columns)
                        schema_s.append(time.perf_counter() - t0)
                    elif step == "backfill":
                        await raw.execute("DELETE FROM agent_memory.memory_embeddings WHERE model_id = $1", model.id)
                        await raw.execute("VACUUM agent_memory.memory_embeddings")
                        t0 = time.perf_counter()
                        filled = await backfill(engine, E5, source, batch_size=5000)
                        backfill_s.append(time.perf_counter() - t0)
                        assert filled.clean and filled.written == len(records)
                    else:
                        await raw.execute("TRUNCATE bench_raw")
                        t0 = time.perf_counter()
                        await raw.copy_records_to_table("bench_raw", records=records)
                        copy_s.append(time.perf_counter() - t0)

            index_s, raw_index_s = [], []
            for i in range(rounds):
                for step in (("index", "raw") if i % 2 == 0 else ("raw", "index")):
                    if step == "index":
                        await raw.execute(f"DROP INDEX IF EXISTS agent_memory.ix_memory_embeddings_hnsw_{model.id}; "
                                          f"DROP INDEX IF EXISTS agent_memory.ix_consolidated_memory_embeddings_hnsw_"
                                          f"{model.id}")
                        await raw.execute("UPDATE agent_memory.embedding_models SET state = 'registered' WHERE id = $1",
                                          model.id)
                        t0 = time.perf_counter()
                        built = await build_index(engine, E5)
                        index_s.append(time.perf_counter() - t0)
                    else:  # the same maintenance_work_mem as models index chose
                        await raw.execute("DROP INDEX IF EXISTS bench_raw_hnsw")
                        mwm = maintenance_work_mem_for(graph_bytes(len(records), model), DEFAULT_MEMORY_BUDGET)
                        await raw.execute(f"SET maintenance_work_mem = '{mwm // 1024}kB'")
                        t0 = time.perf_counter()
                        await raw.execute(f"CREATE INDEX CONCURRENTLY bench_raw_hnsw ON bench_raw USING hnsw "
                                          f"(embedding vector_cosine_ops) WITH (m = {m}, ef_construction = "
                                          f"{ef_construction})")
                        raw_index_s.append(time.perf_counter() - t0)
                        await raw.execute("RESET maintenance_work_mem")
        backfill_rate = len(records) / statistics.median(backfill_s)
        copy_rate = len(records) / statistics.median(copy_s)
        schema_rate = len(records) / statistics.median(schema_s)

        queries = load_queries(DATA / "debian-e5-5k.npz")
        bench = await bench_hnsw(engine, BenchOptions(model_name=E5, queries=queries, ef_search=(40,), k=10,
                                                      num_queries=len(queries)))
        point = bench.point(40)
        return {
            "rows": len(records), "m": m, "ef_construction": ef_construction, "rounds": rounds,
            "backfill_rows_per_s": round(backfill_rate, 1), "raw_copy_rows_per_s": round(copy_rate, 1),
            "backfill_vs_raw_copy": round(backfill_rate / copy_rate, 3),
            "copy_into_memory_embeddings_rows_per_s": round(schema_rate, 1),
            "copy_into_memory_embeddings_vs_raw_copy": round(schema_rate / copy_rate, 3),
            "backfill_vs_copy_into_memory_embeddings": round(backfill_rate / schema_rate, 3),
            "index_s": round(statistics.median(index_s), 3),
            "raw_create_index_concurrently_s": round(statistics.median(raw_index_s), 3),
            "index_vs_raw": round(statistics.median(index_s) / statistics.median(raw_index_s), 3),
            "maintenance_work_mem_bytes": built.maintenance_work_mem_bytes,
            "backfill_s": [round(x, 3) for x in backfill_s], "raw_copy_s": [round(x, 3) for x in copy_s],
            "index_runs_s": [round(x, 3) for x in index_s], "raw_index_runs_s": [round(x, 3) for x in raw_index_s],
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
    parser.add_argument("--rounds", type=int, default=3, help="Repetitions of each measurement (medians).")
    args = parser.parse_args()
    result = asyncio.run(main(min(args.limit, 5000), args.database_url, args.m, args.ef_construction, args.rounds))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    ok = result["backfill_vs_raw_copy"] >= 0.5 and result["index_vs_raw"] <= 1.1
    sys.exit(0 if ok else 1)
