"""personal_memories_have_a_user: CHECK (tier <> 'personal' OR user_id IS NOT NULL), NOT VALID.

A personal-tier memory belongs to a user (schema.md, tiers); with a NULL user_id, erasing that user
(issue 14, the right to erasure) cannot find it. Added NOT VALID: new and updated rows are checked at
once, and no scan holds the table; revision 0015 validates the rows already there, in a transaction
of its own (PostgreSQL docs, ALTER TABLE "VALIDATE CONSTRAINT": SHARE UPDATE EXCLUSIVE only).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE agent_memory.memories ADD CONSTRAINT ck_memories_personal_has_user "
    "CHECK (tier <> 'personal' OR user_id IS NOT NULL) NOT VALID",
]

DOWNGRADE = ["ALTER TABLE agent_memory.memories DROP CONSTRAINT ck_memories_personal_has_user"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
