"""Batched, tenant-scoped changes: each batch is one short transaction that locks at most
``batch_size`` rows, picked with ``FOR UPDATE SKIP LOCKED`` so a row a writer holds is left for
the next run instead of waited for.

Every generated statement names its organisation and its predicate twice, in the outer
statement and in the row picker; :func:`ensure_scoped` refuses any statement that does not, so
a maintenance task can never touch another tenant's rows or rows outside its policy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.errors import MemctlError
from memctl.models import SCHEMA

ORG = "org_id = :org"


class UnsafeStatement(MemctlError):
    """A generated maintenance statement lacks its organisation or its predicate: refused, not run."""


@dataclass(frozen=True)
class Batch:
    """A batched change of ``table`` rows of one organisation matching ``predicate``.

    ``change`` is ``DELETE`` or ``SET ...`` (an UPDATE's assignments); ``returning`` the column
    returned per changed row. ``predicate`` uses unqualified columns and named parameters.
    """

    table: str
    predicate: str
    change: str
    returning: str = "id"

    def sql(self) -> str:
        """The statement for one batch (parameters :org, :batch and the predicate's).

        The row picker is a MATERIALIZED CTE, evaluated once (as an ``IN (subquery)`` the planner
        may rescan it, and each rescan with SKIP LOCKED hands out further rows), and the change
        finds the picked rows by ctid (a TID scan, whatever the planner's row estimates; the
        picker's row locks keep the ctids valid until commit). Rows are taken in index order, no
        sort: the first ``batch`` matches end the scan.
        """
        picker = (f"WITH picked AS MATERIALIZED (SELECT ctid AS p_ctid FROM {SCHEMA}.{self.table} "
                  f"WHERE {ORG} AND ({self.predicate}) LIMIT :batch FOR UPDATE SKIP LOCKED) ")
        scope = f"{ORG} AND ({self.predicate}) AND ctid = ANY (ARRAY(SELECT p_ctid FROM picked))"
        if self.change == "DELETE":
            stmt = f"{picker}DELETE FROM {SCHEMA}.{self.table} WHERE {scope} RETURNING {self.returning}"
        else:
            stmt = f"{picker}UPDATE {SCHEMA}.{self.table} {self.change} WHERE {scope} RETURNING {self.returning}"
        return ensure_scoped(stmt, self.predicate)

    def count_sql(self) -> str:
        """How many rows the batches would change (for --dry-run)."""
        return ensure_scoped(f"SELECT count(*) FROM {SCHEMA}.{self.table} WHERE {ORG} AND ({self.predicate})",
                             self.predicate, picker=False)


def ensure_scoped(sql: str, predicate: str, picker: bool = True) -> str:
    """``sql`` if it filters on the organisation and ``predicate`` (in the statement and, when
    ``picker``, again in its row picker); raises :class:`UnsafeStatement` otherwise."""
    need = 2 if picker else 1
    if not predicate.strip() or sql.count(ORG) < need or sql.count(f"({predicate})") < need:
        raise UnsafeStatement(f"refusing an unscoped maintenance statement: {sql[:120]}")
    if picker and "FOR UPDATE SKIP LOCKED" not in sql:
        raise UnsafeStatement(f"refusing a maintenance statement without SKIP LOCKED: {sql[:120]}")
    return sql


@dataclass
class BatchStats:
    """Rows changed, batches run, largest batch, whether the runtime budget stopped it, and the
    RETURNING values (e.g. new statuses) when they are not ids."""

    rows: int = 0
    batches: int = 0
    max_batch_rows: int = 0
    stopped_by_budget: bool = False


STALE_STATS = """
SELECT n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000) FROM pg_stat_user_tables
 WHERE schemaname = :schema AND relname = :table
"""


async def analyze_if_stale(engine: AsyncEngine, table: str) -> bool:
    """ANALYZE ``table`` when over 10 % of it changed since its last analyze (after a bulk load,
    before autovacuum gets to it); True if it did. With stale statistics the planner takes the
    batch statement's index range for one row and scans it whole for every batch."""
    async with engine.connect() as conn:
        stale = (await conn.execute(text(STALE_STATS), {"schema": SCHEMA, "table": table})).scalar()
        if stale:
            await conn.execute(text(f"ANALYZE {SCHEMA}.{table}"))
            await conn.commit()
    return bool(stale)


async def run_batches(engine: AsyncEngine, batch: Batch, params: dict, batch_size: int, deadline: float | None,
                      dry_run: bool, returned: list | None = None) -> BatchStats:
    """Apply ``batch`` until no row is left (or the monotonic ``deadline`` passes).

    With ``dry_run`` only counts (one SELECT, nothing written). ``returned`` collects the
    RETURNING values. Each batch commits on its own.
    """
    stats = BatchStats()
    args = {**params, "batch": batch_size}
    if dry_run:
        async with engine.connect() as conn:
            stats.rows = int((await conn.execute(text(batch.count_sql()), args)).scalar())
        stats.batches = math.ceil(stats.rows / batch_size)
        stats.max_batch_rows = min(stats.rows, batch_size)
        return stats
    sql = text(batch.sql())
    await analyze_if_stale(engine, batch.table)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            stats.stopped_by_budget = True
            return stats
        async with engine.begin() as conn:
            rows = (await conn.execute(sql, args)).scalars().all()
        if not rows:
            return stats
        stats.rows += len(rows)
        stats.batches += 1
        stats.max_batch_rows = max(stats.max_batch_rows, len(rows))
        if returned is not None:
            returned.extend(rows)
