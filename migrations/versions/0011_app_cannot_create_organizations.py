"""app_cannot_create_organizations: memory_app loses INSERT on organizations.

Provisioning an organisation is an administrator's job (memctl's roles, memctl_admin). With INSERT,
a tenant could create organisations, and the unique-slug error told it which slugs other
organisations have. memory_app keeps SELECT, UPDATE and DELETE of its own organisation's row
(tenant_isolation).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = ["REVOKE INSERT ON agent_memory.organizations FROM memory_app"]

DOWNGRADE = ["GRANT INSERT ON agent_memory.organizations TO memory_app"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
