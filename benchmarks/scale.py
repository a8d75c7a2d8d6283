"""How each operator job's cost grows with the database: 10k, 100k and 1M synthetic memories (issue 15).

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--orgs 10] [--memory 4GB]
                               [--build-compare 300000] [--plans FILE] [--database-url URL] [--json]

Never run by the test suite or CI: at 1M rows it takes the better part of an hour on 2 cores. For
each size, in a scratch database (``memctl_bench_scale``, dropped and recreated, migrated to head),
each step runs as its own ``memctl ... --json`` child process, whose wall time and own peak RSS
(``benchmarks/rss.py``) are recorded:

- ``seed --synthetic N --orgs 10 --memory M``: its load and index-build seconds (from its JSON) and
  the process's peak RSS (target: under 400 MB at 1M: rows stream batch by batch);
- ``verify-schema``, ``check-constraints``, ``maintain --dry-run``;
- ``maintain`` for real, after 10 % of the memories were given an ``expires_at`` in the past (the
  expire task archives them; SQL run by this script, not timed);
- ``bench-hnsw -q 200 --ef-search 40``: recall@10 and p50 (ms);
- with ``--plans FILE``: ``EXPLAIN (ANALYZE, BUFFERS)`` of every maintain batch statement (one batch
  of the first organisation, rolled back) and every check-constraints rule, after the expiry is set
  and before maintain runs; the plans go to FILE, and the report lists each statement's scans and ms.

Then, per step, how its cost grows: the exponent ``log(t2 / t1) / log(n2 / n1)`` between the two
largest sizes (about 0: constant, about 1: linear, above 1.25: worse than linear). Steps under a second
at every size count as constant (process start-up dominates them).

``--build-compare N`` (default 300,000; 0 skips): N vectors seeded without the rebuild's sizing,
then the HNSW index built twice on the same rows in one run: ``maintenance_work_mem = 512MB`` (memctl's
fixed value before issue 15) and the size ``memctl.db.build_memory`` picks within ``--memory``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time

from rss import run_memctl  # benchmarks/rss.py, beside this script
from scratch import scratch_database  # benchmarks/scratch.py
from sqlalchemy import text

from memctl.config import Settings
from memctl.data.checks import RULES
from memctl.data.registry import create_index, drop_index, get_model
from memctl.db.build_memory import graph_bytes, maintenance_work_mem_for
from memctl.db.engine import make_engine, resolve_url
from memctl.maintenance.tasks import EXPIRE, KEPT, PURGE, STALE, retention_batch

DB = "memctl_bench_scale"
SCAN = r"(Seq Scan on \w+|(?:Index|Index Only|Bitmap Index) Scan (?:using|on) \w+|Tid Scan on \w+)"
SEED_RSS_LIMIT_MB = 400


def _child(args: list[str], url: str) -> tuple[dict, float, float, int]:
    """``memctl ARGS --json --database-url URL``: (JSON document, wall s, its own peak RSS MB, exit code)."""
    doc, wall, rss, code, err = run_memctl([*args, "--database-url", url])
    if code not in (0, 1):
        raise SystemExit(f"memctl {' '.join(args)} failed ({code}): {err[-800:]}")
    return doc, wall, rss, code


async def _expire_tenth(url) -> int:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return (await conn.execute(text(
                "UPDATE agent_memory.memories SET expires_at = now() - interval '1 day' "
                "WHERE status = 'active' AND deleted_at IS NULL AND abs(hashtext(id::text)) % 10 = 0"))).rowcount
    finally:
        await engine.dispose()


async def one_size(base, n: int, orgs: int, memory: str, plans_file: str | None = None) -> dict:
    url = await scratch_database(base, DB)
    u = url.render_as_string(hide_password=False)
    steps: dict[str, dict] = {}
    doc, wall, rss, _ = _child(["seed", "--synthetic", str(n), "--orgs", str(orgs), "--memory", memory], u)
    steps["seed load"] = {"s": doc["load_s"], "rss_mb": rss, "rows_per_s": doc["load_rows_per_second"]}
    steps["index build"] = {"s": doc["index_s"], "rss_mb": rss, "rows_per_s": doc["index_rows_per_second"],
                            "fits": (doc.get("index_memory") or {}).get("fits")}
    for name, args in (("verify-schema", ["verify-schema"]), ("check-constraints", ["check-constraints"]),
                       ("maintain --dry-run", ["maintain", "--dry-run"])):
        doc, wall, rss, code = _child(args, u)
        steps[name] = {"s": round(wall, 2), "rss_mb": rss, "exit": code}
    expired = await _expire_tenth(url)
    if plans_file:
        explained = await explain_all(url)
        steps["plans"] = {"s": 0.0, "rss_mb": 0.0, "statements": {k: v["summary"] for k, v in explained.items()}}
        with open(plans_file, "a") as out:
            for name, v in explained.items():
                out.write(f"\n=== {n:,} rows: {name} ({v['summary']['ms']} ms)\n{v['plan']}\n")
    doc, wall, rss, code = _child(["maintain"], u)
    steps["maintain (archives 10 %)"] = {"s": round(wall, 2), "rss_mb": rss, "exit": code, "expired": expired}
    doc, wall, rss, code = _child(["bench-hnsw", "-q", "200", "--ef-search", "40"], u)
    point = doc["points"][0]
    steps["bench-hnsw"] = {"s": round(wall, 2), "rss_mb": rss, "recall_at_10": point["recall_mean"],
                           "p50_ms": point["p50_ms"]}
    for v in steps.values():
        v["rss_mb"] = round(v["rss_mb"], 1)
    return {"n": n, "steps": steps}


def _statements() -> dict[str, tuple[str, dict]]:
    """name -> (SQL, parameters besides :org) of each maintain batch and each check-constraints rule."""
    out = {f"maintain {b}": (batch.sql(), params) for b, batch, params in (
        ("expire", EXPIRE, {}), ("purge", PURGE, {"grace": 0.0}),
        ("consolidation", STALE, {"stale": 3600.0}),
        *((f"retention {basis} {action}", retention_batch(basis, action), {"tier": "task", "days": 30})
          for basis in ("accessed_at", "created_at") for action in ("archive", "delete")))}
    out["maintain purge kept (count)"] = (KEPT.count_sql(), {"grace": 0.0})
    out.update({f"check {r.name} ({r.table})": (r.sql, {}) for r in RULES})
    return out


async def explain_all(url) -> dict[str, dict]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement, each in a transaction rolled back: its plan text
    and a summary (execution ms, and every scan node: "Seq Scan on t", "Index Scan using i")."""
    engine = make_engine(url)
    out = {}
    try:
        async with engine.connect() as conn:
            org = (await conn.execute(text("SELECT id FROM agent_memory.organizations ORDER BY slug LIMIT 1"))).scalar()
            await conn.rollback()
            for name, (sql, params) in _statements().items():
                args = {**params, "org": org, "batch": 1000} if ":org" in sql else params
                transaction = await conn.begin()
                lines = (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), args)).scalars().all()
                await transaction.rollback()
                plan = "\n".join(lines)
                scans = sorted({m.group(0) for m in re.finditer(SCAN, plan)})
                ms = float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))
                out[name] = {"plan": plan, "summary": {"ms": ms, "scans": scans}}
    finally:
        await engine.dispose()
    return out


def growth(results: list[dict]) -> dict[str, str]:
    """Per step: constant, linear or worse, from the two largest sizes (module docstring)."""
    if len(results) < 2:
        return {}
    a, b = results[-2], results[-1]
    out = {}
    for step in b["steps"]:
        if step == "plans":
            continue
        t1, t2 = a["steps"][step]["s"], b["steps"][step]["s"]
        if max(r["steps"][step]["s"] for r in results) < 1.0 or t1 <= 0:
            out[step] = "constant (under 1 s)"
            continue
        e = math.log(max(t2, 1e-3) / t1) / math.log(b["n"] / a["n"])
        out[step] = f"{'constant' if e < 0.3 else 'linear' if e < 1.25 else 'WORSE than linear'} (exponent {e:.2f})"
    return out


async def build_compare(base, n: int, memory_budget: int) -> dict:
    """Seed n rows, then build the HNSW index with 512MB and with the sized memory, same rows."""
    url = await scratch_database(base, DB)
    _child(["seed", "--synthetic", str(n), "--orgs", "10", "--memory", "64MB"], url.render_as_string(
        hide_password=False))
    engine = make_engine(url)
    out = {"n": n}
    try:
        async with engine.connect() as conn:
            model = await get_model(conn)
            sized = maintenance_work_mem_for(graph_bytes(n, model), memory_budget)
            for label, mwm in (("512MB", 512 * 2**20), ("sized", sized)):
                await drop_index(conn, "memory_embeddings", model)
                await conn.commit()
                await conn.exec_driver_sql(f"SET maintenance_work_mem = '{mwm // 2**20}MB'")
                started = time.perf_counter()
                await create_index(conn, "memory_embeddings", model)
                await conn.commit()
                out[label] = {"maintenance_work_mem_mb": mwm // 2**20, "s": round(time.perf_counter() - started, 1)}
        out["speedup"] = round(out["512MB"]["s"] / out["sized"]["s"], 2)
        out["graph_mb"] = round(graph_bytes(n, model) / 2**20)
    finally:
        await engine.dispose()
    return out


def markdown(report: dict) -> str:
    sizes = [r["n"] for r in report["sizes"]]
    head = "| step | " + " | ".join(f"{n:,} rows: s / peak RSS MB" for n in sizes) + " | growth |"
    lines = [head, "|" + "---|" * (len(sizes) + 2)]
    for step in report["sizes"][0]["steps"]:
        if step == "plans":
            continue
        cells = [f"{r['steps'][step]['s']} / {r['steps'][step]['rss_mb']}" for r in report["sizes"]]
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {report['growth'].get(step, '')} |")
    lines.append("| bench-hnsw recall@10, p50 ms (ef_search 40) | " + " | ".join(
        f"{r['steps']['bench-hnsw']['recall_at_10']:.3f}, {r['steps']['bench-hnsw']['p50_ms']}"
        for r in report["sizes"]) + " | |")
    return "\n".join(lines)


async def main(a) -> dict:
    from memctl.cli.options import parse_size

    base = resolve_url(Settings.resolve(a.database_url))
    report: dict = {"sizes": []}
    for n in [int(x) for x in a.sizes.split(",")]:
        print(f"size {n:,} ...", file=sys.stderr, flush=True)
        report["sizes"].append(await one_size(base, n, a.orgs, a.memory, a.plans))
        print(json.dumps(report["sizes"][-1]), file=sys.stderr, flush=True)
    report["growth"] = growth(report["sizes"])
    if a.build_compare:
        print(f"build compare at {a.build_compare:,} ...", file=sys.stderr, flush=True)
        report["build_compare"] = await build_compare(base, a.build_compare, parse_size("--memory", a.memory))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--memory", default="4GB", help="seed's --memory (the index build's budget)")
    parser.add_argument("--build-compare", type=int, default=300_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--plans", default=None, metavar="FILE", help="append every maintain and check plan here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(markdown(result))
        if "build_compare" in result:
            c = result["build_compare"]
            print(f"\nHNSW build of {c['n']:,} vectors (graph about {c['graph_mb']} MB): 512MB {c['512MB']['s']} s, "
                  f"sized ({c['sized']['maintenance_work_mem_mb']} MB) {c['sized']['s']} s: {c['speedup']}x")
        seed_rss = result["sizes"][-1]["steps"]["seed load"]["rss_mb"]
        print(f"seed peak RSS at {result['sizes'][-1]['n']:,} rows: {seed_rss} MB (target < {SEED_RSS_LIMIT_MB} MB)")
