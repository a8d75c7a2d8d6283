"""``memctl export``: every row an organisation owns, as Apache Parquet, with a manifest (issue 14).

One file per tenant table (:mod:`memctl.transfer.tables`: found from the catalog), and for the
embedding tables one per (table, model), since one table holds vectors of several dimensions:
vectors as fixed-size lists of float32 (exact). Columns whose type has no exact Arrow twin (uuid,
jsonb, numeric, arrays) travel as PostgreSQL's text form and the manifest records their SQL type.
Generated columns (content_hash, content_tsv) are left out: an import recomputes them.

The whole export reads one REPEATABLE READ, READ ONLY snapshot (a consistent copy while services
write), streams each table in batches of ``batch_rows`` through a server-side cursor (constant
memory), and is written into a scratch directory beside the target, renamed into place at the end:
an interrupted export leaves no half-written output.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl import installed_version
from memctl.db.engine import register_codecs
from memctl.db.names import checked
from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError, NotFound
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA
from memctl.models.embeddings import LIFECYCLE_REVISION
from memctl.progress import Progress, no_progress
from memctl.transfer.manifest import FORMAT, FORMAT_VERSION, MANIFEST, sha256_of
from memctl.transfer.tables import Column, TenantTable, quote, tenant_tables


@dataclass
class ExportedFile:
    """One Parquet file: the table (and embedding model) it holds, its rows, size (bytes), SHA-256."""

    file: str
    table: str
    model: str | None
    rows: int
    bytes: int
    sha256: str


@dataclass
class ExportResult:
    """What ``memctl export`` wrote into ``output``: the files, the rows in all, wall time (s)."""

    organization: str
    output: str
    revision: str
    files: list[ExportedFile] = field(default_factory=list)
    rows: int = 0
    elapsed_s: float = 0.0
    rows_per_s: float = 0.0


def _select(c: Column) -> str:
    return f"{quote(c.name)}::text AS {quote(c.name)}" if c.as_text else quote(c.name)


def _array(c: Column, values: list, dim: int | None) -> pa.Array:
    if c.type != "vector":
        return pa.array(values, type=c.arrow_type(dim))
    flat = np.concatenate([np.asarray(v.to_numpy(), dtype=np.float32) for v in values]) if values else \
        np.empty(0, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)


async def _fetch(cursor, rows: int, table: TenantTable) -> list:
    try:
        return await cursor.fetch(rows)
    except OverflowError:  # asyncpg decodes dates into Python's datetime: years 1 to 9999 only
        raise ConfigError(f"table {table.name} holds a date or timestamp outside years 1-9999 (e.g. BC), which "
                          "the export cannot carry: nothing written") from None


async def _write(raw: asyncpg.Connection, path: Path, table: TenantTable, where: str, args: tuple,
                 dim: int | None, batch_rows: int, progress: Progress, label: str) -> int:
    """Stream ``table``'s rows matching ``where`` into the Parquet file ``path``; the row count."""
    columns = list(table.columns)
    schema = pa.schema([pa.field(c.name, c.arrow_type(dim), nullable=not c.not_null) for c in columns])
    sql = f"SELECT {', '.join(map(_select, columns))} FROM {SCHEMA}.{quote(table.name)} WHERE {where}"
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        cursor = await raw.cursor(sql, *args)
        while batch := await _fetch(cursor, batch_rows, table):
            arrays = [_array(c, [r[i] for r in batch], dim) for i, c in enumerate(columns)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            rows += len(batch)
            progress(label, rows, rows)
        if rows == 0:
            writer.write_table(schema.empty_table())
    return rows


def _scratch_beside(output: Path) -> Path:
    """A new directory beside ``output`` to write into; ConfigError when ``output`` holds anything."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"{output} exists and is not an empty directory: an export never overwrites")
    if not output.parent.is_dir():
        raise ConfigError(f"{output.parent} is not a directory")
    scratch = output.parent / f".{output.name}.partial-{secrets.token_hex(4)}"
    scratch.mkdir()
    return scratch


async def export_org(engine: AsyncEngine, slug: str, output: Path, *, batch_rows: int = 10_000,
                     progress: Progress = no_progress) -> ExportResult:
    """Export organisation ``slug`` into the directory ``output`` (absent or empty): one Parquet file
    per tenant table (per (table, model) for embeddings) and ``manifest.json`` (memctl version,
    revision, organisation, per file its table, model, rows and SHA-256, the models used).

    Raises NotFound (organisation), ConfigError (output not empty, batch_rows < 1), PrivilegeMissing
    unless the role sees every row, SchemaNotReady below head's revision files.
    """
    if batch_rows < 1:
        raise ConfigError("--batch-rows must be at least 1")
    revision = await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "export")
    started = time.perf_counter()
    scratch = _scratch_beside(output)
    try:
        async with engine.connect() as sa:
            raw: asyncpg.Connection = (await sa.get_raw_connection()).driver_connection
            await sa.commit()
            await register_codecs(raw)
            async with raw.transaction(isolation="repeatable_read", readonly=True):
                result, manifest = await _export(raw, slug, scratch, revision, batch_rows, progress)
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if output.exists():
            output.rmdir()
        scratch.rename(output)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    result.output = str(output)
    result.elapsed_s = round(time.perf_counter() - started, 3)
    result.rows_per_s = round(result.rows / result.elapsed_s, 1) if result.elapsed_s else 0.0
    return result


async def _export(raw: asyncpg.Connection, slug: str, out: Path, revision: str, batch_rows: int,
                  progress: Progress) -> tuple[ExportResult, dict[str, Any]]:
    org = await raw.fetchrow(f"SELECT id, slug, name FROM {SCHEMA}.organizations WHERE slug = $1",
                             checked("organisation with slug", slug))
    if org is None:
        raise NotFound(f"no organisation with slug {slug!r}")
    models = [dict(r) for r in await raw.fetch(
        f"SELECT DISTINCT m.id, m.name, m.dim, m.distance, m.index_storage, m.hnsw_m, m.hnsw_ef_construction "
        f"FROM {SCHEMA}.embedding_models m WHERE EXISTS (SELECT 1 FROM {SCHEMA}.memory_embeddings e "
        f"WHERE e.org_id = $1 AND e.model_id = m.id) OR EXISTS (SELECT 1 FROM {SCHEMA}.consolidated_memory_embeddings "
        f"e WHERE e.org_id = $1 AND e.model_id = m.id) OR EXISTS (SELECT 1 FROM {SCHEMA}.organization_models o "
        f"WHERE o.org_id = $1 AND o.model_id = m.id) ORDER BY m.id", org["id"])]
    result = ExportResult(org["slug"], str(out), revision)
    files: dict[str, Any] = {}
    for table in await tenant_tables(raw):
        parts = ([(f"{table.name}.model-{i}.parquet", f"{quote(table.key)} = $1 AND model_id = $2",
                   (org["id"], m["id"]), m) for i, m in enumerate(models)] if table.embeddings
                 else [(f"{table.name}.parquet", f"{quote(table.key)} = $1", (org["id"],), None)])
        for name, where, args, model in parts:
            path = out / name
            rows = await _write(raw, path, table, where, args, model["dim"] if model else None, batch_rows,
                                progress, name)
            exported = ExportedFile(name, table.name, model["name"] if model else None, rows, path.stat().st_size,
                                    sha256_of(path))
            result.files.append(exported)
            result.rows += rows
            files[name] = {**asdict(exported), "key": table.key, "columns": [
                {"name": c.name, "pg_type": c.pg_type, "text": c.as_text} for c in table.columns]}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "memctl_version": installed_version(),
                "revision": revision, "exported_at": dt.datetime.now(dt.UTC).isoformat(),
                "organization": {"id": str(org["id"]), "slug": org["slug"], "name": org["name"]},
                "models": models, "files": files}
    return result, manifest
