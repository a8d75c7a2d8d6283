"""embedding_searchable: memory_embeddings.searchable, kept by triggers, so search returns k rows.

A search filtered archived and deleted memories after taking the 2k nearest embeddings, so it
returned fewer than k when the nearest belonged to them (issue 12). The embedding row now carries
``searchable`` (the memory is active and not deleted), kept by two triggers: one on memories when
its status or deleted_at changes it, one on memory_embeddings for each new row. The search filters
on it inside the index scan, and pgvector's iterative scan goes on until k searchable rows are found.

The column has a constant default (no table rewrite, PostgreSQL 11+); only the embeddings of memories
that are not active are updated. The owner is subject to row-level security (FORCE), so it is
lifted for the backfill and forced again in the same transaction (no other session sees it lifted).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE agent_memory.memory_embeddings ADD COLUMN searchable BOOLEAN DEFAULT true NOT NULL",
    """CREATE OR REPLACE FUNCTION agent_memory.sync_memory_searchable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE agent_memory.memory_embeddings SET searchable = (NEW.status = 'active' AND NEW.deleted_at IS NULL)
     WHERE org_id = NEW.org_id AND memory_id = NEW.id;
    RETURN NEW;
END
$$""",
    "CREATE TRIGGER trg_memories_sync_searchable AFTER UPDATE OF status, deleted_at ON agent_memory.memories "
    "FOR EACH ROW WHEN ((OLD.status = 'active' AND OLD.deleted_at IS NULL) IS DISTINCT FROM "
    "(NEW.status = 'active' AND NEW.deleted_at IS NULL)) EXECUTE FUNCTION agent_memory.sync_memory_searchable()",
    """CREATE OR REPLACE FUNCTION agent_memory.memory_embedding_searchable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    SELECT m.status = 'active' AND m.deleted_at IS NULL INTO NEW.searchable
      FROM agent_memory.memories m WHERE m.org_id = NEW.org_id AND m.id = NEW.memory_id;
    NEW.searchable := coalesce(NEW.searchable, true);
    RETURN NEW;
END
$$""",
    "CREATE TRIGGER trg_memory_embeddings_searchable BEFORE INSERT ON agent_memory.memory_embeddings "
    "FOR EACH ROW EXECUTE FUNCTION agent_memory.memory_embedding_searchable()",
    "ALTER TABLE agent_memory.memories NO FORCE ROW LEVEL SECURITY",
    "ALTER TABLE agent_memory.memory_embeddings NO FORCE ROW LEVEL SECURITY",
    "UPDATE agent_memory.memory_embeddings e SET searchable = false FROM agent_memory.memories m "
    "WHERE m.org_id = e.org_id AND m.id = e.memory_id AND NOT (m.status = 'active' AND m.deleted_at IS NULL)",
    "ALTER TABLE agent_memory.memories FORCE ROW LEVEL SECURITY",
    "ALTER TABLE agent_memory.memory_embeddings FORCE ROW LEVEL SECURITY",
]

DOWNGRADE = [
    "DROP TRIGGER trg_memory_embeddings_searchable ON agent_memory.memory_embeddings",
    "DROP FUNCTION agent_memory.memory_embedding_searchable()",
    "DROP TRIGGER trg_memories_sync_searchable ON agent_memory.memories",
    "DROP FUNCTION agent_memory.sync_memory_searchable()",
    "ALTER TABLE agent_memory.memory_embeddings DROP COLUMN searchable",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
