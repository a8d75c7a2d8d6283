"""``seed``: load a dataset into the schema (datasets -> COPY -> indexes -> ANALYZE).

Creates organisations, their agents, users, projects and sessions, spreads the dataset's texts
over them with a realistic mix of tiers and categories, and bulk-loads memories and embeddings
with binary COPY (asyncpg ``copy_records_to_table`` with pgvector's codec) into a staging table,
then ``INSERT ... ON CONFLICT DO NOTHING`` on the dedup index, so a second run adds nothing.
Everything happens in one transaction: on any error nothing is written. Rows stream batch by batch
(a :class:`~memctl.data.datasets.SyntheticRows` is generated the same way): the process's memory
does not grow with the row count (issue 15).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from dataclasses import dataclass

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.data import registry
from memctl.data.datasets import Dataset, SyntheticRows
from memctl.db.build_memory import DEFAULT_MEMORY_BUDGET, BuildMemory, check_budget, size_build
from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError, DatasetError, ModelUnavailable, NotFound
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA, ModelSpec
from memctl.models.embeddings import LIFECYCLE_REVISION, content_hash, vector_problem
from memctl.models.enums import Category, MemorySource, ModelState, Origin, Tier
from memctl.progress import Progress, no_progress

# Shares of organisations with --skew: about 50 %, 10 % and 1 % of the rows among them, so
# bench-hnsw --filters can measure tenants of each selectivity (1, 10, 50 %). Extra orgs share the rest.
SKEW_SHARES = (0.50, 0.25, 0.14, 0.10, 0.01)
TIER_MIX = {Tier.TASK: 0.5, Tier.PROJECT: 0.3, Tier.PERSONAL: 0.2}
CATEGORY_MIX = {Category.FACTUAL: 0.35, Category.EPISODIC: 0.25, Category.PROCEDURAL: 0.15,
                Category.PREFERENCE: 0.15, Category.BEHAVIORAL: 0.10}
USERS_PER_ORG = 3
SESSIONS_PER_AGENT = 2
STAGE_COLUMNS = ["org_id", "id", "agent_id", "user_id", "session_id", "project_id", "tier", "category",
                 "source", "origin", "content", "embedding"]


@dataclass(frozen=True)
class SeedResult:
    """What a seed run did. Seconds are wall time; ``rows_per_second`` counts dataset rows loaded."""

    source: str
    model: str
    model_id: int
    model_registered: bool
    organizations: int
    agents: int
    rows: int
    memories_inserted: int
    duplicates_skipped: int
    load_s: float
    index_s: float
    total_s: float
    rows_per_second: float
    load_rows_per_second: float = 0.0
    index_rows_per_second: float = 0.0
    index_memory: BuildMemory | None = None


@dataclass(frozen=True)
class _Tenant:
    org_id: uuid.UUID
    agents: list[uuid.UUID]
    users: list[uuid.UUID]
    sessions: dict[uuid.UUID, list[uuid.UUID]]
    project: uuid.UUID


def _org_weights(orgs: int, skew: bool) -> np.ndarray:
    if not skew:
        return np.full(orgs, 1.0 / orgs)
    shares = list(SKEW_SHARES[:orgs])
    if orgs > len(SKEW_SHARES):
        shares += [0.01] * (orgs - len(SKEW_SHARES))
    w = np.array(shares)
    return w / w.sum()


async def _ensure_tenants(conn: AsyncConnection, orgs: int, agents: int) -> list[_Tenant]:
    tenants = []
    for o in range(1, orgs + 1):
        slug = f"seed-org-{o:02d}"
        org_id = (await conn.execute(text(
            f"INSERT INTO {SCHEMA}.organizations (slug, name) VALUES (:slug, :name) "
            f"ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id"),
            {"slug": slug, "name": f"Seed organisation {o}"})).scalar_one()
        p = {"org": org_id}

        async def upsert(sql: str, params: dict, p: dict = p) -> uuid.UUID:
            return (await conn.execute(text(sql), {**p, **params})).scalar_one()

        agent_ids = [await upsert(
            f"INSERT INTO {SCHEMA}.agents (org_id, name) VALUES (:org, :name) "
            f"ON CONFLICT (org_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            {"name": f"agent-{a}"}) for a in range(1, agents + 1)]
        user_ids = [await upsert(
            f"INSERT INTO {SCHEMA}.users (org_id, external_id, display_name, email) "
            f"VALUES (:org, :ext, :name, :email) "
            f"ON CONFLICT (org_id, external_id) DO UPDATE SET external_id = EXCLUDED.external_id RETURNING id",
            {"ext": f"user-{u}", "name": f"User {u}", "email": f"user{u}@{slug}.example"})
            for u in range(1, USERS_PER_ORG + 1)]
        project = await upsert(
            f"INSERT INTO {SCHEMA}.projects (org_id, name) VALUES (:org, 'seed-project') "
            f"ON CONFLICT (org_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id", {})
        sessions: dict[uuid.UUID, list[uuid.UUID]] = {}
        for i, agent_id in enumerate(agent_ids):
            ids = list((await conn.execute(text(
                f"SELECT id FROM {SCHEMA}.sessions WHERE org_id = :org AND agent_id = :agent"),
                {**p, "agent": agent_id})).scalars())
            for s in range(len(ids), SESSIONS_PER_AGENT):
                ids.append(await upsert(
                    f"INSERT INTO {SCHEMA}.sessions (org_id, agent_id, user_id) VALUES (:org, :agent, :user) "
                    f"RETURNING id", {"agent": agent_id, "user": user_ids[(i + s) % len(user_ids)]}))
            sessions[agent_id] = sorted(ids)  # UUID order = PostgreSQL's uuid order
        tenants.append(_Tenant(org_id, agent_ids, user_ids, sessions, project))
    return tenants


def _row_uniforms(texts: list[str], salt: int) -> np.ndarray:
    """(n, 6) uniforms in [0, 1) derived from each text's BLAKE2b hash: a text always lands on the
    same organisation, agent, tier ... whatever else is in the dataset, so re-runs deduplicate."""
    key = salt.to_bytes(8, "little")
    raw = b"".join(hashlib.blake2b(t.encode(), digest_size=24, key=key).digest() for t in texts)
    words = np.frombuffer(raw, dtype="<u4").reshape(len(texts), 6)
    return words.astype(np.float64) / 2.0**32


def _pick(u: np.ndarray, weights) -> np.ndarray:
    """Index into ``weights`` for each uniform in ``u`` (inverse CDF)."""
    cdf = np.cumsum(np.asarray(list(weights), dtype=np.float64))
    return np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(cdf) - 1)


def _assign(ds: Dataset, tenants: list[_Tenant], skew: bool, salt: int) -> list[tuple]:
    """One staging record per row (see :func:`_row_uniforms` for why it is hash-based)."""
    u = _row_uniforms(ds.texts, salt)
    org_idx = _pick(u[:, 0], _org_weights(len(tenants), skew))
    tiers, cats = list(TIER_MIX), list(CATEGORY_MIX)
    tier_idx = _pick(u[:, 1], TIER_MIX.values())
    cat_idx = _pick(u[:, 2], CATEGORY_MIX.values())
    pick = (u[:, 3:] * (1 << 30)).astype(np.int64)
    sources, origins = list(MemorySource), list(Origin)
    records = []
    for i in range(len(ds)):
        t = tenants[org_idx[i]]
        agent = t.agents[pick[i, 0] % len(t.agents)]
        tier = tiers[tier_idx[i]]
        user = t.users[pick[i, 1] % len(t.users)] if tier == Tier.PERSONAL else None
        sessions = t.sessions[agent]
        session = sessions[pick[i, 2] % len(sessions)] if pick[i, 2] % 2 == 0 else None
        project = t.project if tier == Tier.PROJECT else None
        records.append((t.org_id, uuid.uuid4(), agent, user, session, project, str(tier), str(cats[cat_idx[i]]),
                        str(sources[pick[i, 0] % len(sources)]), str(origins[pick[i, 1] % len(origins)]),
                        ds.texts[i], ds.embeddings[i]))
    return records


async def _resolve_model(conn: AsyncConnection, ds: Dataset | SyntheticRows,
                         name: str | None) -> tuple[Dataset | SyntheticRows, ModelSpec, bool]:
    """The rows in their model's space, the model, and whether it was registered now. ``name``
    (``--model``) must be registered already; synthetic rows take its dimension."""
    if name is not None:
        model, registered = await registry.get_model(conn, name), False  # NotFound: register it first
        if isinstance(ds, SyntheticRows):
            ds = dataclasses.replace(ds, dim=model.dim, model=model.name)
        elif ds.model != model.name:
            raise DatasetError(f"{ds.source} holds embeddings of {ds.model!r}, not of {name!r}: nothing written")
    else:
        try:
            model, registered = await registry.get_model(conn, ds.model), False
        except NotFound:
            model, registered = await registry.register_model(conn, ds.model, ds.dim), True
    if model.state == ModelState.RETIRING:
        raise ModelUnavailable(f"model {model.name!r} is retiring (memctl models retire): nothing written")
    if model.dim != ds.dim:
        raise DatasetError(f"model {model.name!r} is registered with dimension {model.dim}, "
                           f"the dataset's embeddings have {ds.dim}: nothing written")
    return ds, model, registered


def _check_vectors(model: ModelSpec, batch: Dataset, offset: int) -> None:
    if (problem := vector_problem(model, batch.embeddings)) is not None:
        rows, why = problem
        raise DatasetError(f"{batch.source}: embedding {offset + rows[0]} (and {len(rows) - 1} more in its batch) "
                           f"{why} (model {model.name!r}): nothing written")


_INSERT = f"""
WITH ins AS (
    INSERT INTO {SCHEMA}.memories (org_id, id, agent_id, user_id, session_id, project_id, tier, category,
                                   source, origin, content)
    SELECT org_id, id, agent_id, user_id, session_id, project_id, tier, category, source, origin, content
      FROM seed_stage
    ON CONFLICT (org_id, agent_id, content_hash) WHERE status = 'active' AND deleted_at IS NULL DO NOTHING
    RETURNING org_id, id, content_hash
)
INSERT INTO {SCHEMA}.memory_embeddings (org_id, memory_id, model_id, dim, embedding, content_hash, searchable)
SELECT s.org_id, s.id, $1, $2, s.embedding, ins.content_hash, true FROM seed_stage s JOIN ins USING (org_id, id)
"""


MEMORY_COLUMNS = STAGE_COLUMNS[:-1]
EMBEDDING_COLUMNS = ["org_id", "memory_id", "model_id", "dim", "embedding", "content_hash", "searchable"]


async def _copy_direct(raw, records: list[tuple], model: ModelSpec) -> bool:
    """COPY a batch straight into memories and memory_embeddings, inside a savepoint; False (nothing
    kept) when a row conflicts with one already there (the dedup index), so the caller takes the
    staging path, which skips duplicates. Only into tables that were empty when the run began (there
    the only conflicts are duplicates within the dataset) and for a role row-level security does not
    apply to. About 1.5x faster than staging (issue 15:
    seed against a raw COPY into the schema, ``benchmarks/seed_speed.py``)."""
    embeddings = [(r[0], r[1], model.id, model.dim, r[-1], content_hash(r[10]), True) for r in records]
    try:
        async with raw.transaction():
            await raw.copy_records_to_table("memories", schema_name=SCHEMA, records=[r[:-1] for r in records],
                                            columns=MEMORY_COLUMNS)
            await raw.copy_records_to_table("memory_embeddings", schema_name=SCHEMA, records=embeddings,
                                            columns=EMBEDDING_COLUMNS)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def seed(engine: AsyncEngine, ds: Dataset | SyntheticRows, *, orgs: int = 3, agents: int = 2,
               skew: bool = False, batch_size: int = 5000, seed_value: int = 0, model: str | None = None,
               memory_budget: int = DEFAULT_MEMORY_BUDGET, parallel_workers: int | None = None,
               progress: Progress = no_progress) -> SeedResult:
    """Load ``ds`` (a dataset, or generated rows streamed batch by batch) and return counts and rates.

    ``orgs`` organisations (``seed-org-NN``) with ``agents`` agents each; ``skew`` spreads rows
    about 50/25/14/10/1 % over the first five organisations; ``model`` a registered model's name
    (synthetic rows take its dimension; default: the dataset's own model, registered if new). The
    model's HNSW index on memory_embeddings is dropped and rebuilt after the load only when the table
    was empty (faster than incremental inserts, and no reader can be kept waiting for rows that do not
    exist), with ``maintenance_work_mem`` sized to the graph within ``memory_budget`` bytes and
    ``parallel_workers`` (:mod:`memctl.db.build_memory`); into a live database rows go through the
    index and no lock that blocks a reader is taken. Raises :class:`DatasetError` (nothing written)
    when the rows' dimension does not match the model or a vector is one its index cannot hold,
    NotFound for an unregistered ``model``, ConfigError for bad sizes.
    """
    if orgs < 1 or agents < 1 or batch_size < 1:
        raise ConfigError("--orgs, --agents and --batch-size must be at least 1")
    check_budget(memory_budget, parallel_workers)
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "seed")
    t0 = time.perf_counter()
    sized = None
    async with engine.connect() as conn:
        async with conn.begin():
            ds, spec, registered = await _resolve_model(conn, ds, model)
            tenants = await _ensure_tenants(conn, orgs, agents)
            # Drop and rebuild the model's index (faster than inserting into it) only when memory_embeddings
            # is empty: DROP INDEX takes ACCESS EXCLUSIVE on the table until commit, which would block
            # every search of a live database for the whole load (issue 12). Otherwise rows go into the
            # live index: the load holds ROW EXCLUSIVE, which blocks no reader.
            rebuild = (await conn.execute(text(
                f"SELECT NOT EXISTS (SELECT 1 FROM {SCHEMA}.memory_embeddings)"))).scalar()
            if rebuild:
                await registry.drop_index(conn, "memory_embeddings", spec)
            raw = (await conn.get_raw_connection()).driver_connection
            await register_vector(raw)
            await raw.execute(
                "CREATE TEMP TABLE seed_stage (org_id uuid, id uuid, agent_id uuid, user_id uuid, "
                "session_id uuid, project_id uuid, tier text, category text, source text, origin text, "
                "content text, embedding vector) ON COMMIT DROP")
            inserted = done = 0
            # COPY into a table with row-level security is refused to roles it applies to (PostgreSQL docs,
            # COPY): straight in only for a superuser or BYPASSRLS role; memctl_admin members stage.
            direct = rebuild and await raw.fetchval(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            for batch in ds.batches(batch_size):
                _check_vectors(spec, batch, done)
                records = _assign(batch, tenants, skew, seed_value)
                if direct and await _copy_direct(raw, records, spec):
                    inserted += len(records)
                else:
                    await raw.copy_records_to_table("seed_stage", records=records, columns=STAGE_COLUMNS)
                    status = await raw.execute(_INSERT, spec.id, spec.dim)
                    inserted += int(status.split()[-1])
                    await raw.execute("TRUNCATE seed_stage")
                done += len(records)
                progress("load", done, len(ds))
            load_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            if rebuild:
                progress("index", 0, 1)
                sized = await size_build(raw, inserted, spec, memory_budget, parallel_workers, local=True)
                await registry.create_index(conn, "memory_embeddings", spec)
                progress("index", 1, 1)
            index_s = time.perf_counter() - t1
        await conn.exec_driver_sql(f"ANALYZE {SCHEMA}.memories")
        await conn.exec_driver_sql(f"ANALYZE {SCHEMA}.memory_embeddings")
        await conn.commit()
    total = time.perf_counter() - t0
    return SeedResult(
        source=ds.source, model=spec.name, model_id=spec.id, model_registered=registered,
        organizations=orgs, agents=orgs * agents, rows=done, memories_inserted=inserted,
        duplicates_skipped=done - inserted, load_s=round(load_s, 3),
        index_s=round(index_s, 3), total_s=round(total, 3),
        rows_per_second=round(done / total, 1) if total > 0 else 0.0,
        load_rows_per_second=round(done / load_s, 1) if load_s > 0 else 0.0,
        index_rows_per_second=round(inserted / index_s, 1) if rebuild and index_s > 0 else 0.0,
        index_memory=sized,
    )
