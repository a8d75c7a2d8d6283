"""How much memory an HNSW build gets: ``maintenance_work_mem`` sized to the graph within a budget.

pgvector builds an HNSW index much faster while the graph fits in ``maintenance_work_mem``; past it
the build goes on on disk, noticeably slower, with the notice "hnsw graph no longer fits into
maintenance_work_mem" (pgvector README, "Index Build Time"). Measured here (issue 15): 300,000
MiniLM-sized vectors built in 165 s with 512 MB and 59 s with 3 GB. One rule for every build memctl
starts (seed, ``models index``): the estimated graph, at least PostgreSQL's default 64 MB, never more
than the ``--memory`` budget; and parallel workers from ``--parallel-workers``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from memctl.errors import ConfigError
from memctl.models import ModelSpec
from memctl.models.enums import IndexStorage

MIN_MAINTENANCE_WORK_MEM = 64 * 2**20  # PostgreSQL's default maintenance_work_mem
SMALLEST_BUDGET = 2**20  # PostgreSQL's lowest maintenance_work_mem (1 MB)
DEFAULT_MEMORY_BUDGET = 1024 * 2**20  # 1 GiB: safe on the smallest machines memctl targets (documented)


def graph_bytes(rows: int, model: ModelSpec) -> int:
    """Estimated in-memory size of the HNSW graph of ``rows`` vectors (bytes): per element its value
    (4 bytes per dimension, 2 for halfvec, plus an 8-byte header), its neighbour lists (2 * m on
    layer 0, m on each upper layer, about 1/(m-1) more in all; 16 bytes each: a pointer and a
    distance) and about 100 bytes of element overhead (pgvector's hnsw.h HnswElementData), with
    a quarter added for allocator slack. An estimate for sizing, not a measurement."""
    value = model.dim * (2 if model.index_storage == IndexStorage.HALFVEC else 4) + 8
    neighbours = 2 * model.hnsw_m * (1 + 1 / max(model.hnsw_m - 1, 1)) * 16
    return int(rows * (value + neighbours + 100) * 1.25)


def maintenance_work_mem_for(graph: int, budget: int) -> int:
    """``maintenance_work_mem`` (bytes) for a graph of ``graph`` bytes: the graph, at least
    PostgreSQL's default 64 MB, but never more than ``budget`` (which may be smaller)."""
    return min(max(MIN_MAINTENANCE_WORK_MEM, graph), budget)


@dataclass(frozen=True)
class BuildMemory:
    """What a build was given: the estimated graph (bytes), ``maintenance_work_mem`` (bytes), whether
    the graph fits in it, and ``max_parallel_maintenance_workers`` (None: the server's setting)."""

    graph_bytes: int
    maintenance_work_mem_bytes: int
    fits: bool
    parallel_workers: int | None


def check_budget(budget: int, parallel_workers: int | None = None) -> None:
    """Raise ConfigError for a budget under 1 MB or a negative worker count."""
    if budget < SMALLEST_BUDGET:
        raise ConfigError("--memory must be at least 1MB (PostgreSQL's lowest maintenance_work_mem)")
    if parallel_workers is not None and not 0 <= parallel_workers <= 1024:
        raise ConfigError("--parallel-workers must be between 0 and 1024")


async def size_build(conn: asyncpg.Connection, rows: int, model: ModelSpec, budget: int = DEFAULT_MEMORY_BUDGET,
                     parallel_workers: int | None = None, *, local: bool = False) -> BuildMemory:
    """Set ``maintenance_work_mem`` (and ``max_parallel_maintenance_workers``) on ``conn`` for a build
    of ``rows`` vectors of ``model``: for the session, or with ``local`` for the transaction only."""
    check_budget(budget, parallel_workers)
    graph = graph_bytes(rows, model)
    mwm = maintenance_work_mem_for(graph, budget)
    scope = "LOCAL " if local else ""
    await conn.execute(f"SET {scope}maintenance_work_mem = '{mwm // 1024}kB'")
    if parallel_workers is not None:
        await conn.execute(f"SET {scope}max_parallel_maintenance_workers = {int(parallel_workers)}")
    return BuildMemory(graph, mwm, graph <= mwm, parallel_workers)
