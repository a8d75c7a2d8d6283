"""``models list``: every registered model, its state, where it is the default, its indexes and coverage."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.data import registry
from memctl.db.privileges import require_all_rows
from memctl.lifecycle.catalog import LIFECYCLE_REVISION, coverage_sql, index_states
from memctl.lifecycle.types import ModelList, ModelStatus, OrgCoverage
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA, ModelSpec
from memctl.models.embeddings import MODEL_COLUMNS


async def list_models(engine: AsyncEngine, by_org: bool = False) -> ModelList:
    """Every registered model, by id: parameters, state, default (global, and the organisations that
    chose it), HNSW index state and size per embedding table, embedded rows, coverage of the active
    memories and consolidated memories (:func:`~memctl.lifecycle.catalog.coverage_sql`) and stale
    rows; with ``by_org``, coverage per organisation too (every organisation). One REPEATABLE READ
    snapshot, read-only. Raises PrivilegeMissing unless the role sees every row."""
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "models list")
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            models = (await conn.execute(text(
                f"SELECT {MODEL_COLUMNS}, is_default FROM {SCHEMA}.embedding_models ORDER BY id"))).mappings().all()
            slugs = dict((await conn.execute(text(f"SELECT id, slug FROM {SCHEMA}.organizations"))).all())
            chosen = dict((await conn.execute(text(
                f"SELECT org_id, model_id FROM {SCHEMA}.organization_models"))).all())
            default_id = next((m["id"] for m in models if m["is_default"]), None)
            out = []
            for row in models:
                spec = ModelSpec(**{k: v for k, v in row.items() if k != "is_default"})
                embedded = int((await conn.execute(text(
                    f"SELECT (SELECT count(*) FROM {SCHEMA}.memory_embeddings WHERE model_id = :m) + "
                    f"(SELECT count(*) FROM {SCHEMA}.consolidated_memory_embeddings WHERE model_id = :m)"),
                    {"m": spec.id})).scalar())
                counts = {r.org_id: r for r in (await conn.execute(text(coverage_sql()), {"model": spec.id}))}
                orgs = [OrgCoverage(slug, *((counts[o].active, counts[o].embedded, counts[o].stale) if o in counts
                                            else (0, 0, 0)), chosen.get(o, default_id) == spec.id)
                        for o, slug in slugs.items()]  # every organisation, those without memories too
                out.append(ModelStatus(
                    spec.id, spec.name, spec.dim, spec.distance, spec.index_storage, spec.hnsw_m,
                    spec.hnsw_ef_construction, spec.state, bool(row["is_default"]),
                    sorted(slugs.get(o, str(o)) for o, m in chosen.items() if m == spec.id),
                    await index_states(conn, spec), embedded, sum(o.active for o in orgs),
                    sum(o.embedded for o in orgs), sum(o.stale for o in orgs),
                    sorted(orgs, key=lambda o: o.org) if by_org else []))
    return ModelList(out)


async def add(engine: AsyncEngine, name: str, dim: int, *, distance: str = "cosine", storage: str = "vector",
              m: int = 16, ef_construction: int = 64) -> ModelSpec:
    """Register model ``name`` (state registered, no index): see :func:`memctl.data.registry.add_model`.
    Raises ConfigError (parameters, a name taken), PrivilegeMissing unless the role sees every row."""
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "models add")
    async with engine.begin() as conn:
        return await registry.add_model(conn, name, dim, distance=distance, storage=storage, m=m,
                                        ef_construction=ef_construction)
