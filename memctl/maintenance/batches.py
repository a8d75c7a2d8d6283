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

        The row picker is a MATERIALIZED CTE, evaluated once: as an ``IN (subquery)`` the planner
        may rescan it, and each rescan with SKIP LOCKED hands out further rows (more than a batch).
        """
        picker = (f"WITH picked AS MATERIALIZED (SELECT org_id AS p_org, id AS p_id FROM {SCHEMA}.{self.table} "
                  f"WHERE {ORG} AND ({self.predicate}) ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED) ")
        scope = f"{ORG} AND ({self.predicate}) AND org_id = p_org AND id = p_id"
        if self.change == "DELETE":
            stmt = f"{picker}DELETE FROM {SCHEMA}.{self.table} USING picked WHERE {scope} RETURNING {self.returning}"
        else:
            stmt = (f"{picker}UPDATE {SCHEMA}.{self.table} {self.change} FROM picked WHERE {scope} "
                    f"RETURNING {self.returning}")
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
