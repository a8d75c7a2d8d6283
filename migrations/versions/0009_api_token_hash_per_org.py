"""api_token_hash_per_org: api_tokens' token_hash unique per organisation, so every key includes org_id.

schema.md rule 1 wants every key of a tenant table to include org_id (distributable by org_id,
Citus); UNIQUE (token_hash) did not. It becomes UNIQUE (org_id, token_hash), and a plain index on
token_hash keeps the cross-organisation lookup an authentication service makes by hash.

Both indexes are built CONCURRENTLY (api_tokens stays writable) outside the revision's
transaction, with IF NOT EXISTS so a re-run after a failure continues; an INVALID index left by
a failed build is rebuilt by memctl before the next attempt (memctl.migrate.repair_invalid_indexes).
The constraint swap itself is one short transaction: ADD CONSTRAINT ... USING INDEX takes the
finished index without a scan.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE_CONCURRENTLY = [
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_api_tokens_org_id_token_hash ON agent_memory.api_tokens (org_id, token_hash)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_api_tokens_token_hash ON agent_memory.api_tokens (token_hash)",
]
UPGRADE = [
    "ALTER TABLE agent_memory.api_tokens ADD CONSTRAINT uq_api_tokens_org_id_token_hash UNIQUE USING INDEX uq_api_tokens_org_id_token_hash",
    # Reviewed lint exception: the guarantee narrows from unique everywhere to unique per organisation.
    # token_hash is the SHA-256 of a random secret, so two organisations sharing one is a hash collision.
    "-- squawk-ignore ban-drop-constraint\nALTER TABLE agent_memory.api_tokens DROP CONSTRAINT uq_api_tokens_token_hash",
]

DOWNGRADE_CONCURRENTLY = [
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_api_tokens_token_hash ON agent_memory.api_tokens (token_hash)",
]
DOWNGRADE = [
    "ALTER TABLE agent_memory.api_tokens ADD CONSTRAINT uq_api_tokens_token_hash UNIQUE USING INDEX uq_api_tokens_token_hash",
    "ALTER TABLE agent_memory.api_tokens DROP CONSTRAINT uq_api_tokens_org_id_token_hash",
    "DROP INDEX agent_memory.ix_api_tokens_token_hash",
]


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for statement in UPGRADE_CONCURRENTLY:
            op.execute(statement)
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for statement in DOWNGRADE_CONCURRENTLY:
            op.execute(statement)
    for statement in DOWNGRADE:
        op.execute(statement)
