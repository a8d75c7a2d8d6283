"""Peak memory and throughput of ``memctl export`` and ``memctl import`` for one large organisation.

    python benchmarks/tenant_transfer.py [--memories 200000] [--database-url URL] [--no-import] [--json]

In a scratch database (``memctl_bench_transfer``, dropped and recreated; on the embedded server unless
a URL is given) ``--memories`` synthetic memories are seeded into one organisation (streamed). Then,
each in a child process whose own peak RSS is read from the kernel (``benchmarks/rss.py``):

- ``memctl export --org seed-org-01``: target peak RSS under 300 MB at 200,000 memories (issue 14),
  whatever the size (it streams in batches of ``--batch-rows``);
- ``memctl import`` of that export into a second scratch database at head
  (``memctl_bench_transfer_target``): one transaction; the vectors go through the target's HNSW index
  row by row, which is most of its time.

Prints rows/s for both (rows of every file: memories, embeddings, the rest) and the peak RSS (MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

from rss import run_memctl  # benchmarks/rss.py, beside this script
from scratch import scratch_database  # benchmarks/scratch.py

from memctl.config import Settings
from memctl.data.datasets import SyntheticRows
from memctl.data.seed import seed
from memctl.db.engine import make_engine, resolve_url

SOURCE, TARGET = "memctl_bench_transfer", "memctl_bench_transfer_target"
RSS_LIMIT_MB = 300


def _child(args: list[str]) -> tuple[dict, float, float]:
    """Run ``memctl ARGS --json``; (its JSON document, wall seconds, its own peak RSS in MB)."""
    doc, wall, rss, code, err = run_memctl(args)
    if code != 0:
        raise SystemExit(f"memctl {args[0]} failed ({code}): {err[-500:]}")
    return doc, wall, rss


async def main(memories: int, database_url: str | None, batch_rows: int, do_import: bool) -> dict:
    base = resolve_url(Settings.resolve(database_url))
    source = await scratch_database(base, SOURCE)
    engine = make_engine(source)
    try:
        started = time.perf_counter()
        seeded = await seed(engine, SyntheticRows(memories), orgs=1, agents=2)
        seed_s = time.perf_counter() - started
    finally:
        await engine.dispose()
    workdir = Path(tempfile.mkdtemp(prefix="memctl-transfer-"))
    report: dict = {"memories": seeded.memories_inserted, "seed_s": round(seed_s, 1)}
    try:
        url = source.render_as_string(hide_password=False)
        out = workdir / "export"
        doc, wall, rss = _child(["export", "--org", "seed-org-01", "--output", str(out), "--batch-rows",
                                 str(batch_rows), "--database-url", url])
        size = sum(f.stat().st_size for f in out.iterdir())
        report["export"] = {"rows": doc["rows"], "seconds": round(wall, 1), "rows_per_s": round(doc["rows"] / wall),
                            "peak_rss_mb": round(rss, 1), "bytes": size, "target_rss_mb": RSS_LIMIT_MB,
                            "met": rss < RSS_LIMIT_MB}
        if do_import:
            target = await scratch_database(base, TARGET)
            doc, wall, rss = _child(["import", str(out), "--batch-rows", str(batch_rows), "--database-url",
                                     target.render_as_string(hide_password=False)])
            report["import"] = {"rows": doc["rows"], "seconds": round(wall, 1), "rows_per_s": round(doc["rows"] / wall),
                                "peak_rss_mb": round(rss, 1)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-import", action="store_true", help="Measure the export only.")
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    result = asyncio.run(main(a.memories, a.database_url, a.batch_rows, not a.no_import))
    if a.json:
        print(json.dumps(result))
    else:
        e = result["export"]
        print(f"seed: {result['memories']} memories in {result['seed_s']} s")
        print(f"export: {e['rows']} rows in {e['seconds']} s = {e['rows_per_s']} rows/s; "
              f"peak RSS {e['peak_rss_mb']} MB "
              f"(target < {RSS_LIMIT_MB} MB: {'met' if e['met'] else 'NOT met'}); {e['bytes'] / 2**20:.1f} MiB written")
        if "import" in result:
            i = result["import"]
            print(f"import: {i['rows']} rows in {i['seconds']} s = {i['rows_per_s']} rows/s; "
                  f"peak RSS {i['peak_rss_mb']} MB")
