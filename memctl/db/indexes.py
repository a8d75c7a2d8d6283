"""INVALID indexes: what a failed concurrent build leaves behind, found and repaired.

A failed ``CREATE INDEX CONCURRENTLY`` leaves an INVALID index; a failed ``REINDEX
CONCURRENTLY`` leaves ``<index>_ccnew`` / ``_ccold`` copies (PostgreSQL docs, CREATE INDEX
"Building Indexes Concurrently", REINDEX). memctl migrate repairs them before every attempt;
memctl maintain reindex does too. An index a build is still working on (listed in
``pg_stat_progress_create_index``) is left alone. Works before the schema exists (no rows).
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db.engine import pg_ms
from memctl.models import SCHEMA

# REINDEX CONCURRENTLY's copies, and revision 0018's temporary builds (an INVALID one is dropped, not
# rebuilt: the revision builds it again, and rebuilt at head it would stay as a duplicate index).
_LEFTOVER = re.compile(r"_cc(new|old)\d*$|^ix_memory_embeddings_hnsw_\d+_0018$")

# INVALID indexes of the schema, one name per row; an index that a build is still working on (listed
# in pg_stat_progress_create_index) is not broken yet and is left out. The one definition, for the
# repair below and for check-constraints' index_invalid rule.
INVALID_INDEXES = f"""
SELECT i.relname
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_namespace n ON n.oid = i.relnamespace
 WHERE n.nspname = '{SCHEMA}' AND NOT x.indisvalid
   AND x.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid <> 0)"""


async def repair_invalid_indexes(engine: AsyncEngine, dry_run: bool = False,
                                 lock_timeout_s: float | None = None) -> list[str]:
    """Drop leftover ``_ccnew``/``_ccold`` copies and revision 0018's INVALID ``_0018`` builds (``DROP
    INDEX CONCURRENTLY``), then rebuild every
    other INVALID index of agent_memory (``REINDEX INDEX CONCURRENTLY``); one line per index,
    'dropped agent_memory.x' or 'rebuilt agent_memory.x' ('would ...' with ``dry_run``).
    ``lock_timeout_s`` bounds each wait (a concurrent rebuild waits for older transactions: a lock
    wait too), raising the driver's lock-timeout error (SQLSTATE 55P03) past it."""
    done: list[str] = []
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if lock_timeout_s is not None:
            await conn.execute(text("SELECT set_config('lock_timeout', :t, false)"),
                               {"t": pg_ms(lock_timeout_s)})
        quote = conn.dialect.identifier_preparer.quote
        invalid = (await conn.execute(text(INVALID_INDEXES + " ORDER BY 1"))).scalars().all()
        # Leftover copies first: a rebuild that fails again must not find (and stack on) old ones.
        for index in sorted(invalid, key=lambda i: not _LEFTOVER.search(i)):
            name = f"{quote(SCHEMA)}.{quote(index)}"
            leftover = bool(_LEFTOVER.search(index))
            if not dry_run:
                await conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}" if leftover
                                           else f"REINDEX INDEX CONCURRENTLY {name}")
            verb = ("drop", "dropped") if leftover else ("rebuild", "rebuilt")
            done.append(f"{'would ' + verb[0] if dry_run else verb[1]} {SCHEMA}.{index}")
    return done
