"""verify-schema: clean after migrate; every planted drift reported with the right object."""

import re
import secrets

import pytest
from sqlalchemy import text

from memctl.errors import ConfigError
from memctl.migration.revisions import head_revision
from memctl.models import ddl
from memctl.schema import reference
from memctl.schema.verify import verify_schema

S = "agent_memory"

# (SQL that plants the drift, expected finding kind, expected object)
DRIFTS = [
    (f"ALTER TABLE {S}.memories DROP COLUMN last_injected_at", "column", f"{S}.memories.last_injected_at"),
    (f"ALTER TABLE {S}.agents ADD COLUMN extra_col integer", "column", f"{S}.agents.extra_col"),
    (f"ALTER TABLE {S}.directives ALTER COLUMN priority TYPE integer", "column.type", f"{S}.directives.priority"),
    (f"ALTER TABLE {S}.projects ALTER COLUMN description SET NOT NULL", "column.not_null",
     f"{S}.projects.description"),
    (f"ALTER TABLE {S}.memories ALTER COLUMN confidence SET DEFAULT 0.5", "column.default",
     f"{S}.memories.confidence"),
    (f"ALTER TABLE {S}.consolidated_memories ALTER COLUMN source_count SET EXPRESSION AS "
     f"(cardinality(source_memory_ids) + 1)", "column.generated", f"{S}.consolidated_memories.source_count"),
    (f"ALTER TABLE {S}.memory_tags DROP CONSTRAINT pk_memory_tags, "
     f"ADD CONSTRAINT pk_memory_tags PRIMARY KEY (org_id, tag, memory_id)", "primary_key.definition",
     f"{S}.memory_tags.pk_memory_tags"),
    (f"ALTER TABLE {S}.memories DROP CONSTRAINT fk_memories_org_id_session_id_sessions, "
     f"ADD CONSTRAINT fk_memories_org_id_session_id_sessions FOREIGN KEY (org_id, session_id) "
     f"REFERENCES {S}.sessions (org_id, id) ON DELETE SET NULL", "foreign_key.definition",
     f"{S}.memories.fk_memories_org_id_session_id_sessions"),
    (f"ALTER TABLE {S}.users DROP CONSTRAINT uq_users_org_id_external_id", "unique",
     f"{S}.users.uq_users_org_id_external_id"),
    (f"DROP INDEX {S}.uq_memories_org_id_agent_id_content_hash; CREATE UNIQUE INDEX "
     f"uq_memories_org_id_agent_id_content_hash ON {S}.memories (org_id, agent_id, content_hash) "
     f"WHERE status = 'active'", "index.predicate", f"{S}.memories.uq_memories_org_id_agent_id_content_hash"),
    (f"ALTER TABLE {S}.directives DROP CONSTRAINT ck_directives_priority_range, ADD CONSTRAINT "
     f"ck_directives_priority_range CHECK (priority >= 0 AND priority <= 1000)", "check.definition",
     f"{S}.directives.ck_directives_priority_range"),
    (f"ALTER TABLE {S}.organizations DROP CONSTRAINT ck_organizations_slug_format", "check",
     f"{S}.organizations.ck_organizations_slug_format"),
    (f"DROP INDEX {S}.ix_memory_embeddings_hnsw_1; CREATE INDEX ix_memory_embeddings_hnsw_1 ON "
     f"{S}.memory_embeddings USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
     f"WITH (m = 32, ef_construction = 64) WHERE model_id = 1 AND searchable", "index.with_params",
     f"{S}.memory_embeddings.ix_memory_embeddings_hnsw_1"),
    (f"DROP INDEX {S}.ix_consolidated_memory_embeddings_hnsw_1; CREATE INDEX "
     f"ix_consolidated_memory_embeddings_hnsw_1 ON {S}.consolidated_memory_embeddings USING hnsw "
     f"((embedding::vector(384)) vector_l2_ops) WITH (m = 16, ef_construction = 64) WHERE model_id = 1",
     "index.opclasses", f"{S}.consolidated_memory_embeddings.ix_consolidated_memory_embeddings_hnsw_1"),
    (f"DROP INDEX {S}.ix_memories_content_tsv; CREATE INDEX ix_memories_content_tsv ON {S}.memories "
     f"USING gist (content_tsv)", "index.method", f"{S}.memories.ix_memories_content_tsv"),
    (f"DROP INDEX {S}.ix_memories_org_id_category; CREATE INDEX ix_memories_org_id_category ON "
     f"{S}.memories (org_id, tier)", "index.keys", f"{S}.memories.ix_memories_org_id_category"),
    (f"DROP INDEX {S}.ix_memories_org_id_expires_at", "index", f"{S}.memories.ix_memories_org_id_expires_at"),
    (f"ALTER TABLE {S}.memory_tags NO FORCE ROW LEVEL SECURITY", "table.rls_forced", f"{S}.memory_tags"),
    (f"ALTER TABLE {S}.sessions DISABLE ROW LEVEL SECURITY", "table.rls_enabled", f"{S}.sessions"),
    (f"DROP POLICY tenant_isolation ON {S}.memories", "policy", f"{S}.memories.tenant_isolation"),
    (f"ALTER POLICY tenant_isolation ON {S}.agents USING (true)", "policy.using", f"{S}.agents.tenant_isolation"),
    (f"DROP TRIGGER trg_touch_updated_at ON {S}.agents", "trigger", f"{S}.agents.trg_touch_updated_at"),
    (f"CREATE OR REPLACE FUNCTION {S}.current_org_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE "
     f"AS $$ SELECT current_setting('app.current_org_id', true)::uuid $$", "function.body",
     f"{S}.current_org_id()"),
    (f"DROP TABLE {S}.retention_policies", "table", f"{S}.retention_policies"),
    (f"CREATE TABLE {S}.rogue (id integer)", "table", f"{S}.rogue"),
    # a ready model must have its HNSW indexes (revision 0013); a registered one (id 3, below) need not
    (f"INSERT INTO {S}.embedding_models (name, dim, state) VALUES ('test/unindexed-8', 8, 'ready')", "index",
     f"{S}.memory_embeddings.ix_memory_embeddings_hnsw_2"),
    (f"INSERT INTO {S}.embedding_models (name, dim) VALUES ('test/registered-8', 8)", None, None),
    (f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{S}.ix_consolidated_memory_embeddings_hnsw_1'"
     f"::regclass", "index.valid", f"{S}.consolidated_memory_embeddings.ix_consolidated_memory_embeddings_hnsw_1"),
    # Behaviour that hides in attributes (issue 12's misses): a trigger that only fires for replication,
    # a function that runs as its owner, with its own search_path or LEAKPROOF, a collation, a key order.
    (f"ALTER TABLE {S}.memories ENABLE REPLICA TRIGGER trg_memories_record_version", "trigger.firing",
     f"{S}.memories.trg_memories_record_version"),
    (f"ALTER FUNCTION {S}.current_org_id() SECURITY DEFINER", "function.security_definer", f"{S}.current_org_id()"),
    (f"ALTER FUNCTION {S}.sha256_hex(text) SET search_path = public", "function.config",
     f"{S}.sha256_hex(content text)"),
    (f"ALTER FUNCTION {S}.touch_updated_at() LEAKPROOF", "function.leakproof", f"{S}.touch_updated_at()"),
    (f'ALTER TABLE {S}.agents ALTER COLUMN name TYPE text COLLATE "C"', "column.collation", f"{S}.agents.name"),
    (f"DROP INDEX {S}.ix_memories_org_id_agent_id_created_at; CREATE INDEX ix_memories_org_id_agent_id_created_at "
     f"ON {S}.memories (org_id, agent_id, created_at)", "index.key_options",
     f"{S}.memories.ix_memories_org_id_agent_id_created_at"),
    # Privileges of memctl's roles and PUBLIC (TRUNCATE ignores RLS; UPDATE on the model registry is global).
    (f"GRANT TRUNCATE ON {S}.memory_tags TO memory_app", "privileges.memory_app", f"{S}.memory_tags"),
    (f"GRANT UPDATE ON {S}.embedding_models TO memory_app", "privileges.memory_app", f"{S}.embedding_models"),
    (f"REVOKE SELECT ON {S}.memories FROM memory_app", "privileges.memory_app", f"{S}.memories"),
    (f"GRANT SELECT ON {S}.users TO PUBLIC", "privileges.PUBLIC", f"{S}.users"),
    (f"GRANT UPDATE (content) ON {S}.directives TO memory_app", "privileges", f"{S}.directives.content"),
    (f"REVOKE EXECUTE ON FUNCTION {S}.touch_updated_at() FROM PUBLIC", "privileges.PUBLIC",
     f"{S}.touch_updated_at()"),
    (f"GRANT CREATE ON SCHEMA {S} TO memory_app", "privileges.memory_app", f"pg_namespace.{S}"),
    (f"ALTER FUNCTION {S}.record_memory_version() OWNER TO memctl_admin", "function.owner",
     f"{S}.record_memory_version()"),
    # PostgreSQL 18: a NOT NULL constraint that existing rows need not satisfy.
    (f"ALTER TABLE {S}.consolidation_jobs ADD CONSTRAINT nn_error_message NOT NULL error_message NOT VALID",
     "column.not_null_validated", f"{S}.consolidation_jobs.error_message"),
    # Objects memctl does not create, and table attributes that change behaviour.
    (f"CREATE SEQUENCE {S}.rogue_seq", "sequence", f"{S}.rogue_seq"),
    (f"ALTER SEQUENCE {S}.embedding_models_id_seq INCREMENT BY 10 CYCLE", "sequence.increment",
     f"{S}.embedding_models_id_seq"),
    (f"CREATE TYPE {S}.mood AS ENUM ('calm')", "type", f"{S}.mood"),
    (f"CREATE DOMAIN {S}.positive AS integer CHECK (VALUE > 0)", "type", f"{S}.positive"),
    (f"CREATE RULE keep_tags AS ON DELETE TO {S}.memory_tags DO INSTEAD NOTHING", "rule",
     f"{S}.memory_tags.keep_tags"),
    (f"CREATE MATERIALIZED VIEW {S}.all_memories AS SELECT id, content FROM {S}.memories", "materialized_view",
     f"{S}.all_memories"),
    (f"CREATE VIEW {S}.memory_ids WITH (security_invoker = true) AS SELECT id FROM {S}.memories", "view",
     f"{S}.memory_ids"),
    (f"CREATE TABLE public.versions_elsewhere () INHERITS ({S}.memory_versions)", "table.inherited_by",
     f"{S}.memory_versions"),
    (f"ALTER TABLE {S}.task_errors SET UNLOGGED", "table.persistence", f"{S}.task_errors"),
    (f"ALTER TABLE {S}.checkpoints SET (fillfactor = 50)", "table.options", f"{S}.checkpoints"),
]


async def test_clean_right_after_migrate(migrated, db_url):
    result = await verify_schema(migrated, db_url)
    assert result.clean, result.findings
    assert result.revision == result.head and result.pgvector >= "0.8"
    assert result.checked["index"] > 40 and result.checked["policy"] == 2 * 26 + 1  # tenant + admin, platform_read


async def test_every_planted_drift_is_reported(scratch_migrated):
    engine, url = scratch_migrated  # a copy of head for this test only: the drifts stay with it
    async with engine.begin() as conn:
        for sql, _kind, _obj in DRIFTS:
            for stmt in sql.split("; "):
                await conn.execute(text(stmt))
    result = await verify_schema(engine, url)
    found = {(f.kind, f.object) for f in result.findings}
    missing = [(k, o) for _s, k, o in DRIFTS if k and (k, o) not in found]
    assert not [f for f in result.findings if "hnsw_3" in f.object], "a registered model's index is optional"
    assert not missing, f"not reported: {missing}; found: {sorted(found)}"
    assert len({k for _s, k, _o in DRIFTS}) >= 15
    # A dropped table is reported once, not once per column / constraint / policy.
    assert not [f for f in result.findings if f.object.startswith(f"{S}.retention_policies.")]
    hnsw = next(f for f in result.findings if f.kind == "index.with_params")
    assert '"m": "16"' in hnsw.expected and '"m": "32"' in hnsw.actual
    # One shape of Finding.object for every kind: <namespace>.<name>[.<member>]
    assert all(re.fullmatch(r"(agent_memory|public|pg_roles|pg_extension|pg_namespace)\.[^.]+(\..+)?", f.object)
               for f in result.findings), [f.object for f in result.findings]


async def test_revision_behind_head_is_drift(migrated, db_url):
    async with migrated.begin() as conn:
        await conn.execute(text("UPDATE public.alembic_version SET version_num = '0007'"))
    result = await verify_schema(migrated, db_url)
    assert ("revision", "public.alembic_version") in {(f.kind, f.object) for f in result.findings}
    async with migrated.begin() as conn:
        await conn.execute(text("UPDATE public.alembic_version SET version_num = :v"), {"v": head_revision()})


async def test_reference_is_built_once_per_key_and_a_changed_input_is_a_new_key(migrated, db_url, monkeypatch):
    builds = []
    build = reference._build

    async def counting_build(*args):
        builds.append(args)
        return await build(*args)

    monkeypatch.setattr(reference, "_build", counting_build)
    monkeypatch.setattr(reference, "_CACHE", {})
    first = await verify_schema(migrated, db_url)
    second = await verify_schema(migrated, db_url)
    assert first.clean and second.clean and first.checked == second.checked
    assert len(builds) == 1  # the second run reused the reference

    # The key covers the models' DDL: an edited function is a new key, so a new reference, and the
    # live function (unchanged) is reported as drift. A cached reference can never be stale.
    monkeypatch.setattr(ddl, "CURRENT_ORG_ID", ddl.CURRENT_ORG_ID.replace("STABLE", "VOLATILE"))
    changed = await verify_schema(migrated, db_url)
    assert len(builds) == 2
    assert ("function.volatility", f"{S}.current_org_id()") in {(f.kind, f.object) for f in changed.findings}


async def test_grants_to_other_roles_are_their_own_kind_and_can_be_allowed(scratch_migrated):
    engine, url = scratch_migrated
    role = f"memctl_analytics_{secrets.token_hex(3)}"
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
        await conn.execute(text(f'GRANT SELECT ON {S}.agents TO "{role}"'))
        await conn.execute(text(f"GRANT DELETE ON {S}.embedding_models TO memory_app"))
    try:
        seen = await verify_schema(engine, url)
        assert [(f.kind, f.object, f.actual) for f in seen.findings if f.kind == "other_role_privileges"] == [
            ("other_role_privileges", f"{S}.agents", f"{role}: SELECT")]
        allowed = await verify_schema(engine, url, allow_grants_to=[role])
        # the operator's own role is allowed; the grant to memory_app is still drift
        assert [(f.kind, f.object) for f in allowed.findings] == [("privileges.memory_app", f"{S}.embedding_models")]
        with pytest.raises(ConfigError, match="no role named 'nobody_here'"):
            await verify_schema(engine, url, allow_grants_to=["nobody_here"])
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'REVOKE ALL ON {S}.agents FROM "{role}"'))
            await conn.execute(text(f'DROP ROLE "{role}"'))
