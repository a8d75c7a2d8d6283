"""tenancy: organizations, projects, users, agents, api_tokens, directives, sessions, checkpoints, data_sources.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE agent_memory.organizations (
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        slug TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        deleted_at TIMESTAMP WITH TIME ZONE,
        CONSTRAINT pk_organizations PRIMARY KEY (id),
        CONSTRAINT uq_organizations_slug UNIQUE (slug),
        CONSTRAINT ck_organizations_slug_format CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        CONSTRAINT ck_organizations_name_length CHECK (char_length(name) >= 1 AND char_length(name) <= 255)
)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.organizations FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.projects (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        archived_at TIMESTAMP WITH TIME ZONE,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_projects PRIMARY KEY (org_id, id),
        CONSTRAINT fk_projects_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT uq_projects_org_id_name UNIQUE (org_id, name)
)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.projects FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.users (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        external_id TEXT NOT NULL,
        display_name TEXT,
        email TEXT,
        deleted_at TIMESTAMP WITH TIME ZONE,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_users PRIMARY KEY (org_id, id),
        CONSTRAINT fk_users_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT uq_users_org_id_external_id UNIQUE (org_id, external_id),
        CONSTRAINT ck_users_email_format CHECK (position('@' in email) > 0)
)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.users FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.agents (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        deleted_at TIMESTAMP WITH TIME ZONE,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_agents PRIMARY KEY (org_id, id),
        CONSTRAINT fk_agents_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT uq_agents_org_id_name UNIQUE (org_id, name)
)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.agents FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.api_tokens (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        agent_id UUID,
        user_id UUID,
        name TEXT NOT NULL,
        token_prefix TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        scopes TEXT[] DEFAULT '{}'::text[] NOT NULL,
        expires_at TIMESTAMP WITH TIME ZONE,
        last_used_at TIMESTAMP WITH TIME ZONE,
        revoked_at TIMESTAMP WITH TIME ZONE,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_api_tokens PRIMARY KEY (org_id, id),
        CONSTRAINT fk_api_tokens_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_api_tokens_org_id_agent_id_agents FOREIGN KEY(org_id, agent_id) REFERENCES agent_memory.agents (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_api_tokens_org_id_user_id_users FOREIGN KEY(org_id, user_id) REFERENCES agent_memory.users (org_id, id) ON DELETE CASCADE,
        CONSTRAINT uq_api_tokens_token_hash UNIQUE (token_hash),
        CONSTRAINT ck_api_tokens_token_hash_sha256 CHECK (token_hash ~ '^[0-9a-f]{64}$'),
        CONSTRAINT ck_api_tokens_expires_after_created CHECK (expires_at > created_at),
        CONSTRAINT ck_api_tokens_token_prefix_length CHECK (char_length(token_prefix) = 8)
)""",
    """CREATE INDEX ix_api_tokens_org_id_agent_id ON agent_memory.api_tokens (org_id, agent_id)""",
    """CREATE INDEX ix_api_tokens_org_id_user_id ON agent_memory.api_tokens (org_id, user_id)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.api_tokens FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.directives (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        agent_id UUID NOT NULL,
        content TEXT NOT NULL,
        priority SMALLINT DEFAULT 50 NOT NULL,
        is_active BOOLEAN DEFAULT true NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_directives PRIMARY KEY (org_id, id),
        CONSTRAINT fk_directives_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_directives_org_id_agent_id_agents FOREIGN KEY(org_id, agent_id) REFERENCES agent_memory.agents (org_id, id) ON DELETE CASCADE,
        CONSTRAINT ck_directives_content_length CHECK (char_length(content) >= 1 AND char_length(content) <= 8192),
        CONSTRAINT ck_directives_priority_range CHECK (priority >= 0 AND priority <= 100)
)""",
    """CREATE INDEX ix_directives_org_id_agent_id ON agent_memory.directives (org_id, agent_id)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.directives FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.sessions (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        agent_id UUID NOT NULL,
        user_id UUID,
        started_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        ended_at TIMESTAMP WITH TIME ZONE,
        metadata JSONB DEFAULT '{}'::jsonb NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_sessions PRIMARY KEY (org_id, id),
        CONSTRAINT fk_sessions_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_sessions_org_id_agent_id_agents FOREIGN KEY(org_id, agent_id) REFERENCES agent_memory.agents (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_sessions_org_id_user_id_users FOREIGN KEY(org_id, user_id) REFERENCES agent_memory.users (org_id, id) ON DELETE SET NULL (user_id),
        CONSTRAINT ck_sessions_ended_after_started CHECK (ended_at >= started_at),
        CONSTRAINT ck_sessions_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
)""",
    """CREATE INDEX ix_sessions_org_id_agent_id ON agent_memory.sessions (org_id, agent_id)""",
    """CREATE INDEX ix_sessions_org_id_user_id ON agent_memory.sessions (org_id, user_id)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.sessions FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.checkpoints (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        session_id UUID NOT NULL,
        step INTEGER NOT NULL,
        state JSONB DEFAULT '{}'::jsonb NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_checkpoints PRIMARY KEY (org_id, id),
        CONSTRAINT fk_checkpoints_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_checkpoints_org_id_session_id_sessions FOREIGN KEY(org_id, session_id) REFERENCES agent_memory.sessions (org_id, id) ON DELETE CASCADE,
        CONSTRAINT uq_checkpoints_org_id_session_id_step UNIQUE (org_id, session_id, step),
        CONSTRAINT ck_checkpoints_step_nonneg CHECK (step >= 0),
        CONSTRAINT ck_checkpoints_state_is_object CHECK (jsonb_typeof(state) = 'object')
)""",
    """CREATE TABLE agent_memory.data_sources (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        source_name TEXT NOT NULL,
        source_type TEXT NOT NULL,
        source_uri TEXT,
        is_active BOOLEAN DEFAULT true NOT NULL,
        last_ingestion_at TIMESTAMP WITH TIME ZONE,
        metadata JSONB DEFAULT '{}'::jsonb NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_data_sources PRIMARY KEY (org_id, id),
        CONSTRAINT fk_data_sources_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT uq_data_sources_org_id_source_name UNIQUE (org_id, source_name),
        CONSTRAINT ck_data_sources_source_type CHECK (source_type IN ('api', 'database', 'file_system', 'webhook', 'manual')),
        CONSTRAINT ck_data_sources_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.data_sources FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
]

DOWNGRADE = [
    "DROP TABLE agent_memory.data_sources",
    "DROP TABLE agent_memory.checkpoints",
    "DROP TABLE agent_memory.sessions",
    "DROP TABLE agent_memory.directives",
    "DROP TABLE agent_memory.api_tokens",
    "DROP TABLE agent_memory.agents",
    "DROP TABLE agent_memory.users",
    "DROP TABLE agent_memory.projects",
    "DROP TABLE agent_memory.organizations",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
