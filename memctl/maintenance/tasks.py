"""The data tasks of ``memctl maintain``: retention, expire, purge, consolidation.

Each runs per organisation through :mod:`memctl.maintenance.batches`, so every statement carries
the organisation and its predicate and locks at most one batch of rows at a time.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.data.checks import UUID_RE
from memctl.maintenance.batches import Batch, run_batches
from memctl.maintenance.types import MaintainOptions, TaskResult
from memctl.models import SCHEMA
from memctl.models.enums import AgeBasis, RetentionAction, Tier
from memctl.models.governance import DEFAULT_TASK_RETENTION_DAYS

# schema.md "retention": without a row for a tier, task memories are deleted 30 days after their
# last access (S5); personal and project memories are never pruned.
DEFAULT_POLICIES = {Tier.TASK.value: (DEFAULT_TASK_RETENTION_DAYS, AgeBasis.ACCESSED_AT.value,
                                      RetentionAction.DELETE.value)}
MEMORY_CHILDREN = ("memory_embeddings", "memory_versions", "memory_tags", "memory_relationships",
                   "memory_collection_items")  # ON DELETE CASCADE from memories


def _add(result: TaskResult, stats, org_slug: str, what: str) -> None:
    result.rows += stats.rows
    result.batches += stats.batches
    result.max_batch_rows = max(result.max_batch_rows, stats.max_batch_rows)
    result.stopped_by_budget |= stats.stopped_by_budget
    if stats.rows:
        result.details.append(f"{org_slug}: {stats.rows} {what}")


async def _policies(engine: AsyncEngine, org_id: uuid.UUID) -> dict[str, tuple[int, str, str]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            f"SELECT tier, max_age_days, age_basis, action FROM {SCHEMA}.retention_policies WHERE org_id = :o"),
            {"o": org_id})).all()
    policies = dict(DEFAULT_POLICIES)
    policies.update({r.tier: (r.max_age_days, r.age_basis, r.action) for r in rows})
    return policies


def retention_batch(age_basis: str, action: str) -> Batch:
    """The batch for one (tier, policy). ``age_basis`` and ``action`` come from CHECK-constrained
    columns and are matched against the enums before they reach SQL. 'delete' is a soft delete
    (``deleted_at = now()``): purge removes the rows for good after the grace period."""
    basis = AgeBasis(age_basis).value
    predicate = (f"tier = :tier AND {basis} < now() - make_interval(days => :days) AND deleted_at IS NULL")
    if RetentionAction(action) is RetentionAction.ARCHIVE:
        return Batch("memories", predicate + " AND status = 'active'", "SET status = 'archived'")
    return Batch("memories", predicate, "SET deleted_at = now()")


async def retention(engine: AsyncEngine, orgs, opts: MaintainOptions, deadline: float | None) -> TaskResult:
    """Apply retention_policies per organisation and tier (built-in default: task memories 30 days
    after last access, S5); archive or soft-delete."""
    result = TaskResult("retention", tables=["memories"])
    for org_id, slug in orgs:
        for tier, (days, basis, action) in sorted((await _policies(engine, org_id)).items()):
            stats = await run_batches(engine, retention_batch(basis, action),
                                      {"org": org_id, "tier": tier, "days": int(days)},
                                      opts.batch_size, deadline, opts.dry_run)
            verb = "archived" if action == RetentionAction.ARCHIVE.value else "deleted (soft)"
            _add(result, stats, slug, f"{tier} memories {verb} ({basis} older than {days} days)")
    return result


EXPIRE = Batch("memories", "status = 'active' AND expires_at < now() AND deleted_at IS NULL",
               "SET status = 'archived'")
# S1 "preserve source memories": a memory that a consolidation (source_memory_ids) or a stage memory
# (raw_memory_refs) of its organisation cites is kept, soft-deleted, until nothing cites it. Both
# columns are arrays without a foreign key (schema.md), so purge is where the rule is kept; a
# consolidation needs at least one source (CHECK has_sources), so dropping ids from it is no option.
CITED = (f"EXISTS (SELECT 1 FROM {SCHEMA}.consolidated_memories cm WHERE cm.org_id = memories.org_id "
         f"AND cm.source_memory_ids @> ARRAY[memories.id]) OR EXISTS (SELECT 1 FROM {SCHEMA}.stage_memories sm "
         f"CROSS JOIN LATERAL jsonb_array_elements_text(sm.raw_memory_refs) AS r(ref) "
         f"WHERE sm.org_id = memories.org_id AND r.ref ~ '{UUID_RE}' AND r.ref::uuid = memories.id)")
PURGEABLE = "deleted_at < now() - make_interval(secs => :grace)"
PURGE = Batch("memories", f"{PURGEABLE} AND NOT ({CITED})", "DELETE")
KEPT = Batch("memories", f"{PURGEABLE} AND ({CITED})", "DELETE")  # only ever counted
STALE = Batch(
    "consolidation_jobs", "status = 'running' AND started_at < now() - make_interval(secs => :stale)",
    "SET status = CASE WHEN retry_count < max_retries THEN 'pending' ELSE 'failed' END, "
    "retry_count = CASE WHEN retry_count < max_retries THEN retry_count + 1 ELSE retry_count END, "
    "started_at = CASE WHEN retry_count < max_retries THEN NULL ELSE started_at END, "
    "completed_at = CASE WHEN retry_count < max_retries THEN NULL ELSE now() END, "
    "error_message = 'stale: running longer than ' || :stale || ' s (memctl maintain)'",
    returning="status")


async def expire(engine: AsyncEngine, orgs, opts: MaintainOptions, deadline: float | None) -> TaskResult:
    """Active memories past ``expires_at`` become archived."""
    result = TaskResult("expire", tables=["memories"])
    for org_id, slug in orgs:
        stats = await run_batches(engine, EXPIRE, {"org": org_id}, opts.batch_size, deadline, opts.dry_run)
        _add(result, stats, slug, "expired memories archived")
    return result


async def purge(engine: AsyncEngine, orgs, opts: MaintainOptions, deadline: float | None) -> TaskResult:
    """Memories soft-deleted longer than the grace period are deleted for good; their embeddings,
    versions, tags, edges and collection items go with them (ON DELETE CASCADE). A memory that a
    consolidation or a stage memory cites is kept (:data:`CITED`) and counted in the details."""
    result = TaskResult("purge", tables=["memories", *MEMORY_CHILDREN])
    for org_id, slug in orgs:
        params = {"org": org_id, "grace": float(opts.grace_s)}
        stats = await run_batches(engine, PURGE, params, opts.batch_size, deadline, opts.dry_run)
        _add(result, stats, slug, f"memories purged (soft-deleted over {opts.grace_s:g} s ago)")
        async with engine.connect() as conn:
            kept = (await conn.execute(text(KEPT.count_sql()), params)).scalar()
        if kept:
            result.details.append(f"{slug}: {kept} kept, cited by a consolidation or stage memory (S1)")
    return result


async def consolidation(engine: AsyncEngine, orgs, opts: MaintainOptions, deadline: float | None) -> TaskResult:
    """Consolidation jobs running longer than ``stale_s``: back to pending (retry_count + 1) while
    retries remain, else failed."""
    result = TaskResult("consolidation", tables=["consolidation_jobs"])
    for org_id, slug in orgs:
        statuses: list[str] = []
        stats = await run_batches(engine, STALE, {"org": org_id, "stale": float(opts.stale_s)}, opts.batch_size,
                                  deadline, opts.dry_run, returned=statuses)
        _add(result, stats, slug, "stale jobs" + (
            f" ({', '.join(f'{n} {s}' for s, n in sorted(Counter(statuses).items()))})" if statuses else ""))
    return result
