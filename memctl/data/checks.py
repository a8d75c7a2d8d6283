"""``check-constraints``: constraints not validated, invalid indexes, and data that breaks rules the
schema cannot enforce (schema.md: ``source_memory_ids`` and ``raw_memory_refs`` carry no FK, S1/S2;
``is_consolidated`` vs ``consolidated_into_id``, S2; expiry, S3; merge/supersede chains, S3;
zero vectors have no cosine distance, pgvector; every memory embedded in the default model).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db.indexes import INVALID_INDEXES
from memctl.db.privileges import require_all_rows
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA
from memctl.models.ddl import UUID_RE
from memctl.models.embeddings import LIFECYCLE_REVISION
from memctl.progress import Progress, no_progress

SAMPLE = 5  # offending keys listed per violation


@dataclass(frozen=True)
class Violation:
    """A rule broken ``count`` times in ``table``; ``sample`` holds up to 5 offending keys."""

    rule: str
    table: str
    count: int
    sample: list[str]
    detail: str


@dataclass(frozen=True)
class Rule:
    """One integrity rule: a query returning one text key per offending row."""

    name: str
    table: str
    detail: str
    sql: str


def _chain_cycle(col: str) -> str:
    return f"""
WITH RECURSIVE walk(org_id, start, next) AS (
    SELECT org_id, id, {col} FROM {SCHEMA}.memories WHERE {col} IS NOT NULL
  UNION ALL
    SELECT w.org_id, w.start, m.{col}
      FROM walk w JOIN {SCHEMA}.memories m ON m.org_id = w.org_id AND m.id = w.next
     WHERE m.{col} IS NOT NULL
) CYCLE next SET looped USING path
SELECT DISTINCT org_id::text || '/' || start::text FROM walk WHERE next = start AND NOT looped"""


RULES: tuple[Rule, ...] = (
    Rule("constraint_not_valid", "pg_constraint", "constraint created NOT VALID and never validated", f"""
SELECT c.relname || '.' || k.conname FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = '{SCHEMA}' AND NOT k.convalidated"""),
    Rule("index_invalid", "pg_index", "index left INVALID by a failed concurrent build (memctl migrate or "
         "maintain reindex repairs it)", INVALID_INDEXES),
    Rule("dangling_source_memory_ids", "consolidated_memories",
         "source_memory_ids names a memory that does not exist in the same organisation", f"""
SELECT cm.org_id::text || '/' || cm.id::text || ' -> ' || s.sid::text
  FROM {SCHEMA}.consolidated_memories cm CROSS JOIN LATERAL unnest(cm.source_memory_ids) AS s(sid)
 WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.memories m WHERE m.org_id = cm.org_id AND m.id = s.sid)"""),
    Rule("dangling_raw_memory_refs", "stage_memories",
         "raw_memory_refs holds something that is not the id of a memory of the same organisation", f"""
SELECT sm.org_id::text || '/' || sm.id::text || ' -> ' || r.ref
  FROM {SCHEMA}.stage_memories sm CROSS JOIN LATERAL jsonb_array_elements_text(sm.raw_memory_refs) AS r(ref)
 WHERE CASE WHEN r.ref ~ '{UUID_RE}'
            THEN NOT EXISTS (SELECT 1 FROM {SCHEMA}.memories m
                              WHERE m.org_id = sm.org_id AND m.id = r.ref::uuid)
            ELSE true END"""),
    Rule("searchable_mismatch", "memory_embeddings",
         "searchable disagrees with the memory being active and not deleted (revision 0012's triggers)", f"""
SELECT e.org_id::text || '/' || e.memory_id::text || '/' || e.model_id FROM {SCHEMA}.memory_embeddings e
  JOIN {SCHEMA}.memories m ON m.org_id = e.org_id AND m.id = e.memory_id
 WHERE e.searchable IS DISTINCT FROM (m.status = 'active' AND m.deleted_at IS NULL)"""),
    Rule("consolidation_flag_mismatch", "memories",
         "is_consolidated disagrees with consolidated_into_id IS NOT NULL", f"""
SELECT org_id::text || '/' || id::text FROM {SCHEMA}.memories
 WHERE is_consolidated <> (consolidated_into_id IS NOT NULL)"""),
    Rule("active_past_expiry", "memories", "status is active but expires_at has passed", f"""
SELECT org_id::text || '/' || id::text FROM {SCHEMA}.memories
 WHERE status = 'active' AND deleted_at IS NULL AND expires_at < now()"""),
    Rule("merged_into_cycle", "memories", "following merged_into leads back to the memory",
         _chain_cycle("merged_into")),
    Rule("superseded_by_cycle", "memories", "following superseded_by leads back to the memory",
         _chain_cycle("superseded_by")),
    *(Rule("zero_vector_cosine", table, "zero vector under a cosine model (cosine distance undefined)", f"""
SELECT e.org_id::text || '/' || e.{owner}::text || ' model ' || e.model_id
  FROM {SCHEMA}.{table} e JOIN {SCHEMA}.embedding_models m ON m.id = e.model_id
 WHERE m.distance = 'cosine' AND vector_norm(e.embedding) = 0""")
      for table, owner in (("memory_embeddings", "memory_id"),
                           ("consolidated_memory_embeddings", "consolidated_memory_id"))),
    *(Rule("missing_default_embedding", owners,
           f"{what} without an embedding in its organisation's model (its own, else the default)", f"""
SELECT m.org_id::text || '/' || m.id::text FROM {SCHEMA}.{owners} m
 WHERE {live}
   AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.{table} e
                    WHERE e.org_id = m.org_id AND e.{owner} = m.id
                      AND e.model_id = coalesce(
                          (SELECT o.model_id FROM {SCHEMA}.organization_models o WHERE o.org_id = m.org_id),
                          (SELECT id FROM {SCHEMA}.embedding_models WHERE is_default)))""")
      for owners, table, owner, live, what in (
          ("memories", "memory_embeddings", "memory_id", "m.deleted_at IS NULL", "live memory"),
          ("consolidated_memories", "consolidated_memory_embeddings", "consolidated_memory_id", "true",
           "consolidated memory"))),
    # revision 0013: the row's content_hash is the content it was computed from (NULL: unchanged since)
    *(Rule("stale_embedding", table, "embedding computed from a content that has changed since "
           "(memctl models backfill --stale recomputes it)", f"""
SELECT 'model ' || e.model_id || ' ' || e.org_id::text || '/' || e.{owner}::text
  FROM {SCHEMA}.{table} e JOIN {SCHEMA}.{owners} m ON m.org_id = e.org_id AND m.id = e.{owner}
 WHERE e.content_hash <> m.content_hash AND {live}""")
      for table, owner, owners, live in (
          ("memory_embeddings", "memory_id", "memories", "m.deleted_at IS NULL"),  # a deleted one is purged
          ("consolidated_memory_embeddings", "consolidated_memory_id", "consolidated_memories", "true"))),
)


@dataclass
class CheckResult:
    """All rules run and what they found (``violations`` empty = clean)."""

    rules: list[str]
    violations: list[Violation]

    @property
    def clean(self) -> bool:
        """True when no rule found anything."""
        return not self.violations


async def check_constraints(engine: AsyncEngine, progress: Progress = no_progress) -> CheckResult:
    """Run every rule in :data:`RULES` (read-only, one REPEATABLE READ snapshot) and collect violations."""
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "check-constraints")
    violations = []
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            for i, rule in enumerate(RULES):
                keys = (await conn.execute(text(
                    f"SELECT count(*) OVER (), key FROM ({rule.sql}) AS v(key) ORDER BY key LIMIT {SAMPLE}"))).all()
                if keys:
                    violations.append(Violation(rule.name, f"{SCHEMA}.{rule.table}" if not rule.table.startswith("pg_")
                                                else rule.table, int(keys[0][0]), [k[1] for k in keys], rule.detail))
                progress("rules", i + 1, len(RULES))
    return CheckResult([r.name for r in RULES], violations)
