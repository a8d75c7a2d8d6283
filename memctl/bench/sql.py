"""The SQL a benchmark runs, and how its plans are read.

The measured statement is the services' own (:func:`memctl.repositories.search_sql.search_sql`,
what ``MemoryRepository.search`` runs), so bench-hnsw measures what services run; the exact
answer is the same statement with index scans off.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from memctl.models import ModelSpec
from memctl.repositories.search_sql import search_sql
from memctl.repositories.search_sql import where as search_where

# Settings are GUC name -> value (None: the server's default, RESET); see :func:`session_settings`.
Settings = Mapping[str, str | int | None]

# Exact search: no index scan at all (so never HNSW), whatever was forced for the approximate runs.
TRUTH_SETTINGS: Settings = {"enable_indexscan": "off", "enable_seqscan": "on", "enable_bitmapscan": "on",
                            "enable_sort": "on"}
# Approximate runs with force_index: every path but an ordered index scan is disabled (a B-tree
# scan on model_id needs a Sort by distance; only the HNSW scan returns rows in distance order).
FORCE_INDEX_SETTINGS: Settings = {"enable_seqscan": "off", "enable_bitmapscan": "off", "enable_sort": "off"}
# The planner decides (filtered groups): the defaults back.
PLANNER_SETTINGS: Settings = dict.fromkeys(FORCE_INDEX_SETTINGS)
ITERATIVE_MODES = ("off", "strict_order", "relaxed_order")


async def _apply(conn: asyncpg.Connection, values: Settings, local: bool) -> None:
    for name, value in values.items():
        if value is None:
            await conn.execute(f"RESET {name}")  # names are this module's constants, never user input
        else:
            await conn.execute("SELECT set_config($1, $2, $3)", name, str(value), local)


@asynccontextmanager
async def session_settings(conn: asyncpg.Connection, values: Settings) -> AsyncIterator[None]:
    """Session settings ``values`` for the body, each put back to the value it had before, however
    the body ends (a GUC that did not exist yet, such as ``hnsw.*`` before pgvector loads, is RESET)."""
    before = {name: await conn.fetchval("SELECT current_setting($1, true)", name) for name in values}
    await _apply(conn, values, local=False)
    try:
        yield
    finally:
        await _apply(conn, before, local=False)


def set_statements(values: Settings) -> tuple[str, ...]:
    """``values`` as SET / RESET statements (for a pool's per-connection init), values quoted."""
    quoted = {n: None if v is None else "'" + str(v).replace("'", "''") + "'" for n, v in values.items()}
    return tuple(f"RESET {n}" if v is None else f"SET {n} = {v}" for n, v in quoted.items())


def where(model: ModelSpec, org_id: uuid.UUID | None, org_param: int) -> str:
    """WHERE clause of the rows a search of ``model`` sees (the services' own,
    :func:`memctl.repositories.search_sql.where`), with ``org_id = $<org_param>`` when an
    organisation is given."""
    return search_where(model, org_id is not None, org_param)


class Queries:
    """The top-k statement for one model and optional organisation: ``approx`` (run with the index)
    and ``truth`` (the same text, run in :func:`exact_mode`). ``args`` follow the query vector ($1).
    """

    def __init__(self, model: ModelSpec, k: int, org_id: uuid.UUID | None):
        self.approx = self.truth = search_sql(model, k, org=org_id is not None)
        self.args: tuple = (org_id,) if org_id else ()


async def exact_mode(conn: asyncpg.Connection) -> None:
    """Inside a transaction: index scans off until it ends (``set_config(..., true)``, SET LOCAL)."""
    await _apply(conn, TRUTH_SETTINGS, local=True)


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


def access_path(plan: dict[str, Any], hnsw_index: str, table: str = "memory_embeddings") -> str:
    """The access path the planner chose to ``table``: 'HNSW', 'B-tree <index>', 'bitmap <index>' or
    'sequential scan' (the join that reads the content is not the search's access path)."""
    found = [n for n in nodes(plan) if n.get("Relation Name", table) == table]
    if any(n.get("Index Name") == hnsw_index for n in found):
        return "HNSW"
    for n in found:
        if n["Node Type"] == "Bitmap Index Scan":
            return f"bitmap {n.get('Index Name')}"
        if n["Node Type"] in ("Index Scan", "Index Only Scan"):
            return f"B-tree {n.get('Index Name')}"
    return "sequential scan" if any(n["Node Type"] == "Seq Scan" for n in found) else summary(plan)
