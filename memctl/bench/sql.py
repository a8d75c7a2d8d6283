"""The SQL a benchmark runs, and how its plans are read.

Queries use the schema's query path (schema.md "Embeddings"): the model's partial expression
index, ``ORDER BY embedding::vector(d) <=> $1 LIMIT k`` with ``model_id = <id>`` as a literal so
the partial index's predicate matches. With iterative scans in relaxed order, results are
re-sorted through a MATERIALIZED CTE with ``ORDER BY distance + 0`` (pgvector README,
"Iterative Index Scans").
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from memctl.models import SCHEMA, ModelSpec

# Exact search: no index scan at all (so never HNSW), whatever was forced for the approximate runs.
TRUTH_SETTINGS = ("SET LOCAL enable_indexscan = off", "SET LOCAL enable_seqscan = on",
                  "SET LOCAL enable_bitmapscan = on", "SET LOCAL enable_sort = on")
# Approximate runs with force_index: every path but an ordered index scan is disabled (a B-tree
# scan on model_id needs a Sort by distance; only the HNSW scan returns rows in distance order).
FORCE_INDEX_SETTINGS = ("SET enable_seqscan = off", "SET enable_bitmapscan = off", "SET enable_sort = off")
PLANNER_SETTINGS = ("RESET enable_seqscan", "RESET enable_bitmapscan", "RESET enable_sort")
ITERATIVE_MODES = ("off", "strict_order", "relaxed_order")


def where(model: ModelSpec, org_id: uuid.UUID | None, org_param: int) -> str:
    """WHERE clause of the model's rows (model_id a literal, so the partial index applies), with
    ``org_id = $<org_param>`` when an organisation is given."""
    return f"model_id = {int(model.id)}" + (f" AND org_id = ${org_param}" if org_id else "")


class Queries:
    """SQL of the approximate and exact top-k queries for one model and optional organisation.

    ``approx`` is the relaxed-order form (MATERIALIZED CTE re-sorted by ``distance + 0``) when
    ``relaxed`` is set; ``truth`` is the plain form. ``args`` follow the query vector ($1).
    """

    def __init__(self, model: ModelSpec, k: int, org_id: uuid.UUID | None, relaxed: bool = False):
        expr = f"embedding::{model.cast_sql} {model.operator} $1"
        base = (f"SELECT memory_id, {expr} AS distance FROM {SCHEMA}.memory_embeddings "
                f"WHERE {where(model, org_id, 2)} ORDER BY distance LIMIT {int(k)}")
        self.approx = (f"WITH r AS MATERIALIZED ({base}) SELECT memory_id, distance FROM r "
                       f"ORDER BY distance + 0") if relaxed else base
        self.truth = base
        self.args: tuple = (org_id,) if org_id else ()


async def exact_mode(conn: asyncpg.Connection) -> None:
    """Inside a transaction: index scans off until it ends."""
    for stmt in TRUTH_SETTINGS:
        await conn.execute(stmt)


async def explain(conn: asyncpg.Connection, sql: str, args: tuple, analyze: bool = False) -> dict[str, Any]:
    """The top plan node of ``EXPLAIN (FORMAT JSON)`` (with ANALYZE, BUFFERS when ``analyze``)."""
    opts = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = await conn.fetchval(f"EXPLAIN ({opts}) {sql}", *args)
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(plan: dict[str, Any]):
    """Every node of a plan tree, depth first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def summary(plan: dict[str, Any]) -> str:
    """'Limit > Index Scan on ix_...' style one-line plan."""
    return " > ".join(n["Node Type"] + (f" on {n['Index Name']}" if "Index Name" in n else "") for n in nodes(plan))


def uses_index(plan: dict[str, Any], index: str) -> bool:
    """True when any node scans ``index``."""
    return any(n.get("Index Name") == index for n in nodes(plan))


def access_path(plan: dict[str, Any], hnsw_index: str) -> str:
    """The access path the planner chose: 'HNSW', 'B-tree <index>', 'bitmap <index>' or 'sequential scan'."""
    found = list(nodes(plan))
    if any(n.get("Index Name") == hnsw_index for n in found):
        return "HNSW"
    for n in found:
        if n["Node Type"] == "Bitmap Index Scan":
            return f"bitmap {n.get('Index Name')}"
        if n["Node Type"] in ("Index Scan", "Index Only Scan"):
            return f"B-tree {n.get('Index Name')}"
    return "sequential scan" if any(n["Node Type"] == "Seq Scan" for n in found) else summary(plan)
