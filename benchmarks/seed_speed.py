"""``memctl seed``'s load against the schema's own limit: a superuser's direct binary COPY (issue 15).

    python benchmarks/seed_speed.py [--rows 100000] [--database-url URL] [--json]

Two scratch databases at head (``memctl_bench_seed_a`` / ``_b``), the same synthetic rows, each into empty
tables without the model's HNSW index (seed drops it on an empty table and builds it afterwards; the
build is not part of either figure):

- **seed**: ``memctl.data.seed.seed`` (staging COPY, ``INSERT ... ON CONFLICT DO NOTHING`` on the
  dedup index, the embeddings joined on the inserted rows), its ``load_s``;
- **raw**: a superuser's binary COPY of the same columns straight into ``memories`` and then
  ``memory_embeddings`` (every constraint, trigger and B-tree index of the schema in place, the
  generated ``content_hash`` and ``content_tsv`` computed by the server), no staging, no conflict
  handling: what no safe writer can beat.

Prints both rows/s and the ratio (target >= 0.8). seed's own index build is stopped before it starts
(its progress callback raises), so its load is timed from the start of the call to that point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from scratch import scratch_database  # benchmarks/scratch.py

from memctl.config import Settings
from memctl.data import registry
from memctl.data.datasets import SyntheticRows
from memctl.data.seed import _ensure_tenants, seed
from memctl.db.engine import make_engine, register_codecs, resolve_url
from memctl.models.embeddings import content_hash

TARGET = 0.8


class _StopAtIndex(Exception):
    """Raised from seed's progress callback when the HNSW build would start."""


async def raw_copy(url, rows: SyntheticRows, batch: int) -> float:
    """Seconds for the direct COPY of ``rows`` (module docstring)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tenants = await _ensure_tenants(conn, 10, 1)
            model = await registry.get_model(conn)
            await registry.drop_index(conn, "memory_embeddings", model)
            await conn.commit()
            raw = (await conn.get_raw_connection()).driver_connection
            await register_codecs(raw)
            started = time.perf_counter()
            async with raw.transaction():
                for part in rows.batches(batch):
                    mems, embs = [], []
                    for i, (content, vec) in enumerate(zip(part.texts, part.embeddings, strict=True)):
                        t = tenants[i % len(tenants)]
                        mid = uuid.uuid4()
                        mems.append((t.org_id, mid, t.agents[0], "task", "factual", content))
                        embs.append((t.org_id, mid, model.id, model.dim, vec, content_hash(content), True))
                    await raw.copy_records_to_table("memories", schema_name="agent_memory", records=mems, columns=[
                        "org_id", "id", "agent_id", "tier", "category", "content"])
                    await raw.copy_records_to_table("memory_embeddings", schema_name="agent_memory", records=embs,
                                                    columns=["org_id", "memory_id", "model_id", "dim", "embedding",
                                                             "content_hash", "searchable"])
            return time.perf_counter() - started
    finally:
        await engine.dispose()


async def main(n: int, database_url: str | None, batch: int) -> dict:
    base = resolve_url(Settings.resolve(database_url))
    rows = SyntheticRows(n)
    a = await scratch_database(base, "memctl_bench_seed_a")
    engine = make_engine(a)
    started = time.perf_counter()
    load: dict[str, float] = {}

    def stop_at_index(phase: str, done: int, total: int) -> None:
        # The load's time, to the start of the HNSW build (which is not part of either figure: at
        # 1M rows it takes longer than both loads together); the build is skipped.
        if phase == "index":
            load["s"] = time.perf_counter() - started
            raise _StopAtIndex

    try:
        await seed(engine, rows, orgs=10, agents=1, batch_size=batch, progress=stop_at_index)
    except _StopAtIndex:
        pass
    finally:
        await engine.dispose()
    raw_s = await raw_copy(await scratch_database(base, "memctl_bench_seed_b"), rows, batch)
    seed_rate, raw_rate = n / load["s"], n / raw_s
    return {"rows": n, "seed_load_s": round(load["s"], 2), "seed_rows_per_s": round(seed_rate),
            "raw_copy_s": round(raw_s, 2), "raw_rows_per_s": round(raw_rate), "ratio": round(seed_rate / raw_rate, 3),
            "target": TARGET}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    r = asyncio.run(main(a.rows, a.database_url, a.batch_size))
    if a.json:
        print(json.dumps(r))
    else:
        print(f"seed load: {r['seed_rows_per_s']} rows/s ({r['seed_load_s']} s); raw COPY: {r['raw_rows_per_s']} "
              f"rows/s ({r['raw_copy_s']} s); ratio {r['ratio']} (target >= {TARGET})")
