"""governance: memory_access_policies and retention_policies.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE agent_memory.memory_access_policies (
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        org_id UUID,
        policy_name TEXT NOT NULL,
        policy_rules JSONB NOT NULL,
        is_active BOOLEAN DEFAULT true NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_access_policies PRIMARY KEY (id),
        CONSTRAINT fk_memory_access_policies_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT uq_memory_access_policies_org_id_policy_name UNIQUE NULLS NOT DISTINCT (org_id, policy_name),
        CONSTRAINT ck_memory_access_policies_policy_rules_is_object CHECK (jsonb_typeof(policy_rules) = 'object')
)""",
    """CREATE INDEX ix_memory_access_policies_active ON agent_memory.memory_access_policies (org_id) WHERE is_active""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.memory_access_policies FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.retention_policies (
        org_id UUID NOT NULL,
        tier TEXT NOT NULL,
        max_age_days INTEGER NOT NULL,
        age_basis TEXT DEFAULT 'accessed_at' NOT NULL,
        action TEXT DEFAULT 'delete' NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_retention_policies PRIMARY KEY (org_id, tier),
        CONSTRAINT fk_retention_policies_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT ck_retention_policies_tier CHECK (tier IN ('personal', 'project', 'task')),
        CONSTRAINT ck_retention_policies_max_age_days_positive CHECK (max_age_days > 0),
        CONSTRAINT ck_retention_policies_age_basis CHECK (age_basis IN ('accessed_at', 'created_at')),
        CONSTRAINT ck_retention_policies_action CHECK (action IN ('archive', 'delete'))
)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.retention_policies FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
]

DOWNGRADE = [
    "DROP TABLE agent_memory.retention_policies",
    "DROP TABLE agent_memory.memory_access_policies",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
