"""``memctl import``: an export loaded into a database, in one transaction, or not at all (issue 14).

Before anything is written the export is checked whole (:mod:`memctl.transfer.manifest`: manifest,
every file's SHA-256, no file missing) and against the target (schema revision equal to the target's,
which must be at head; the same tables and columns; each model registered there with the same
dimension and distance, or registrable). Then one transaction:

1. the models the target lacks are registered (state ``registered``: ``memctl models index`` and
   ``set-default`` put them to use), and every model id is mapped by name;
2. each file is copied (binary COPY) into a temporary staging table and moved into its table by
   ``INSERT ... SELECT``, tables in foreign-key order (:mod:`memctl.transfer.plan`). COPY straight
   into a table with row-level security is refused for roles that do not bypass it; INSERT goes
   through memctl_admin's policy;
3. the columns of foreign-key cycles, loaded NULL, are set by UPDATE under
   ``memctl.keep_updated_at`` (revision 0016), so ``updated_at`` stays the source's;
4. every table's row count for the organisation is compared with the manifest's.

Any failure rolls the whole transaction back. ``dry_run`` does all of it and rolls back.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.data.registry import add_model, create_index, drop_index, get_model
from memctl.db.build_memory import DEFAULT_MEMORY_BUDGET, check_budget, size_build
from memctl.db.engine import register_codecs
from memctl.db.names import checked
from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError, PrivilegeMissing, SchemaNotReady
from memctl.migration.revisions import ensure_migrated, head_revision
from memctl.models import SCHEMA
from memctl.models.ddl import KEEP_UPDATED_AT
from memctl.models.embeddings import LIFECYCLE_REVISION, ModelSpec, hnsw_index_name, vector_problem
from memctl.progress import Progress, no_progress
from memctl.transfer.manifest import Export, ExportFile, check_against, read_export
from memctl.transfer.plan import LoadPlan, load_plan, stage_type, value
from memctl.transfer.tables import TenantTable, quote, tenant_tables

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # organizations' CHECK slug_format (memctl.models.tenancy)


@dataclass
class ImportedFile:
    """One file loaded: its table, model (or None) and rows."""

    file: str
    table: str
    model: str | None
    rows: int


@dataclass
class ImportResult:
    """What ``memctl import`` did: the organisation (slug, id) created from the export's ``source``
    slug, the files loaded, models registered, whether it was a dry run (rolled back), wall time (s)."""

    organization: str
    org_id: str
    source: str
    revision: str
    dry_run: bool
    files: list[ImportedFile] = field(default_factory=list)
    models_registered: list[str] = field(default_factory=list)
    deferred: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0
    elapsed_s: float = 0.0
    rows_per_s: float = 0.0


async def import_org(engine: AsyncEngine, directory: Path, *, as_org: str | None = None, dry_run: bool = False,
                     batch_rows: int = 10_000, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                     progress: Progress = no_progress) -> ImportResult:
    """Load the export in ``directory`` (made by :func:`memctl.transfer.export.export_org`) as its
    organisation, or as a new organisation ``as_org`` (new slug, every id remapped: the source's rows,
    in the same database, untouched).

    Raises ConfigError (a damaged or incomplete export, another revision, a model registered with
    another dimension or distance, the organisation or ``as_org`` slug present already),
    SchemaNotReady (the target below head), PrivilegeMissing (the role does not see every row).
    Nothing is written when it raises.
    """
    if batch_rows < 1:
        raise ConfigError("--batch-rows must be at least 1")
    check_budget(memory_budget)
    started = time.perf_counter()
    export = read_export(directory)
    revision = await ensure_migrated(engine, LIFECYCLE_REVISION)
    if revision != head_revision():
        raise SchemaNotReady(f"the database is at revision {revision}, head is {head_revision()}: run memctl "
                             "migrate before importing")
    if as_org is not None and not SLUG.fullmatch(as_org):
        raise ConfigError(f"--as-org {as_org[:70]!r} is not a slug: 1 to 63 lower-case letters, digits, '-' or '_', "
                          "starting with a letter or digit (organizations' CHECK slug_format)")
    await require_all_rows(engine, "import")
    async with engine.connect() as sa:
        temp = (await sa.execute(text("SELECT has_database_privilege(current_database(), 'TEMP'), current_user, "
                                      "current_database()"))).one()
        if not temp[0]:
            raise PrivilegeMissing(f'import stages rows in temporary tables, which role {temp[1]} may not create: an '
                                   f'administrator runs GRANT TEMP ON DATABASE "{temp[2]}" TO "{temp[1]}"')
        await sa.rollback()
    async with engine.connect() as sa:
        raw: asyncpg.Connection = (await sa.get_raw_connection()).driver_connection
        await register_codecs(raw)
        await sa.commit()
        result = await _import(sa, raw, export, revision, as_org, batch_rows, memory_budget, progress)
        result.dry_run = dry_run
        if dry_run:
            await sa.rollback()
        else:
            await sa.commit()
    result.elapsed_s = round(time.perf_counter() - started, 3)
    result.rows_per_s = round(result.rows / result.elapsed_s, 1) if result.elapsed_s else 0.0
    return result


async def _import(sa: AsyncConnection, raw: asyncpg.Connection, export: Export, revision: str,
                  as_org: str | None, batch_rows: int, memory_budget: int, progress: Progress) -> ImportResult:
    await sa.execute(text("SELECT set_config(:k, 'on', true)"), {"k": KEEP_UPDATED_AT})  # begins the transaction
    tables = await tenant_tables(raw)
    check_against(export, revision, tables)
    plan = await load_plan(raw, tables)
    source = export.organization
    slug = checked("organisation slug", as_org) if as_org is not None else source["slug"]
    org_id = str(uuid.uuid4()) if as_org is not None else str(uuid.UUID(source["id"]))
    clash = await raw.fetchval(f"SELECT slug FROM {SCHEMA}.organizations WHERE slug = $1 OR id = $2::uuid",
                               slug, org_id)
    if clash is not None:
        raise ConfigError(f"organisation {clash!r} exists in this database: an import never merges into or "
                          "duplicates an organisation (import --as-org NEW_SLUG for a second copy)")
    result = ImportResult(slug, org_id, source["slug"], revision, False, deferred=plan.deferred)
    models, specs = await _models(sa, export, result)
    salt = org_id if as_org is not None else None
    staged: list[tuple[TenantTable, str]] = []
    for table in plan.tables:
        files = [x for x in export.files if x.table == table.name]
        rebuild = await _drop_indexes_of_empty(sa, raw, table, files, specs)
        for i, f in enumerate(files):
            stage = f"memctl_stage_{table.name}_{i}"
            rows = await _stage(raw, stage, table, f, batch_rows, progress, specs.get(f.model))
            await _check_stage(raw, stage, table, f, plan, source["id"], export)
            organization = table.name == "organizations"  # its slug is the new one (--as-org) or the export's
            exprs = []
            for c in table.columns:
                if organization and c.name == "slug":
                    exprs.append("$1::text")
                elif c.name in plan.deferred.get(table.name, ()):
                    exprs.append("NULL")
                else:
                    exprs.append(value(table, c, plan, "s", org=org_id, salt=salt, models=models))
            names = ", ".join(quote(c.name) for c in table.columns)
            await raw.execute(f"INSERT INTO {SCHEMA}.{quote(table.name)} ({names}) SELECT {', '.join(exprs)} "
                              f"FROM {quote(stage)} s", *([slug] if organization else []))
            staged.append((table, stage))
            result.files.append(ImportedFile(f.name, table.name, f.model, rows))
            result.rows += rows
        for spec, rows in rebuild:
            progress(f"index {table.name}", 0, 1)
            await size_build(raw, rows, spec, memory_budget, local=True)
            await create_index(sa, table.name, spec)
            progress(f"index {table.name}", 1, 1)
    for table, stage in staged:  # every row is in: the columns of the cycles can point anywhere now
        await _set_deferred(raw, plan, table, stage, org_id, salt, models)
    await _check_counts(raw, plan, export, result, org_id, models)
    return result


async def _drop_indexes_of_empty(sa: AsyncConnection, raw: asyncpg.Connection, table: TenantTable,
                                 files: list[ExportFile], specs: dict[str, ModelSpec]) -> list[tuple[ModelSpec, int]]:
    """Into an empty embedding table (a fresh database), the vectors load faster without their HNSW
    index, built once afterwards (as seed does: row by row into a growing graph, 200,000 vectors took
    over 15 minutes). Only when the table is empty: DROP INDEX locks the whole table until commit, and
    in a live database readers of every model would wait. (model, rows) to rebuild."""
    if not table.embeddings or await raw.fetchval(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.{quote(table.name)})"):
        return []
    rebuild = []
    for f in files:
        spec = specs[f.model]
        index = f"{SCHEMA}.{hnsw_index_name(table.name, spec.id)}"
        if f.rows and await raw.fetchval("SELECT to_regclass($1) IS NOT NULL", index):
            await drop_index(sa, table.name, spec)
            rebuild.append((spec, f.rows))
    return rebuild


async def _models(sa: AsyncConnection, export: Export,
                  result: ImportResult) -> tuple[dict[int, int], dict[str, ModelSpec]]:
    """(source model id -> target model id, name -> target model), by name; the models the target
    lacks are registered."""
    mapping, specs = {}, {}
    for m in export.models:
        row = (await sa.execute(text(f"SELECT id, dim, distance FROM {SCHEMA}.embedding_models WHERE name = :n"),
                                {"n": m["name"]})).mappings().first()
        if row is None:
            spec = await add_model(sa, m["name"], int(m["dim"]), distance=m["distance"], storage=m["index_storage"],
                                   m=int(m["hnsw_m"]), ef_construction=int(m["hnsw_ef_construction"]))
            result.models_registered.append(spec.name)
            mapping[int(m["id"])] = spec.id
        elif (row["dim"], row["distance"]) != (int(m["dim"]), m["distance"]):
            raise ConfigError(f"model {m['name']!r} is registered here with dim {row['dim']} and distance "
                              f"{row['distance']}, the export's vectors have dim {m['dim']} and distance "
                              f"{m['distance']}")
        else:
            mapping[int(m["id"])] = row["id"]
        specs[m["name"]] = await get_model(sa, m["name"])
    return mapping, specs


async def _stage(raw: asyncpg.Connection, stage: str, table: TenantTable, f: ExportFile, batch_rows: int,
                 progress: Progress, model: ModelSpec | None) -> int:
    """Copy file ``f`` into a new temporary table ``stage``; its row count. Raises ConfigError when the
    file's columns or types are not the table's, or a vector is one the model's index cannot hold."""
    await raw.execute(f"CREATE TEMPORARY TABLE {quote(stage)} ("
                      + ", ".join(f"{quote(c.name)} {stage_type(c)}" for c in table.columns) + ") ON COMMIT DROP")
    dim = model.dim if model is not None else None
    names = [c.name for c in table.columns]
    rows = 0
    try:
        parquet = pq.ParquetFile(f.path)
        found = parquet.schema_arrow
        for c in table.columns:
            if c.name not in found.names or found.field(c.name).type != c.arrow_type(dim):
                got = found.field(c.name).type if c.name in found.names else "missing"
                raise ConfigError(f"{f.name}: column {c.name} is {got}, table {table.name} needs {c.arrow_type(dim)}")
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=names):
            columns = []
            for c in table.columns:
                if c.type != "vector":
                    columns.append(batch.column(c.name).to_pylist())
                    continue
                matrix = _matrix(batch.column(c.name), f)  # (rows, dim) float32: the schema check saw dim
                if (problem := vector_problem(model, matrix)) is not None:
                    raise ConfigError(f"{f.name}: row {rows + problem[0][0]}'s vector {problem[1]}: nothing imported")
                columns.append(list(matrix))
            records = list(zip(*columns, strict=True))
            await raw.copy_records_to_table(stage, records=records, columns=names)
            rows += len(records)
            progress(f.name, rows, f.rows)
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ConfigError(f"{f.name} cannot be read as this table's rows ({type(exc).__name__}: {exc})") from None
    if rows != f.rows:
        raise ConfigError(f"{f.name} holds {rows} rows, its manifest entry says {f.rows}")
    return rows


async def _check_stage(raw: asyncpg.Connection, stage: str, table: TenantTable, f: ExportFile, plan: LoadPlan,
                       org_id: str, export: Export) -> None:
    """Refuse (ConfigError) rows of another organisation, and model ids the manifest does not name
    (for an embedding file: any other than its own model's)."""
    other = await raw.fetchval(f"SELECT count(*) FROM {quote(stage)} WHERE {quote(table.key)}::uuid IS DISTINCT FROM "
                               f"$1::uuid", org_id)
    if other:
        raise ConfigError(f"{f.name}: {other} rows belong to another organisation than the manifest's {org_id}")
    allowed = [int(m["id"]) for m in export.models if f.model is None or m["name"] == f.model]
    for column in sorted(plan.model_columns.get(table.name, ())):
        bad = await raw.fetchval(f"SELECT min({quote(column)}) FROM {quote(stage)} WHERE {quote(column)} IS NOT NULL "
                                 f"AND NOT ({quote(column)} = ANY($1::int[]))", allowed)
        if bad is not None:
            raise ConfigError(f"{f.name}: {column} {bad} is not the id the manifest gives "
                              + (f"model {f.model!r}" if f.model else "any of its models"))


def _matrix(column: pa.Array, f: ExportFile) -> np.ndarray:
    """A fixed-size-list column as an (n, dim) float32 matrix; ConfigError for a NULL vector."""
    if column.null_count:
        raise ConfigError(f"{f.name}: {column.null_count} vectors are NULL")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(column), column.type.list_size)


async def _set_deferred(raw: asyncpg.Connection, plan: LoadPlan, table: TenantTable, stage: str, org_id: str,
                        salt: str | None, models: dict[int, int]) -> None:
    """Set the columns of ``table`` that were loaded NULL (foreign-key cycles), matching rows by key."""
    columns = plan.deferred.get(table.name)
    if not columns:
        return
    pk = plan.primary_keys.get(table.name)
    if not pk:
        raise ConfigError(f"table {table.name} has columns to set after loading but no primary key to find rows by")
    by_name = {c.name: c for c in table.columns}
    sets = ", ".join(f"{quote(n)} = {value(table, by_name[n], plan, 's', org=org_id, salt=salt, models=models)}"
                     for n in columns)
    match = " AND ".join(f"t.{quote(k)} = {value(table, by_name[k], plan, 's', org=org_id, salt=salt, models=models)}"
                         for k in pk)
    some = " OR ".join(f"s.{quote(n)} IS NOT NULL" for n in columns)
    await raw.execute(f"UPDATE {SCHEMA}.{quote(table.name)} t SET {sets} FROM {quote(stage)} s "
                      f"WHERE {match} AND ({some})")


async def _check_counts(raw: asyncpg.Connection, plan: LoadPlan, export: Export, result: ImportResult, org_id: str,
                        models: dict[int, int]) -> None:
    """Every file's rows are in its table under the organisation (else the transaction is rolled back)."""
    ids = {m["name"]: models[int(m["id"])] for m in export.models}
    for f in result.files:
        table = next(t for t in plan.tables if t.name == f.table)
        where = f"{quote(table.key)} = $1::uuid" + (" AND model_id = $2" if f.model is not None else "")
        args = [org_id] + ([ids[f.model]] if f.model is not None else [])
        found = await raw.fetchval(f"SELECT count(*) FROM {SCHEMA}.{quote(table.name)} WHERE {where}", *args)
        if found != f.rows:
            raise ConfigError(f"{f.table} holds {found} rows of the organisation after loading {f.name}'s {f.rows}: "
                              "nothing was imported")
