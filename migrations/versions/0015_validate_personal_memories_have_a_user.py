"""validate_personal_memories_have_a_user: VALIDATE CONSTRAINT ck_memories_personal_has_user (0014).

Personal memories without a user, written before 0014, are counted and named first: the revision
stops with the statements that fix them (give them their user, or another tier) instead of a bare
CHECK violation. VALIDATE takes SHARE UPDATE EXCLUSIVE: reads and writes of memories go on.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = [
    """DO $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM agent_memory.memories WHERE tier = 'personal' AND user_id IS NULL;
    IF n > 0 THEN
        RAISE EXCEPTION '% personal memories have no user_id, so erasing a user cannot find them; give them their '
            'user (UPDATE agent_memory.memories SET user_id = ... WHERE ...) or another tier (UPDATE '
            'agent_memory.memories SET tier = ''project'' WHERE tier = ''personal'' AND user_id IS NULL), then run '
            'memctl migrate again', n;
    END IF;
END
$$""",
    "ALTER TABLE agent_memory.memories VALIDATE CONSTRAINT ck_memories_personal_has_user",
]

# Back to 0014's state: the constraint NOT VALID (validation itself cannot be undone in place).
DOWNGRADE = [
    "ALTER TABLE agent_memory.memories DROP CONSTRAINT ck_memories_personal_has_user",
    "ALTER TABLE agent_memory.memories ADD CONSTRAINT ck_memories_personal_has_user "
    "CHECK (tier <> 'personal' OR user_id IS NOT NULL) NOT VALID",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
