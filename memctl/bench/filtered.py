"""Tenant-filtered search: organisations grouped by selectivity, under each iterative-scan mode.

A filter on ``org_id`` is applied after the HNSW scan; with ``hnsw.iterative_scan = off`` a scan
returns at most ``ef_search`` candidates, so a small tenant gets short results. pgvector 0.8's
iterative scans keep scanning (``strict_order`` or ``relaxed_order``) until k rows pass the
filter or ``hnsw.max_scan_tuples`` is reached (pgvector README, "Iterative Index Scans"). Here
the planner decides the plan (HNSW, a B-tree on org_id, a sequential scan) and the run reports
which it chose.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import numpy as np

from memctl.bench.measure import measure
from memctl.bench.sql import PLANNER_SETTINGS, Queries, access_path, explain, session_settings
from memctl.bench.truth import Truth
from memctl.bench.types import FilteredCell
from memctl.models import SCHEMA, ModelSpec
from memctl.progress import Progress

GROUP_TARGETS = (0.01, 0.10, 0.50)  # shares of the model's rows: a small, a mid and a large tenant (seed --skew)


async def org_shares(conn: asyncpg.Connection, model: ModelSpec) -> list[tuple[uuid.UUID, str, int, float]]:
    """(org id, slug, rows, share of the model's rows) of every organisation with rows, largest first."""
    rows = await conn.fetch(
        f"SELECT e.org_id, o.slug, count(*) AS n FROM {SCHEMA}.memory_embeddings e "
        f"JOIN {SCHEMA}.organizations o ON o.id = e.org_id WHERE e.model_id = {int(model.id)} "
        "GROUP BY e.org_id, o.slug ORDER BY n DESC, o.slug")
    total = sum(r["n"] for r in rows)
    return [(r["org_id"], r["slug"], r["n"], r["n"] / total) for r in rows]


def pick_groups(shares: list[tuple[uuid.UUID, str, int, float]],
                targets: tuple[float, ...] = GROUP_TARGETS) -> list[tuple[str, tuple]]:
    """For each target share, the unused organisation closest to it (log ratio); label '~1 %' etc."""
    used: set = set()
    out = []
    for target in targets:
        free = [s for s in shares if s[0] not in used]
        if not free:
            break
        best = min(free, key=lambda s: abs(math.log(s[3] / target)))
        used.add(best[0])
        out.append((f"~{target * 100:g} %", best))
    return out


def _cells(max_scan_tuples: tuple[int, ...]) -> list[tuple[str, int | None]]:
    return [("off", None)] + [(mode, m) for mode in ("strict_order", "relaxed_order") for m in max_scan_tuples]


async def filtered_bench(conn: asyncpg.Connection, model: ModelSpec, index: str, queries: np.ndarray, k: int,
                         ef_search: int, max_scan_tuples: tuple[int, ...],
                         truth_for: Callable[[uuid.UUID], Awaitable[Truth]], progress: Progress) -> list[FilteredCell]:
    """Measure every (organisation group, iterative mode, max_scan_tuples) cell with the planner free.

    ``truth_for(org_id)`` gives the filtered exact top-k. The session's settings are as before
    when it returns.
    """
    groups = pick_groups(await org_shares(conn, model))
    cells = _cells(max_scan_tuples)
    out: list[FilteredCell] = []
    async with session_settings(conn, {**PLANNER_SETTINGS, "hnsw.ef_search": ef_search}):
        for label, (org_id, slug, rows, share) in groups:
            truth = await truth_for(org_id)
            for mode, mst in cells:
                async with session_settings(conn, {"hnsw.iterative_scan": mode, "hnsw.max_scan_tuples": mst}):
                    q = Queries(model, k, org_id)
                    plan = access_path(await explain(conn, q.approx, (queries[0], *q.args)), index)
                    stats = await measure(await conn.prepare(q.approx), queries, q.args, truth, k, warmup=5)
                out.append(FilteredCell(label, slug, rows, round(share, 4), mode, mst, ef_search, plan,
                                        stats.recall_mean, stats.recall_min, stats.short_share, stats.p50_ms,
                                        stats.p95_ms))
                progress("filtered", len(out), len(groups) * len(cells))
    return out
