"""What the model commands read before they act: organisations by slug, a model's indexes and its
coverage of active memories. Read-only; the statements bind every name (never formatted into SQL).
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.db.names import checked
from memctl.errors import NotFound
from memctl.lifecycle.types import IndexState
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.models.embeddings import EMBEDDING_TABLES, LIFECYCLE_REVISION  # noqa: F401 (re-exported)

ACTIVE = "m.status = 'active' AND m.deleted_at IS NULL"

# The organisations that follow the global default: no row in organization_models.
FOLLOWS_DEFAULT = f"NOT EXISTS (SELECT 1 FROM {SCHEMA}.organization_models o WHERE o.org_id = m.org_id)"


async def org_id_of(conn: AsyncConnection, slug: str) -> uuid.UUID:
    """The id of the organisation ``slug``; NotFound when there is none."""
    org = (await conn.execute(text(f"SELECT id FROM {SCHEMA}.organizations WHERE slug = :s"),
                              {"s": checked("organisation with slug", slug)})).scalar()
    if org is None:
        raise NotFound(f"no organisation with slug {slug!r}")
    return org


_INDEX_STATE = """
SELECT c.relname, x.indisvalid, pg_relation_size(c.oid) AS size,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid) AS building
  FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
 WHERE c.relnamespace = to_regnamespace(:schema) AND c.relname = ANY(:names)"""


async def index_states(conn: AsyncConnection, model: ModelSpec) -> list[IndexState]:
    """The state of ``model``'s HNSW index on each embedding table (valid, building, invalid, missing)."""
    names = [hnsw_index_name(t, model.id) for t in EMBEDDING_TABLES]
    rows = {r.relname: r for r in (await conn.execute(text(_INDEX_STATE), {"schema": SCHEMA, "names": names}))}
    states = []
    for table, name in zip(EMBEDDING_TABLES, names, strict=True):
        r = rows.get(name)
        status = ("missing" if r is None else "building" if r.building else "valid" if r.indisvalid else "invalid")
        states.append(IndexState(table, name, status, None if r is None else int(r.size)))
    return states


def coverage_sql(where: str = "true") -> str:
    """Per organisation: the owners of embeddings that need one (active memories and consolidated
    memories), those with a current embedding of model ``:model`` (computed from their content as it
    is), and those whose embedding is stale. ``where`` filters the owners, aliased ``m``."""
    current = "(e.content_hash IS NULL OR e.content_hash = m.content_hash)"
    return f"""
SELECT org_id, count(*) AS active, count(*) FILTER (WHERE embedded AND current) AS embedded,
       count(*) FILTER (WHERE embedded AND NOT current) AS stale
  FROM (SELECT m.org_id, e.model_id IS NOT NULL AS embedded, {current} AS current
          FROM {SCHEMA}.memories m
          LEFT JOIN {SCHEMA}.memory_embeddings e ON e.org_id = m.org_id AND e.memory_id = m.id AND e.model_id = :model
         WHERE {ACTIVE} AND ({where})
        UNION ALL
        SELECT m.org_id, e.model_id IS NOT NULL, {current}
          FROM {SCHEMA}.consolidated_memories m
          LEFT JOIN {SCHEMA}.consolidated_memory_embeddings e
            ON e.org_id = m.org_id AND e.consolidated_memory_id = m.id AND e.model_id = :model
         WHERE ({where})) AS owners
 GROUP BY org_id"""


async def coverage(conn: AsyncConnection, model: ModelSpec, org: uuid.UUID | None = None,
                   follows_default: bool = False) -> tuple[int, int]:
    """(owners, those with a current embedding of ``model``) of one organisation, of the
    organisations that follow the global default (``follows_default``), or of all; owners are the
    active memories and the consolidated memories (:func:`coverage_sql`)."""
    where = "m.org_id = :org" if org is not None else FOLLOWS_DEFAULT if follows_default else "true"
    rows = (await conn.execute(text(coverage_sql(where)), {"model": model.id, "org": org})).all()
    return sum(r.active for r in rows), sum(r.embedded for r in rows)
