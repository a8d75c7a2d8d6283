"""Does synthetic data behave like real embeddings under HNSW? (issue 15)

    python benchmarks/synthetic_recall.py [--rows 20000] [--queries 1000] [--runs 3] [--database-url URL] [--json]

Three scratch databases at head (``memctl_bench_syn_*``), each seeded with ``--rows`` vectors, its HNSW
index built by seed (m 16, ef_construction 64), then ``bench-hnsw -q QUERIES --ef-search 10,40,120``
(queries sampled from the stored vectors, exact top-k by a sequential scan):

- **real**: the first ROWS of ``debian-minilm-20k.npz`` (``seed --dataset``);
- **synthetic**: ``seed --synthetic ROWS``, drawn from the mixture fitted to that file
  (``memctl.data.synthetic``);
- **old synthetic**: the clustered noise memctl generated before issue 15 (32 random unit centres plus
  Gaussian noise of norm 0.35), written to an .npz by this script and seeded with ``--dataset``.

Prints recall@10 per ef_search and the gap to the real data (target at ef_search 40: within 0.02).
pgvector draws each element's graph level at random, so the recall of one build is one draw:
``--runs`` seeds and builds the synthetic data that many times and reports each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from rss import run_memctl  # benchmarks/rss.py, beside this script
from scratch import scratch_database  # benchmarks/scratch.py

from memctl.config import Settings
from memctl.db.engine import resolve_url

REAL = Path(__file__).resolve().parent.parent.parent / "shared/data/debian-minilm-20k.npz"
EF = "10,40,120"
TARGET_GAP = 0.02


def old_synthetic(n: int, path: Path, dim: int = 384, seed: int = 0) -> Path:
    """memctl's generator before issue 15, as an .npz for ``seed --dataset``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, 32, n)
    emb = centres[labels] + rng.standard_normal((n, dim)).astype(np.float32) * (0.35 / np.sqrt(dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    np.savez(path, texts=np.array([f"old synthetic memory {i} (topic {labels[i]})" for i in range(n)]),
             embeddings=emb.astype(np.float32), model=np.array("sentence-transformers/all-MiniLM-L6-v2"))
    return path


async def recall_of(base, name: str, seed_args: list[str], queries: int) -> dict[int, float]:
    url = (await scratch_database(base, f"memctl_bench_syn_{name}")).render_as_string(hide_password=False)
    doc, _, _, code, err = run_memctl(["seed", *seed_args, "--database-url", url])
    if code != 0:
        raise SystemExit(f"seed {name} failed ({code}): {err[-500:]}")
    doc, _, _, code, err = run_memctl(["bench-hnsw", "-q", str(queries), "--ef-search", EF, "--database-url", url])
    if code != 0:
        raise SystemExit(f"bench-hnsw {name} failed ({code}): {err[-500:]}")
    return {p["ef_search"]: p["recall_mean"] for p in doc["points"]}


async def main(a) -> dict:
    base = resolve_url(Settings.resolve(a.database_url))
    out: dict = {"rows": a.rows, "queries": a.queries, "real": await recall_of(
        base, "real", ["--dataset", str(REAL), "--limit", str(a.rows)], a.queries)}
    out["synthetic"] = [await recall_of(base, "synthetic", ["--synthetic", str(a.rows)], a.queries)
                        for _ in range(a.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        out["old_synthetic"] = await recall_of(
            base, "old", ["--dataset", str(old_synthetic(a.rows, Path(tmp) / "old.npz"))], a.queries)
    gaps = [round(s[40] - out["real"][40], 4) for s in out["synthetic"]]
    out["gap_at_ef_40"] = gaps
    out["met"] = all(abs(g) <= TARGET_GAP for g in gaps)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    if args.json:
        print(json.dumps(result))
        sys.exit(0)
    print(f"recall@10 over {args.rows:,} rows, {args.queries} queries sampled from the stored vectors")
    builds = " | ".join(f"synthetic (build {i + 1})" for i in range(args.runs))
    print(f"ef_search | real | {builds} | old synthetic")
    for ef in sorted(result["real"]):
        print(f"{ef} | {result['real'][ef]} | " + " | ".join(str(s[ef]) for s in result["synthetic"])
              + f" | {result['old_synthetic'][ef]}")
    print(f"gap at ef_search 40 (synthetic - real): {result['gap_at_ef_40']} (target within {TARGET_GAP}: "
          f"{'met' if result['met'] else 'NOT met'})")
