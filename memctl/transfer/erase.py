"""``memctl erase``: an organisation, or a user and everything derived from them (issue 14, the GDPR
right to erasure).

A user's erasure removes their memories (and with them, by ON DELETE CASCADE, every version, the
embeddings of every model, tags, edges and collection items), their sessions (and checkpoints),
API tokens and collections, and the consolidated memories built from their memories (deleted:
rebuilding them needs the summariser memctl does not have). The memories of others consolidated into
those lose the link, and stage memories' ``raw_memory_refs`` lose the user's memory ids. The user's
row goes last, so a run that is killed or stopped by ``--max-runtime`` leaves the user to be found by
the next run, which finishes the job; revision 0016's trigger on users does the same for whatever
arrived meanwhile.

The work is done in batches by the maintain machinery (:mod:`memctl.maintenance.batches`: one short
transaction each, ``FOR UPDATE SKIP LOCKED``, the runtime budget). What is removed per table is
counted before and after, from the catalog's ON DELETE CASCADE foreign keys (:func:`scopes`), so a
new table hanging off memories is counted without touching this code; ``dry_run`` counts only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db.names import checked
from memctl.db.privileges import require_all_rows
from memctl.errors import ConfigError, NotFound
from memctl.maintenance.batches import Batch, run_batches
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA
from memctl.models.ddl import UUID_RE, org_key
from memctl.progress import Progress, no_progress
from memctl.transfer.plan import ForeignKey, constraints
from memctl.transfer.tables import quote, tenant_tables

ERASE_REVISION = "0016"  # deleting a user takes their consolidations (trigger trg_users_erase_derived)
# The user's memory ids, captured when the run starts (:gone): the derived rows are found by them even
# after the memories are gone, so what is left is counted honestly (the hostile review's defect 1).
GONE = "CAST(:gone AS uuid[])"
CITES_USER = f"source_memory_ids && {GONE}"
REFS_USER = (f"EXISTS (SELECT 1 FROM jsonb_array_elements_text(raw_memory_refs) AS e(ref) "
             f"WHERE e.ref ~ '{UUID_RE}' AND e.ref::uuid = ANY ({GONE}))")
STRIP_REFS = (f"SET raw_memory_refs = (SELECT coalesce(jsonb_agg(r.v ORDER BY r.o), '[]'::jsonb) "
              f"FROM jsonb_array_elements(raw_memory_refs) WITH ORDINALITY AS r(v, o) "
              f"WHERE NOT (jsonb_typeof(r.v) = 'string' AND r.v #>> '{{}}' ~ '{UUID_RE}' "
              f"AND (r.v #>> '{{}}')::uuid = ANY ({GONE})))")
# First what was derived from the user's memories (unlink, delete the consolidations, edit the refs); only
# when none of it is left (a row another session holds is skipped) do the memories themselves go.
DERIVED_STEPS = [
    Batch("memories", f"consolidated_into_id IN (SELECT c.id FROM {SCHEMA}.consolidated_memories c "
                      f"WHERE c.org_id = :org AND c.{CITES_USER})",
          "SET consolidated_into_id = NULL, is_consolidated = false"),
    Batch("consolidated_memories", CITES_USER, "DELETE"),
    Batch("stage_memories", REFS_USER, STRIP_REFS),
]
OWNED_STEPS = [
    Batch("memories", "user_id = :user", "DELETE"),
    Batch("sessions", "user_id = :user", "DELETE"),
    Batch("api_tokens", "user_id = :user", "DELETE"),
    Batch("memory_collections", "user_id = :user", "DELETE"),
]
USER_ROOTS = {"users": "id = :user", "memories": f"user_id = :user OR id = ANY ({GONE})",
              "sessions": "user_id = :user", "consolidated_memories": CITES_USER}
REFS_EDITED = "stage_memories (raw_memory_refs edited)"


@dataclass
class ErasedTable:
    """Rows of ``table`` in scope before the run, removed by it, and left (0 when done)."""

    table: str
    before: int
    removed: int
    remaining: int


@dataclass
class EraseResult:
    """What ``memctl erase`` removed (or would, with ``dry_run``), per table; ``done`` when nothing in
    scope is left, ``stopped_by_budget`` when ``--max-runtime`` ended it first (run again)."""

    target: str
    dry_run: bool
    tables: list[ErasedTable] = field(default_factory=list)
    removed: int = 0
    done: bool = False
    stopped_by_budget: bool = False
    elapsed_s: float = 0.0


def scopes(fks: list[ForeignKey], roots: dict[str, str], tables: set[str]) -> dict[str, str]:
    """table -> predicate (unqualified columns, :org and :user bound) of the rows that go: the
    ``roots`` and, transitively, every row an ON DELETE CASCADE foreign key ties to one of them."""
    preds = dict(roots)
    for _ in range(len(tables) + 1):
        nxt = dict(roots)
        for fk in fks:
            if fk.on_delete == "c" and fk.ref_table in preds and fk.table in tables and fk.ref_table != fk.table:
                part = (f"({', '.join(map(quote, fk.cols))}) IN (SELECT {', '.join(map(quote, fk.ref_cols))} "
                        f"FROM {SCHEMA}.{quote(fk.ref_table)} WHERE {_org(fk.ref_table)} AND ({preds[fk.ref_table]}))")
                nxt[fk.table] = f"{nxt[fk.table]} OR {part}" if fk.table in nxt else part
        if nxt == preds:
            return preds
        preds = nxt
    return preds


def _org(table: str) -> str:
    return f"{org_key(table)} = :org"


async def erase(engine: AsyncEngine, org: str, user: str | None = None, *, dry_run: bool = False,
                batch_size: int = 1000, max_runtime_s: float | None = None,
                progress: Progress = no_progress) -> EraseResult:
    """Erase organisation ``org`` (slug), or only its user with external id ``user`` and what was
    derived from them (module docstring). Batches of ``batch_size`` rows; no batch starts after
    ``max_runtime_s`` seconds (the user's row, or the organisation's, is deleted only when everything
    else is gone, so the next run finishes the job).

    Raises NotFound (organisation or user), ConfigError (batch_size < 1), PrivilegeMissing unless the
    role sees every row, SchemaNotReady below revision 0016.
    """
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    started = time.perf_counter()
    await ensure_migrated(engine, ERASE_REVISION)
    await require_all_rows(engine, "erase")
    deadline = None if max_runtime_s is None else time.monotonic() + max_runtime_s
    async with engine.connect() as sa:
        raw: asyncpg.Connection = (await sa.get_raw_connection()).driver_connection
        org_id = await raw.fetchval(f"SELECT id FROM {SCHEMA}.organizations WHERE slug = $1",
                                    checked("organisation with slug", org))
        if org_id is None:
            raise NotFound(f"no organisation with slug {org!r}")
        params: dict = {"org": org_id}
        if user is not None:
            params["user"] = await raw.fetchval(f"SELECT id FROM {SCHEMA}.users WHERE org_id = $1 AND external_id = $2",
                                                org_id, checked("user", user))
            if params["user"] is None:
                raise NotFound(f"no user with external id {user!r} in organisation {org!r} (erased already?)")
            params["gone"] = [r["id"] for r in await raw.fetch(
                f"SELECT id FROM {SCHEMA}.memories WHERE org_id = $1 AND user_id = $2", org_id, params["user"])]
        tables = {t.name for t in await tenant_tables(raw)}
        fks, _ = await constraints(raw)
        await sa.commit()
    roots = USER_ROOTS if user is not None else {"organizations": "id = :org"}
    preds = scopes(fks, roots, tables)
    if user is not None:
        preds[REFS_EDITED] = REFS_USER
    target = f"user {user!r} of organisation {org!r}" if user is not None else f"organisation {org!r}"
    result = EraseResult(target, dry_run)
    before = await _counts(engine, preds, params)
    if not dry_run:
        result.stopped_by_budget = await _run(engine, user is not None, tables, params, preds, batch_size, deadline,
                                              progress)
    after = before if dry_run else await _counts(engine, preds, params)
    for name in sorted(before):
        removed = before[name] if dry_run else max(before[name] - after[name], 0)
        result.tables.append(ErasedTable(name, before[name], removed, after[name]))
        result.removed += removed if name != REFS_EDITED else 0
    result.done = not dry_run and not any(after.values())
    result.elapsed_s = round(time.perf_counter() - started, 3)
    return result


async def _counts(engine: AsyncEngine, preds: dict[str, str], params: dict) -> dict[str, int]:
    """Rows in scope per table, in one snapshot."""
    counts = {}
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        for name, pred in preds.items():
            table = "stage_memories" if name == REFS_EDITED else name
            bind = {k: v for k, v in params.items() if f":{k}" in pred or k == "org"}
            counts[name] = int((await conn.execute(text(
                f"SELECT count(*) FROM {SCHEMA}.{quote(table)} WHERE {_org(table)} AND ({pred})"), bind)).scalar())
    return counts


async def _run(engine: AsyncEngine, by_user: bool, tables: set[str], params: dict, preds: dict[str, str],
               batch_size: int, deadline: float | None, progress: Progress) -> bool:
    """The batches, then the user's (or organisation's) row; True when the budget stopped it first.
    Rows another session holds are skipped by the batches (SKIP LOCKED); the user's row is deleted only
    when nothing derived is left (so the next run can still find it), and its cascade waits for the
    rest up to the lock timeout."""
    phases = ([DERIVED_STEPS, OWNED_STEPS] if by_user else
              [[Batch(t, "true", "DELETE") for t in ("memories", "consolidated_memories", "memory_versions",
                                                     "sessions", "task_contexts") if t in tables]])
    total = sum(len(p) for p in phases) + 1
    done = 0
    for phase in phases:
        for step in phase:
            stats = await run_batches(engine, step, params, batch_size, deadline, dry_run=False)
            done += 1
            progress("erase", done, total)
            if stats.stopped_by_budget:
                return True
        if by_user and phase is DERIVED_STEPS:
            derived = {k: v for k, v in preds.items() if k in ("consolidated_memories", REFS_EDITED)}
            if any((await _counts(engine, derived, params)).values()):
                return False  # held by another session: the user and their memories stay for the next run
    if deadline is not None and time.monotonic() >= deadline:
        return True
    async with engine.begin() as conn:
        if deadline is not None:  # the cascade waits for rows other sessions hold: not past the budget
            await conn.execute(text("SELECT set_config('lock_timeout', :ms, true)"),
                               {"ms": f"{max(int((deadline - time.monotonic()) * 1000), 1)}ms"})
        if by_user:
            await conn.execute(text(f"DELETE FROM {SCHEMA}.users WHERE org_id = :org AND id = :user"),
                               {"org": params["org"], "user": params["user"]})
        else:
            await conn.execute(text(f"DELETE FROM {SCHEMA}.organizations WHERE id = :org"), {"org": params["org"]})
    progress("erase", total, total)
    return False
