"""``models index``: build a model's HNSW indexes with ``CREATE INDEX CONCURRENTLY``, then mark it ready.

Concurrently, outside a transaction, so services keep reading and writing the embedding tables
(PostgreSQL docs, CREATE INDEX "Building Indexes Concurrently"). A failed earlier build leaves an
INVALID index: it is dropped concurrently first, as migrate repairs them. ``maintenance_work_mem``
is sized to the graph within the ``memory`` budget: pgvector builds much faster while the graph
fits (pgvector README, "Index Build Time"; past it, it says "hnsw graph no longer fits into
maintenance_work_mem", a warning here). Progress comes from ``pg_stat_progress_create_index``,
read on a second connection while the build runs.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.bench.build import GRAPH_NOTICE
from memctl.data import registry
from memctl.db.build_memory import DEFAULT_MEMORY_BUDGET, check_budget, size_build
from memctl.db.engine import asyncpg_dsn
from memctl.db.locks import advisory_lock
from memctl.db.privileges import require_all_rows, require_migration_privileges
from memctl.errors import LockHeld
from memctl.lifecycle.catalog import LIFECYCLE_REVISION, index_states
from memctl.lifecycle.types import IndexBuild, IndexResult
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.models.embeddings import EMBEDDING_TABLES, hnsw_index_ddl
from memctl.models.enums import ModelState
from memctl.progress import Progress, no_progress

POLL_S = 0.5


_PROGRESS = """
SELECT phase, coalesce(tuples_done, 0) AS done, coalesce(tuples_total, 0) AS total
  FROM pg_stat_progress_create_index WHERE pid = $1"""


async def _watch(dsn: str, pid: int, label: str, progress: Progress) -> None:
    """Report the build of backend ``pid`` until cancelled: tuples done of total, per phase."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            row = await conn.fetchrow(_PROGRESS, pid)
            if row is not None and row["total"]:
                progress(f"{label}: {row['phase']}", int(row["done"]), int(row["total"]))
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()


async def build_index(engine: AsyncEngine, model_name: str, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                      progress: Progress = no_progress) -> IndexResult:
    """Build ``model_name``'s HNSW index on each embedding table concurrently (an INVALID leftover
    dropped first; a valid one left alone), then mark the model ready. ``memory_budget``: the most
    ``maintenance_work_mem`` may be (bytes).

    Raises ModelUnavailable (unknown or retiring model), PrivilegeMissing unless the role owns the
    tables (CREATE INDEX needs it), LockHeld when another run works on the model, and the driver's
    lock-timeout error (exit 75) when older transactions keep the build waiting past lock_timeout
    (the INVALID index it leaves is repaired by the next run).
    """
    check_budget(memory_budget)
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_migration_privileges(engine, "memctl models index")
    await require_all_rows(engine, "models index")  # the graph is sized from the rows: all of them
    async with engine.connect() as conn:
        model = await registry.usable_model(conn, model_name, ModelState.REGISTERED, ModelState.READY)
        await conn.commit()
    builds, warnings = [], []
    async with advisory_lock(engine, f"models {model.name}"), engine.connect() as sa_conn:
        conn = await sa_conn.execution_options(isolation_level="AUTOCOMMIT")
        raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
        rows = {t: int(await raw.fetchval(f"SELECT count(*) FROM {SCHEMA}.{t} WHERE model_id = $1", model.id))
                for t in EMBEDDING_TABLES}
        sized = await size_build(raw, max(rows.values()), model, memory_budget)
        graph, mwm = sized.graph_bytes, sized.maintenance_work_mem_bytes
        notices: list[str] = []

        def listen(_conn, message) -> None:
            notices.append(message.message)

        raw.add_log_listener(listen)
        try:
            states = {s.table: s for s in await index_states(conn, model)}
            for table in EMBEDDING_TABLES:
                builds.append(await _build_one(raw, engine, model, table, states[table].status, rows[table],
                                               progress))
        finally:
            raw.remove_log_listener(listen)
        if graph > mwm and any(b.action != "present" for b in builds):
            warnings.append(f"the graph of {max(rows.values())} vectors needs about {graph / 2**20:.0f} MB, more than "
                            f"the {mwm / 2**20:.0f} MB --memory allows: the build went on, slower")
        warnings += sorted({n for n in notices if GRAPH_NOTICE in n})
        final = {s.table: s for s in await index_states(conn, model)}
        for b in builds:
            b.size_bytes = final[b.table].size_bytes
        state = model.state
        if all(s.status == "valid" for s in final.values()):
            await conn.execute(text(f"UPDATE {SCHEMA}.embedding_models SET state = 'ready' "
                                    f"WHERE id = :id AND state = 'registered'"), {"id": model.id})
            state = ModelState.READY
    return IndexResult(model.name, builds, mwm, graph, str(state), warnings)


async def _build_one(raw: asyncpg.Connection, engine: AsyncEngine, model: ModelSpec, table: str, status: str,
                     rows: int, progress: Progress) -> IndexBuild:
    index = hnsw_index_name(table, model.id)
    name = f"{SCHEMA}.{index}"
    if status == "valid":
        return IndexBuild(table, index, "present", rows, 0.0, None)
    if status == "building":
        raise LockHeld(f"{name} is being built by another session (pg_stat_progress_create_index); try later")
    action = "built"
    if status == "invalid":
        await raw.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        action = "rebuilt"
    ddl = hnsw_index_ddl(engine.dialect, table, model).replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)
    started = time.perf_counter()
    watcher = asyncio.create_task(_watch(asyncpg_dsn(engine.url), raw.get_server_pid(), table, progress))
    try:
        await raw.execute(ddl)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    progress(f"{table}: done", 1, 1)
    return IndexBuild(table, index, action, rows, round(time.perf_counter() - started, 3), None)
