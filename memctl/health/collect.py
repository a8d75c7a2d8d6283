"""``memctl stats``: the health report read from the catalog's statistics and the schema, read only.

Sources: ``pg_stat_user_tables`` / ``pg_stat_user_indexes`` (PostgreSQL docs, "The Cumulative
Statistics System"), the memories and consolidation_jobs tables, ``memctl models list``'s coverage,
and ``public.memctl_maintain_runs`` (revision 0017). Thresholds crossed become findings (exit 1).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError
from memctl.health.types import IndexHealth, JobHealth, MemoryCounts, ModelHealth, StatsResult, TableHealth, Thresholds
from memctl.lifecycle.status import list_models
from memctl.maintenance.history import last_runs
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA
from memctl.models.embeddings import LIFECYCLE_REVISION
from memctl.models.enums import ModelState
from memctl.progress import Progress, no_progress

_MEMORIES = f"""
SELECT o.slug AS org, m.tier,
       count(*) FILTER (WHERE m.status = 'active' AND m.deleted_at IS NULL) AS active,
       count(*) FILTER (WHERE m.status = 'archived' AND m.deleted_at IS NULL) AS archived,
       count(*) FILTER (WHERE m.deleted_at IS NOT NULL) AS deleted
  FROM {SCHEMA}.memories m JOIN {SCHEMA}.organizations o ON o.id = m.org_id
 GROUP BY o.slug, m.tier ORDER BY o.slug, m.tier"""

_TABLES = """
SELECT relname AS table, n_live_tup AS live, n_dead_tup AS dead, pg_total_relation_size(relid) AS size,
       greatest(last_vacuum, last_autovacuum) AS last_vacuum, greatest(last_analyze, last_autoanalyze) AS last_analyze
  FROM pg_stat_user_tables WHERE schemaname = :schema ORDER BY relname"""

_INDEXES = """
SELECT s.indexrelname AS index, s.relname AS table, pg_relation_size(s.indexrelid) AS size, x.indisvalid AS valid,
       a.amname AS method
  FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
  JOIN pg_class c ON c.oid = s.indexrelid JOIN pg_am a ON a.oid = c.relam
 WHERE s.schemaname = :schema ORDER BY s.relname, s.indexrelname"""

_JOBS = f"""
SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       min(started_at) FILTER (WHERE status = 'running') AS oldest
  FROM {SCHEMA}.consolidation_jobs"""


def check_thresholds(t: Thresholds) -> None:
    """Raise ConfigError for a threshold no database can meet or cross sensibly."""
    if t.max_dead_share is not None and not 0 <= t.max_dead_share <= 1:
        raise ConfigError("--max-dead-share is a share between 0 and 1 (e.g. 0.2)")
    if t.min_coverage is not None and not 0 <= t.min_coverage <= 1:
        raise ConfigError("--min-coverage is a share between 0 and 1 (e.g. 1.0)")
    for name, value in (("--max-stale", t.max_stale), ("--max-failed-jobs", t.max_failed_jobs),
                        ("--max-maintain-age", t.max_maintain_age_s)):
        if value is not None and value < 0:
            raise ConfigError(f"{name} must not be negative")


async def collect_stats(engine: AsyncEngine, thresholds: Thresholds | None = None,
                        progress: Progress = no_progress) -> StatsResult:
    """The health report (:class:`StatsResult`), ``findings`` naming each threshold crossed.

    Raises ConfigError (bad thresholds), SchemaNotReady below revision 0013, PrivilegeMissing unless
    the role sees every row (counts through row-level security would be one tenant's)."""
    thresholds = thresholds or Thresholds()
    check_thresholds(thresholds)
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "stats")
    progress("stats", 0, 4)
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        taken = (await conn.execute(text("SELECT now()"))).scalar()
        shared = int((await conn.execute(text("SELECT pg_size_bytes(current_setting('shared_buffers'))"))).scalar())
        memories = [MemoryCounts(r.org, r.tier, r.active, r.archived, r.deleted)
                    for r in (await conn.execute(text(_MEMORIES))).all()]
        tables = [TableHealth(r.table, r.live, r.dead, round(r.dead / (r.live + r.dead), 4) if r.live + r.dead else 0.0,
                              r.size, r.last_vacuum, r.last_analyze)
                  for r in (await conn.execute(text(_TABLES), {"schema": SCHEMA})).all()]
        indexes = [IndexHealth(r.index, r.table, r.size, r.valid, r.method,
                               r.size <= shared if r.method == "hnsw" else None)
                   for r in (await conn.execute(text(_INDEXES), {"schema": SCHEMA})).all()]
        j = (await conn.execute(text(_JOBS))).one()
        jobs = JobHealth(j.pending, j.running, j.failed, j.oldest,
                         round((taken - j.oldest).total_seconds(), 1) if j.oldest else None)
    progress("stats", 2, 4)
    models = [ModelHealth(m.name, m.state, m.default, m.embedded_rows, m.coverage, m.stale_rows)
              for m in (await list_models(engine)).models]
    maintain = await last_runs(engine)
    progress("stats", 4, 4)
    result = StatsResult(taken, shared, memories, models, tables, indexes, jobs, maintain, thresholds)
    result.findings = _findings(result, thresholds, taken)
    return result


def _findings(r: StatsResult, t: Thresholds, now: dt.datetime) -> list[str]:
    out = []
    if t.max_dead_share is not None:
        out += [f"table {x.table}: dead share {x.dead_share:.1%} > {t.max_dead_share:.1%} (vacuum: memctl maintain "
                f"vacuum)" for x in r.tables if x.dead_share > t.max_dead_share]
    if t.max_stale is not None:
        out += [f"model {m.model}: {m.stale_rows} stale embeddings > {t.max_stale} (memctl models backfill --stale)"
                for m in r.models if m.stale_rows > t.max_stale]
    if t.min_coverage is not None:
        out += [f"model {m.model}: coverage {m.coverage:.1%} < {t.min_coverage:.1%}"
                for m in r.models if m.state == ModelState.READY and m.coverage < t.min_coverage]
    if t.max_failed_jobs is not None and r.jobs.failed > t.max_failed_jobs:
        out.append(f"{r.jobs.failed} failed consolidation jobs > {t.max_failed_jobs}")
    if t.max_maintain_age_s is not None:
        if not r.maintain:
            out.append("memctl maintain has never run on this database")
        for run in r.maintain:
            if run.last_ok_at is None:
                out.append(f"maintain task {run.task} has never succeeded (last: {run.outcome})")
            elif (age := (now - run.last_ok_at).total_seconds()) > t.max_maintain_age_s:
                out.append(f"maintain task {run.task} last succeeded {_ago(age)} ago > {_ago(t.max_maintain_age_s)}")
    return out


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


