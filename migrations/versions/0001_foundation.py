"""foundation: the vector extension, the agent_memory schema, its functions and the memory_app role.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = [
    # pgvector 0.8 or newer is required (iterative index scans); verify-schema checks the version.
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE SCHEMA agent_memory",
    # memory_app is cluster-wide and NOLOGIN: the application's sessions SET ROLE to it or are granted it.
    """DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'memory_app') THEN
        CREATE ROLE memory_app NOLOGIN;
    END IF;
END
$$""",
    # Unset or '' means no organisation: every policy then matches no row (fail closed).
    """CREATE FUNCTION agent_memory.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.current_org_id', true), '')::uuid $$""",
    # SHA-256 hex of content, for the generated content_hash columns. convert_to() is STABLE and
    # refused in a generated column; one database's encoding cannot change, so this is immutable.
    """CREATE FUNCTION agent_memory.sha256_hex(content text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(content, 'UTF8')), 'hex') $$""",
    """CREATE FUNCTION agent_memory.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$""",
]

# The extension and the role are left in place: other schemas of the database (or other
# databases of the cluster) may use them. Nothing of agent_memory remains.
DOWNGRADE = [
    "DROP FUNCTION agent_memory.touch_updated_at()",
    "DROP FUNCTION agent_memory.sha256_hex(text)",
    "DROP FUNCTION agent_memory.current_org_id()",
    "DROP SCHEMA agent_memory",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
