"""admin_role: memctl_admin, a NOLOGIN role whose members (memctl's operator roles) see and change
every row: a permissive policy on every table with row-level security, and DML on every table.

RLS is FORCEd, so without this a table owner that is not a superuser and cannot be BYPASSRLS (the
usual case on managed PostgreSQL) sees no row at all, and memctl's checks, maintenance and seed
would report nothing while doing nothing. Permissive policies are OR-ed (PostgreSQL docs, "Row
Security Policies"): memory_app's tenant_isolation is unchanged, and memory_app must never be a
member of memctl_admin (verify-schema reports it). Creating the role needs CREATEROLE: where the
migrating role lacks it, an administrator creates it once (README, "Least privilege").
On PostgreSQL 17 and later memctl_admin also gets MAINTAIN (VACUUM, ANALYZE, REINDEX).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = [
    """DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'memctl_admin') THEN
        CREATE ROLE memctl_admin NOLOGIN;
    END IF;
END
$$""",
    "GRANT USAGE ON SCHEMA agent_memory TO memctl_admin",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA agent_memory TO memctl_admin",
    # memctl's commands read the revision (and verify-schema the checksums) before anything else. The
    # checksum table is memctl's (memctl.migration.revisions); SQL applied with psql has not made it yet.
    "CREATE TABLE IF NOT EXISTS public.memctl_revision_checksums (revision TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    "GRANT SELECT ON public.alembic_version, public.memctl_revision_checksums TO memctl_admin",
    """DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON ALL TABLES IN SCHEMA agent_memory TO memctl_admin';
    END IF;
END
$$""",
    "CREATE POLICY memctl_admin_all ON agent_memory.agents TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.api_tokens TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.checkpoints TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.compression_metrics TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.consolidated_memories TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.consolidated_memory_embeddings TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.consolidation_jobs TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.data_sources TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.directives TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memories TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_access_policies TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_collection_items TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_collections TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_embeddings TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_relationships TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_tags TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.memory_versions TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.organizations TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.projects TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.retention_policies TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.sessions TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.stage_memories TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.task_contexts TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.task_errors TO memctl_admin USING (true) WITH CHECK (true)",
    "CREATE POLICY memctl_admin_all ON agent_memory.users TO memctl_admin USING (true) WITH CHECK (true)",
]

# The role is left in place, like memory_app: other databases of the cluster may use it.
DOWNGRADE = [
    "DROP POLICY memctl_admin_all ON agent_memory.users",
    "DROP POLICY memctl_admin_all ON agent_memory.task_errors",
    "DROP POLICY memctl_admin_all ON agent_memory.task_contexts",
    "DROP POLICY memctl_admin_all ON agent_memory.stage_memories",
    "DROP POLICY memctl_admin_all ON agent_memory.sessions",
    "DROP POLICY memctl_admin_all ON agent_memory.retention_policies",
    "DROP POLICY memctl_admin_all ON agent_memory.projects",
    "DROP POLICY memctl_admin_all ON agent_memory.organizations",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_versions",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_tags",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_relationships",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_embeddings",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_collections",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_collection_items",
    "DROP POLICY memctl_admin_all ON agent_memory.memory_access_policies",
    "DROP POLICY memctl_admin_all ON agent_memory.memories",
    "DROP POLICY memctl_admin_all ON agent_memory.directives",
    "DROP POLICY memctl_admin_all ON agent_memory.data_sources",
    "DROP POLICY memctl_admin_all ON agent_memory.consolidation_jobs",
    "DROP POLICY memctl_admin_all ON agent_memory.consolidated_memory_embeddings",
    "DROP POLICY memctl_admin_all ON agent_memory.consolidated_memories",
    "DROP POLICY memctl_admin_all ON agent_memory.compression_metrics",
    "DROP POLICY memctl_admin_all ON agent_memory.checkpoints",
    "DROP POLICY memctl_admin_all ON agent_memory.api_tokens",
    "DROP POLICY memctl_admin_all ON agent_memory.agents",
    "REVOKE SELECT ON public.alembic_version, public.memctl_revision_checksums FROM memctl_admin",
    "REVOKE ALL ON ALL TABLES IN SCHEMA agent_memory FROM memctl_admin",
    "REVOKE USAGE ON SCHEMA agent_memory FROM memctl_admin",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
