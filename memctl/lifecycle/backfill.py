"""``models backfill``: write a model's embeddings for the memories (and consolidated memories) that
lack one, or whose embedding is stale, batch by batch, resumable at any point.

Each batch: the next rows in (org_id, id) order that still lack a current embedding, their vectors
from the source (no transaction is open meanwhile), then one transaction: binary COPY into a
temporary table and one ``INSERT ... SELECT`` joined to the owner on its content hash (a content
changed since it was read is left for the next run, never stored under the new content) with
``ON CONFLICT`` on the primary key (a service that dual-writes the same row meanwhile wins; nothing
is written twice). Killed at any moment, the open batch rolls back and the next run starts from what
is still missing. One run per model at a time (an advisory lock; a second run exits 75).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.data import registry
from memctl.db.engine import register_codecs
from memctl.db.locks import advisory_lock
from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError
from memctl.lifecycle.catalog import ACTIVE, LIFECYCLE_REVISION, org_id_of
from memctl.lifecycle.embedders import embedder_from_spec
from memctl.lifecycle.sources import EmbedderSource, FileSource, VectorSource
from memctl.lifecycle.types import BackfillResult
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA, ModelSpec
from memctl.models.enums import ModelState
from memctl.progress import Progress, no_progress

STAGE = "memctl_backfill_stage"
NIL = uuid.UUID(int=0)


@dataclass(frozen=True)
class Owners:
    """An embedded table and its owners: ``owners`` rows get ``table`` rows, keyed by ``column``;
    ``live`` picks the owners that need one (a soft-deleted memory does not)."""

    owners: str
    table: str
    column: str
    live: str


PHASES = (Owners("memories", "memory_embeddings", "memory_id", "m.deleted_at IS NULL"),
          Owners("consolidated_memories", "consolidated_memory_embeddings", "consolidated_memory_id", "true"))


def pending_sql(o: Owners, stale: bool, org: bool) -> str:
    """FROM/WHERE of the owners still lacking an embedding of model ``$1`` (with ``stale``, or one
    computed from another content), of organisation ``$2`` when ``org``."""
    current = " AND (e.content_hash IS NULL OR e.content_hash = m.content_hash)" if stale else ""
    return (f"FROM {SCHEMA}.{o.owners} m WHERE {o.live}{' AND m.org_id = $2' if org else ''} "
            f"AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.{o.table} e WHERE e.org_id = m.org_id "
            f"AND e.{o.column} = m.id AND e.model_id = $1{current})")


def insert_sql(o: Owners) -> str:
    """Store the staged vectors of model ``$1`` (dimension ``$2``) whose owner's content is still the
    one embedded; a stale row is replaced, a current one kept. Returns one ``inserted`` flag per row.

    The owners are locked ``FOR SHARE`` until the batch commits: a concurrent delete, status or content
    change waits for it, or, committed first, is seen (a deleted owner is skipped, not a foreign-key
    error; ``searchable`` is computed from the status as committed, and the status change's trigger
    sees the new row)."""
    # searchable passed (the memory is active and not deleted), so trg_memory_embeddings_searchable need not
    # look it up (0013)
    columns, values = ("searchable, ", f"({ACTIVE}), ") if o.table == "memory_embeddings" else ("", "")
    return (f"INSERT INTO {SCHEMA}.{o.table} (org_id, {o.column}, model_id, dim, {columns}embedding, content_hash) "
            f"SELECT s.org_id, s.id, $1, $2, {values}s.embedding, s.content_hash FROM {STAGE} s "
            f"JOIN {SCHEMA}.{o.owners} m ON m.org_id = s.org_id AND m.id = s.id AND m.content_hash = s.content_hash "
            f"FOR SHARE OF m ON CONFLICT (org_id, {o.column}, model_id) DO UPDATE SET embedding = EXCLUDED.embedding, "
            f"content_hash = EXCLUDED.content_hash, created_at = now() "
            f"WHERE {SCHEMA}.{o.table}.content_hash <> EXCLUDED.content_hash RETURNING (xmax = 0) AS inserted")


async def backfill(engine: AsyncEngine, model_name: str, source: VectorSource, *, org: str | None = None,
                   stale: bool = False, batch_size: int = 1000, progress: Progress = no_progress) -> BackfillResult:
    """Write ``model_name``'s embeddings from ``source`` for every live memory and consolidated memory
    (of organisation slug ``org`` only, when given) that lacks one; with ``stale``, also replace the
    embeddings computed from a content that has changed since. ``batch_size`` rows per transaction.

    Progress phases are the owner tables (rows done of rows pending at the start). Raises
    ModelUnavailable (unknown or retiring model), NotFound (organisation), ConfigError (batch size),
    DatasetError / EmbedderError from the source (batches already committed stay), LockHeld when
    another backfill of the model runs, PrivilegeMissing unless the role sees every row.
    """
    model = await _writable_model(engine, model_name, batch_size)
    return await _backfill(engine, model, source, org, stale, batch_size, progress)


async def _writable_model(engine: AsyncEngine, model_name: str, batch_size: int) -> ModelSpec:
    """The checks before any backfill (batch size, schema revision, every row visible) and the model,
    registered or ready."""
    if not 1 <= batch_size <= 100_000:
        raise ConfigError("--batch-size must be 1 to 100000")
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "models backfill")
    async with engine.connect() as conn:
        return await registry.usable_model(conn, model_name, ModelState.REGISTERED, ModelState.READY)


async def _backfill(engine: AsyncEngine, model: ModelSpec, source: VectorSource, org: str | None, stale: bool,
                    batch_size: int, progress: Progress) -> BackfillResult:
    started = time.perf_counter()
    async with engine.connect() as conn:
        org_id = await org_id_of(conn, org) if org is not None else None
        await conn.commit()
    result = BackfillResult(model.name, source.description, org or "all organisations")
    async with advisory_lock(engine, f"models {model.name}"), engine.connect() as conn:
        raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
        await conn.commit()
        await register_codecs(raw)  # a pooled connection may predate the extension
        await raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (org_id uuid, id uuid, content_hash text, "
                          f"embedding vector) ON COMMIT DELETE ROWS")
        try:
            for phase in PHASES:
                await _phase(raw, phase, model, source, org_id, stale, batch_size, result, progress)
            # without --stale too: a stale embedding is not a current one (set-default would refuse)
            result.remaining = sum([await _count(raw, o, model, org_id, True) for o in PHASES])
            result.stale = 0 if stale else result.remaining - sum(
                [await _count(raw, o, model, org_id, False) for o in PHASES])
        finally:
            await raw.execute(f"DROP TABLE IF EXISTS {STAGE}")
            await source.aclose()
    result.elapsed_s = round(time.perf_counter() - started, 3)
    result.rows_per_s = round((result.written + result.refreshed) / result.elapsed_s, 1) if result.elapsed_s else 0.0
    return result


async def backfill_model(engine: AsyncEngine, model_name: str, *, from_file: Path | None = None,
                         embedder: str | None = None, embedder_options: dict[str, Any] | None = None,
                         org: str | None = None, stale: bool = False, batch_size: int = 1000,
                         progress: Progress = no_progress) -> BackfillResult:
    """``memctl models backfill``: :func:`backfill` from ``from_file`` (an .npz of texts and
    embeddings, :class:`~memctl.lifecycle.sources.FileSource`) or ``embedder`` (a spec for
    :func:`~memctl.lifecycle.embedders.embedder_from_spec`, with ``embedder_options``), one of them.
    The schema and the role are checked before the file is read or the embedder made. Raises
    ConfigError (neither or both sources) and what :func:`backfill` and the source raise."""
    if (from_file is None) == (embedder is None):
        raise ConfigError("give --from FILE.npz or --embedder SPEC, one of them")
    model = await _writable_model(engine, model_name, batch_size)
    source: VectorSource = (FileSource.load(from_file, model) if from_file is not None else
                            EmbedderSource(embedder_from_spec(embedder, **(embedder_options or {})), model))
    return await _backfill(engine, model, source, org, stale, batch_size, progress)


async def _count(raw: asyncpg.Connection, o: Owners, model: ModelSpec, org_id: uuid.UUID | None, stale: bool) -> int:
    args = (model.id, org_id) if org_id else (model.id,)
    return int(await raw.fetchval(f"SELECT count(*) {pending_sql(o, stale, org_id is not None)}", *args))


async def _phase(raw: asyncpg.Connection, o: Owners, model: ModelSpec, source: VectorSource,
                 org_id: uuid.UUID | None, stale: bool, batch_size: int, result: BackfillResult,
                 progress: Progress) -> None:
    """One owner table, batch by batch, in (org_id, id) order from a cursor: a row the source has no
    vector for is passed, not retried in the same run."""
    total = await _count(raw, o, model, org_id, stale)
    scoped = org_id is not None
    n = 3 if scoped else 2
    content = "m.content" if source.needs_text else "NULL AS content"  # a file matches by hash alone
    select = (f"SELECT m.org_id, m.id, {content}, m.content_hash {pending_sql(o, stale, scoped)} "
              f"AND (m.org_id, m.id) > (${n}, ${n + 1}) ORDER BY m.org_id, m.id LIMIT ${n + 2}")
    head = (model.id, org_id) if scoped else (model.id,)
    cursor, done = (NIL, NIL), 0
    progress(o.owners, 0, total)
    while True:
        # Read and embed outside any transaction (an embeddings endpoint may take minutes: no snapshot is
        # held open meanwhile); the write is one transaction, joined on the content hash it embedded.
        rows = await raw.fetch(select, *head, *cursor, batch_size)
        if not rows:
            break
        cursor = (rows[-1]["org_id"], rows[-1]["id"])
        found, vectors = await source.vectors([r["content"] for r in rows], [r["content_hash"] for r in rows])
        result.unmatched += len(rows) - len(found)
        async with raw.transaction():
            if len(found):
                await raw.copy_records_to_table(STAGE, records=[
                    (rows[i]["org_id"], rows[i]["id"], rows[i]["content_hash"], vectors[j])
                    for j, i in enumerate(found.tolist())])
                flags = [r["inserted"] for r in await raw.fetch(insert_sql(o), model.id, model.dim)]
                written = sum(flags)
                result.written += written
                result.refreshed += len(flags) - written
                result.tables[o.table] = result.tables.get(o.table, 0) + len(flags)
                result.changed += len(found) - len(flags)
        result.batches += 1
        done += len(rows)
        progress(o.owners, min(done, max(total, done)), max(total, done))
