"""graph: memory_versions (with the version trigger), memory_relationships, memory_tags, memory_collections, memory_collection_items.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE agent_memory.memory_versions (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        memory_id UUID NOT NULL,
        version_num INTEGER NOT NULL,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        changed_by TEXT,
        change_reason TEXT,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_versions PRIMARY KEY (org_id, id),
        CONSTRAINT fk_memory_versions_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_versions_org_id_memory_id_memories FOREIGN KEY(org_id, memory_id) REFERENCES agent_memory.memories (org_id, id) ON DELETE CASCADE,
        CONSTRAINT uq_memory_versions_org_id_memory_id_version_num UNIQUE (org_id, memory_id, version_num),
        CONSTRAINT ck_memory_versions_version_num_positive CHECK (version_num >= 1),
        CONSTRAINT ck_memory_versions_content_hash_sha256 CHECK (content_hash ~ '^[0-9a-f]{64}$')
)""",
    """CREATE TABLE agent_memory.memory_relationships (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        source_memory_id UUID NOT NULL,
        target_memory_id UUID NOT NULL,
        relationship_type TEXT NOT NULL,
        confidence_score NUMERIC(4, 3),
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_relationships PRIMARY KEY (org_id, id),
        CONSTRAINT fk_memory_relationships_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_relationships_org_id_source_memory_id_memories FOREIGN KEY(org_id, source_memory_id) REFERENCES agent_memory.memories (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_relationships_org_id_target_memory_id_memories FOREIGN KEY(org_id, target_memory_id) REFERENCES agent_memory.memories (org_id, id) ON DELETE CASCADE,
        CONSTRAINT uq_memory_relationships_org_id_source_memory_id_target__01c3 UNIQUE (org_id, source_memory_id, target_memory_id, relationship_type),
        CONSTRAINT ck_memory_relationships_relationship_type CHECK (relationship_type IN ('references', 'contradicts', 'supports', 'follows', 'related', 'supersedes', 'derived_from')),
        CONSTRAINT ck_memory_relationships_confidence_score_range CHECK (confidence_score >= 0 AND confidence_score <= 1),
        CONSTRAINT ck_memory_relationships_no_self_reference CHECK (source_memory_id <> target_memory_id)
)""",
    """CREATE INDEX ix_memory_relationships_org_id_relationship_type ON agent_memory.memory_relationships (org_id, relationship_type)""",
    """CREATE INDEX ix_memory_relationships_org_id_target_memory_id ON agent_memory.memory_relationships (org_id, target_memory_id)""",
    """CREATE TABLE agent_memory.memory_tags (
        org_id UUID NOT NULL,
        memory_id UUID NOT NULL,
        tag TEXT NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_tags PRIMARY KEY (org_id, memory_id, tag),
        CONSTRAINT fk_memory_tags_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_tags_org_id_memory_id_memories FOREIGN KEY(org_id, memory_id) REFERENCES agent_memory.memories (org_id, id) ON DELETE CASCADE,
        CONSTRAINT ck_memory_tags_tag_format CHECK (tag ~ '^[a-z0-9][a-z0-9_.:-]{0,63}$')
)""",
    """CREATE INDEX ix_memory_tags_org_id_tag ON agent_memory.memory_tags (org_id, tag)""",
    """CREATE TABLE agent_memory.memory_collections (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        user_id UUID NOT NULL,
        collection_type TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_collections PRIMARY KEY (org_id, id),
        CONSTRAINT fk_memory_collections_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_collections_org_id_user_id_users FOREIGN KEY(org_id, user_id) REFERENCES agent_memory.users (org_id, id) ON DELETE CASCADE,
        CONSTRAINT uq_memory_collections_org_id_user_id_name UNIQUE (org_id, user_id, name),
        CONSTRAINT ck_memory_collections_collection_type_length CHECK (char_length(collection_type) >= 1 AND char_length(collection_type) <= 50),
        CONSTRAINT ck_memory_collections_name_length CHECK (char_length(name) >= 1 AND char_length(name) <= 255)
)""",
    """CREATE INDEX ix_memory_collections_org_id_collection_type ON agent_memory.memory_collections (org_id, collection_type)""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.memory_collections FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.memory_collection_items (
        org_id UUID NOT NULL,
        collection_id UUID NOT NULL,
        memory_id UUID NOT NULL,
        added_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_collection_items PRIMARY KEY (org_id, collection_id, memory_id),
        CONSTRAINT fk_memory_collection_items_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_collection_items_org_id_collection_id_memory__2a69 FOREIGN KEY(org_id, collection_id) REFERENCES agent_memory.memory_collections (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_collection_items_org_id_memory_id_memories FOREIGN KEY(org_id, memory_id) REFERENCES agent_memory.memories (org_id, id) ON DELETE CASCADE
)""",
    """CREATE INDEX ix_memory_collection_items_org_id_memory_id ON agent_memory.memory_collection_items (org_id, memory_id)""",    # The previous content of a memory is kept whenever content changes (S3 versions).
    """CREATE FUNCTION agent_memory.record_memory_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO agent_memory.memory_versions
        (org_id, memory_id, version_num, content, content_hash, changed_by, change_reason)
    SELECT OLD.org_id, OLD.id, coalesce(max(v.version_num), 0) + 1, OLD.content, OLD.content_hash,
           nullif(current_setting('app.changed_by', true), ''),
           nullif(current_setting('app.change_reason', true), '')
      FROM agent_memory.memory_versions v
     WHERE v.org_id = OLD.org_id AND v.memory_id = OLD.id;
    RETURN NEW;
END
$$""",
    """CREATE TRIGGER trg_memories_record_version AFTER UPDATE OF content ON agent_memory.memories FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content) EXECUTE FUNCTION agent_memory.record_memory_version()""",
]

DOWNGRADE = [
    "DROP TRIGGER trg_memories_record_version ON agent_memory.memories",
    "DROP FUNCTION agent_memory.record_memory_version()",
    "DROP TABLE agent_memory.memory_collection_items",
    "DROP TABLE agent_memory.memory_collections",
    "DROP TABLE agent_memory.memory_tags",
    "DROP TABLE agent_memory.memory_relationships",
    "DROP TABLE agent_memory.memory_versions",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
