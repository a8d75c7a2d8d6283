"""``models set-default`` and ``models retire``: move a scope to a model, and remove a model no scope uses.

set-default is one transaction: the model's row is locked (``FOR UPDATE``, as retire locks it, so
the two never interleave), its state, its indexes and the scope's coverage are checked, then the
global default or the organisation's row changes. Services read the model at the start of each
search, so they move at the next one. retire marks the model retiring (searches of it stop at
once), drops its indexes concurrently and deletes its embeddings in batches (the maintain batch
machinery: ``FOR UPDATE SKIP LOCKED``, ``--max-runtime``), then removes it from the registry.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.db.locks import advisory_lock, lock_key
from memctl.db.names import checked
from memctl.db.privileges import require_all_rows, require_migration_privileges
from memctl.errors import ConfigError, NotFound
from memctl.lifecycle.catalog import LIFECYCLE_REVISION, coverage, index_states, org_id_of
from memctl.lifecycle.types import RetireResult, SwitchResult
from memctl.maintenance.batches import Batch, run_batches
from memctl.migration.revisions import ensure_migrated
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.models.embeddings import EMBEDDING_TABLES, MODEL_COLUMNS
from memctl.models.enums import ModelState
from memctl.progress import Progress, no_progress


async def _locked_model(conn: AsyncConnection, name: str) -> ModelSpec:
    row = (await conn.execute(text(
        f"SELECT {MODEL_COLUMNS} FROM {SCHEMA}.embedding_models WHERE name = :n FOR NO KEY UPDATE"),
        {"n": checked("embedding model named", name)})).mappings().first()
    if row is None:
        raise NotFound(f"no embedding model named {name!r} is registered")
    return ModelSpec(**row)


async def set_default(engine: AsyncEngine, model_name: str, org: str | None = None,
                      min_coverage: float = 1.0) -> SwitchResult:
    """Make ``model_name`` the global default, or organisation ``org``'s model, atomically.

    Refused (``result.refused``, nothing changed) unless the model is ready, both its HNSW indexes
    are valid, and at least ``min_coverage`` (0..1) of the scope's active memories have an
    embedding of it: for the global default, the organisations that follow it (no model of their
    own). Choosing the global default for an organisation removes its own choice (it follows the
    default from then on), and a global switch to a model makes the organisations that chose it follow
    the default (``unpinned``). Raises NotFound (model, organisation), ConfigError (min_coverage),
    PrivilegeMissing unless the role sees every row.
    """
    if not 0.0 <= min_coverage <= 1.0:
        raise ConfigError("--min-coverage must be between 0 and 1")
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_all_rows(engine, "models set-default")
    async with engine.begin() as conn:
        # one set-default at a time: each then reads the default the previous one left (READ COMMITTED)
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("models set-default")})
        model = await _locked_model(conn, model_name)
        org_id = await org_id_of(conn, org) if org is not None else None
        default = (await conn.execute(text(
            f"SELECT id, name FROM {SCHEMA}.embedding_models WHERE is_default FOR NO KEY UPDATE"))).first()
        if org_id is None:
            previous = default.name if default else None
        else:
            own = (await conn.execute(text(
                f"SELECT e.name FROM {SCHEMA}.organization_models o JOIN {SCHEMA}.embedding_models e "
                f"ON e.id = o.model_id WHERE o.org_id = :org FOR UPDATE OF o"), {"org": org_id})).scalar()
            previous = own or (default.name if default else None)  # the model it used: its own, else the default
        valid = all(s.status == "valid" for s in await index_states(conn, model))
        active, embedded = await coverage(conn, model, org_id, follows_default=org_id is None)
        result = SwitchResult(model.name, org or "global", previous, False, embedded / active if active else 1.0,
                              active, embedded, valid)
        if model.state == ModelState.RETIRING:
            result.refused = f"model {model.name!r} is retiring (memctl models retire removes it)"
        elif model.state != ModelState.READY or not valid:
            result.refused = (f"model {model.name!r} is {model.state}; its HNSW indexes are "
                              f"{'valid' if valid else 'not all valid'} (memctl models index builds them)")
        elif result.coverage < min_coverage:
            result.refused = (f"{embedded} of {active} active and consolidated memories of {result.scope} have a "
                              f"current embedding of {model.name!r} ({result.coverage:.4f} < --min-coverage "
                              f"{min_coverage}); run memctl models backfill (--stale for changed contents)")
        if result.refused:
            return result
        if org_id is None:
            if default is None or default.id != model.id:
                await conn.execute(text(f"UPDATE {SCHEMA}.embedding_models SET is_default = false WHERE is_default"))
                await conn.execute(text(f"UPDATE {SCHEMA}.embedding_models SET is_default = true WHERE id = :id"),
                                   {"id": model.id})
                result.changed = True
            # organisations that chose this model (a canary) follow the default from now on: the next change
            # of model moves them too, and nothing pins the model against its retirement
            result.unpinned = sorted((await conn.execute(text(
                f"DELETE FROM {SCHEMA}.organization_models o USING {SCHEMA}.organizations g WHERE g.id = o.org_id "
                f"AND o.model_id = :id RETURNING g.slug"), {"id": model.id})).scalars().all())
        elif default is not None and default.id == model.id:
            result.changed = own is not None
            await conn.execute(text(f"DELETE FROM {SCHEMA}.organization_models WHERE org_id = :org"), {"org": org_id})
        elif own != model.name:
            await conn.execute(text(
                f"INSERT INTO {SCHEMA}.organization_models (org_id, model_id) VALUES (:org, :model) "
                f"ON CONFLICT (org_id) DO UPDATE SET model_id = EXCLUDED.model_id"), {"org": org_id, "model": model.id})
            result.changed = True
    return result


async def retire(engine: AsyncEngine, model_name: str, *, batch_size: int = 5000,
                 max_runtime_s: float | None = None, progress: Progress = no_progress) -> RetireResult:
    """Remove ``model_name``: refused (``result.refused``) while it is the global default or an
    organisation's model. Otherwise: state retiring (searches of it are refused from now on), its
    indexes dropped concurrently, its embeddings deleted ``batch_size`` rows per transaction, one
    organisation at a time, until none is left or ``max_runtime_s`` seconds have passed (then run it
    again: ``stopped_by_budget``), and its row deleted. Raises NotFound, LockHeld (another run on
    the model), PrivilegeMissing unless the role owns the tables (DROP INDEX needs it).
    """
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    await ensure_migrated(engine, LIFECYCLE_REVISION)
    await require_migration_privileges(engine, "memctl models retire")
    await require_all_rows(engine, "models retire")
    started = time.monotonic()
    deadline = None if max_runtime_s is None else started + max_runtime_s
    async with engine.connect() as conn:  # the name, for the lock; NotFound before anything else
        name = (await _locked_model(conn, model_name)).name
        await conn.rollback()
    # The lock first: while a backfill or an index build of the model runs, retire exits 75 and changes nothing.
    async with advisory_lock(engine, f"models {name}"):
        async with engine.begin() as conn:
            model = await _locked_model(conn, model_name)
            users = (await conn.execute(text(
                f"SELECT 'the global default' FROM {SCHEMA}.embedding_models WHERE id = :id AND is_default UNION ALL "
                f"SELECT 'organisation ' || g.slug FROM {SCHEMA}.organization_models o JOIN {SCHEMA}.organizations g "
                f"ON g.id = o.org_id WHERE o.model_id = :id ORDER BY 1 LIMIT 6"), {"id": model.id})).scalars().all()
            result = RetireResult(model.name)
            if users:
                result.refused = (f"model {model.name!r} is in use by {', '.join(users[:5])}"
                                  f"{' and more' if len(users) > 5 else ''}: memctl models set-default another model "
                                  f"first")
                return result
            await conn.execute(text(f"UPDATE {SCHEMA}.embedding_models SET state = 'retiring' WHERE id = :id"),
                               {"id": model.id})
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in EMBEDDING_TABLES:
                name = f"{SCHEMA}.{hnsw_index_name(table, model.id)}"
                if (await conn.execute(text("SELECT to_regclass(:n)"), {"n": name})).scalar() is not None:
                    await conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                    result.indexes_dropped.append(name)
            orgs = (await conn.execute(text(f"SELECT id FROM {SCHEMA}.organizations ORDER BY id"))).scalars().all()
        for table in EMBEDDING_TABLES:
            column = "memory_id" if table == "memory_embeddings" else "consolidated_memory_id"
            batch = Batch(table, "model_id = :model", "DELETE", returning=column)
            result.deleted[table] = 0
            for i, org_id in enumerate(orgs):
                stats = await run_batches(engine, batch, {"org": org_id, "model": model.id}, batch_size, deadline,
                                          dry_run=False)
                result.deleted[table] += stats.rows
                progress(table, i + 1, len(orgs))
                if stats.stopped_by_budget:
                    result.stopped_by_budget = True
                    result.elapsed_s = round(time.monotonic() - started, 3)
                    return result
        async with engine.begin() as conn:
            gone = (await conn.execute(text(
                f"DELETE FROM {SCHEMA}.embedding_models e WHERE id = :id AND NOT EXISTS (SELECT 1 FROM "
                f"{SCHEMA}.memory_embeddings WHERE model_id = :id) AND NOT EXISTS (SELECT 1 FROM "
                f"{SCHEMA}.consolidated_memory_embeddings WHERE model_id = :id) RETURNING id"),
                {"id": model.id})).scalar()
        result.removed = gone is not None
        if not result.removed:
            result.refused = ("embeddings of the model are left (rows locked by a writer were skipped): run "
                              "memctl models retire again")
    result.elapsed_s = round(time.monotonic() - started, 3)
    return result
