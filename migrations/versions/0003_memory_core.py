"""memory_core: embedding_models (with the default model), memories, memory_embeddings and the default model's HNSW index.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE agent_memory.embedding_models (
        id SMALLINT GENERATED ALWAYS AS IDENTITY,
        name TEXT NOT NULL,
        dim SMALLINT NOT NULL,
        distance TEXT DEFAULT 'cosine' NOT NULL,
        index_storage TEXT DEFAULT 'vector' NOT NULL,
        hnsw_m SMALLINT DEFAULT 16 NOT NULL,
        hnsw_ef_construction SMALLINT DEFAULT 64 NOT NULL,
        is_default BOOLEAN DEFAULT false NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_embedding_models PRIMARY KEY (id),
        CONSTRAINT uq_embedding_models_name UNIQUE (name),
        CONSTRAINT uq_embedding_models_id_dim UNIQUE (id, dim),
        CONSTRAINT ck_embedding_models_dim_range CHECK (dim >= 1 AND dim <= 16000),
        CONSTRAINT ck_embedding_models_distance CHECK (distance IN ('cosine', 'l2', 'inner_product')),
        CONSTRAINT ck_embedding_models_index_storage CHECK (index_storage IN ('vector', 'halfvec')),
        CONSTRAINT ck_embedding_models_hnsw_dim_limit CHECK ((index_storage = 'vector' AND dim <= 2000) OR (index_storage = 'halfvec' AND dim <= 4000)),
        CONSTRAINT ck_embedding_models_hnsw_m_range CHECK (hnsw_m >= 2 AND hnsw_m <= 100),
        CONSTRAINT ck_embedding_models_hnsw_ef_construction_range CHECK (hnsw_ef_construction >= 2 * hnsw_m AND hnsw_ef_construction <= 1000)
)""",
    """CREATE UNIQUE INDEX uq_embedding_models_is_default ON agent_memory.embedding_models (is_default) WHERE is_default""",
    """CREATE TABLE agent_memory.memories (
        org_id UUID NOT NULL,
        id UUID DEFAULT gen_random_uuid() NOT NULL,
        agent_id UUID NOT NULL,
        user_id UUID,
        session_id UUID,
        project_id UUID,
        stage_id UUID,
        data_source_id UUID,
        tier TEXT DEFAULT 'task' NOT NULL,
        category TEXT NOT NULL,
        source TEXT DEFAULT 'extracted' NOT NULL,
        origin TEXT DEFAULT 'conversation' NOT NULL,
        status TEXT DEFAULT 'active' NOT NULL,
        content TEXT NOT NULL,
        content_hash TEXT GENERATED ALWAYS AS (agent_memory.sha256_hex(content)) STORED NOT NULL,
        content_tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED NOT NULL,
        confidence NUMERIC(4, 3) DEFAULT 0.800 NOT NULL,
        usefulness_score NUMERIC(4, 3) DEFAULT 0.500 NOT NULL,
        retrieval_count INTEGER DEFAULT 0 NOT NULL,
        is_critical BOOLEAN DEFAULT false NOT NULL,
        actions JSONB DEFAULT '[]'::jsonb NOT NULL,
        is_consolidated BOOLEAN DEFAULT false NOT NULL,
        consolidated_into_id UUID,
        superseded_by UUID,
        merged_into UUID,
        last_retrieved_at TIMESTAMP WITH TIME ZONE,
        last_injected_at TIMESTAMP WITH TIME ZONE,
        accessed_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        expires_at TIMESTAMP WITH TIME ZONE,
        deleted_at TIMESTAMP WITH TIME ZONE,
        metadata JSONB DEFAULT '{}'::jsonb NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memories PRIMARY KEY (org_id, id),
        CONSTRAINT fk_memories_org_id_organizations FOREIGN KEY(org_id) REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_memories_org_id_agent_id_agents FOREIGN KEY(org_id, agent_id) REFERENCES agent_memory.agents (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_memories_org_id_user_id_users FOREIGN KEY(org_id, user_id) REFERENCES agent_memory.users (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_memories_org_id_session_id_sessions FOREIGN KEY(org_id, session_id) REFERENCES agent_memory.sessions (org_id, id) ON DELETE SET NULL (session_id),
        CONSTRAINT fk_memories_org_id_project_id_projects FOREIGN KEY(org_id, project_id) REFERENCES agent_memory.projects (org_id, id) ON DELETE SET NULL (project_id),
        CONSTRAINT fk_memories_org_id_data_source_id_data_sources FOREIGN KEY(org_id, data_source_id) REFERENCES agent_memory.data_sources (org_id, id) ON DELETE SET NULL (data_source_id),
        CONSTRAINT fk_memories_org_id_superseded_by_memories FOREIGN KEY(org_id, superseded_by) REFERENCES agent_memory.memories (org_id, id) ON DELETE SET NULL (superseded_by),
        CONSTRAINT fk_memories_org_id_merged_into_memories FOREIGN KEY(org_id, merged_into) REFERENCES agent_memory.memories (org_id, id) ON DELETE SET NULL (merged_into),
        CONSTRAINT ck_memories_tier CHECK (tier IN ('personal', 'project', 'task')),
        CONSTRAINT ck_memories_category CHECK (category IN ('factual', 'preference', 'behavioral', 'episodic', 'procedural')),
        CONSTRAINT ck_memories_source CHECK (source IN ('extracted', 'user_provided', 'imported', 'inferred')),
        CONSTRAINT ck_memories_origin CHECK (origin IN ('conversation', 'tool_output', 'document', 'observation', 'external')),
        CONSTRAINT ck_memories_status CHECK (status IN ('active', 'superseded', 'merged', 'archived', 'pending_review')),
        CONSTRAINT ck_memories_content_length CHECK (char_length(content) >= 1 AND char_length(content) <= 8192),
        CONSTRAINT ck_memories_confidence_range CHECK (confidence >= 0 AND confidence <= 1),
        CONSTRAINT ck_memories_usefulness_score_range CHECK (usefulness_score >= 0 AND usefulness_score <= 1),
        CONSTRAINT ck_memories_retrieval_count_nonneg CHECK (retrieval_count >= 0),
        CONSTRAINT ck_memories_actions_is_array CHECK (jsonb_typeof(actions) = 'array'),
        CONSTRAINT ck_memories_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
        CONSTRAINT ck_memories_not_superseded_by_self CHECK (superseded_by <> id),
        CONSTRAINT ck_memories_not_merged_into_self CHECK (merged_into <> id)
)""",
    """CREATE INDEX ix_memories_consolidation_backlog ON agent_memory.memories (org_id) WHERE NOT is_consolidated""",
    """CREATE INDEX ix_memories_content_tsv ON agent_memory.memories USING gin (content_tsv)""",
    """CREATE INDEX ix_memories_deleted_at ON agent_memory.memories (deleted_at) WHERE deleted_at IS NOT NULL""",
    """CREATE INDEX ix_memories_expires_at ON agent_memory.memories (expires_at) WHERE expires_at IS NOT NULL""",
    """CREATE INDEX ix_memories_metadata ON agent_memory.memories USING gin (metadata jsonb_path_ops)""",
    """CREATE INDEX ix_memories_org_id_agent_id_created_at ON agent_memory.memories (org_id, agent_id, created_at DESC)""",
    """CREATE INDEX ix_memories_org_id_category ON agent_memory.memories (org_id, category)""",
    """CREATE INDEX ix_memories_org_id_consolidated_into_id ON agent_memory.memories (org_id, consolidated_into_id)""",
    """CREATE INDEX ix_memories_org_id_data_source_id ON agent_memory.memories (org_id, data_source_id)""",
    """CREATE INDEX ix_memories_org_id_merged_into ON agent_memory.memories (org_id, merged_into)""",
    """CREATE INDEX ix_memories_org_id_project_id ON agent_memory.memories (org_id, project_id)""",
    """CREATE INDEX ix_memories_org_id_session_id ON agent_memory.memories (org_id, session_id)""",
    """CREATE INDEX ix_memories_org_id_stage_id ON agent_memory.memories (org_id, stage_id)""",
    """CREATE INDEX ix_memories_org_id_superseded_by ON agent_memory.memories (org_id, superseded_by)""",
    """CREATE INDEX ix_memories_org_id_tier_accessed_at ON agent_memory.memories (org_id, tier, accessed_at)""",
    """CREATE INDEX ix_memories_org_id_user_id ON agent_memory.memories (org_id, user_id)""",
    """CREATE UNIQUE INDEX uq_memories_org_id_agent_id_content_hash ON agent_memory.memories (org_id, agent_id, content_hash) WHERE status = 'active' AND deleted_at IS NULL""",
    """CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.memories FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()""",
    """CREATE TABLE agent_memory.memory_embeddings (
        org_id UUID NOT NULL,
        memory_id UUID NOT NULL,
        model_id SMALLINT NOT NULL,
        dim SMALLINT NOT NULL,
        embedding VECTOR NOT NULL,
        external_vector_id TEXT,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_memory_embeddings PRIMARY KEY (org_id, memory_id, model_id),
        CONSTRAINT fk_memory_embeddings_org_id_memory_id_memories FOREIGN KEY(org_id, memory_id) REFERENCES agent_memory.memories (org_id, id) ON DELETE CASCADE,
        CONSTRAINT fk_memory_embeddings_model_id_dim_embedding_models FOREIGN KEY(model_id, dim) REFERENCES agent_memory.embedding_models (id, dim) ON DELETE RESTRICT,
        CONSTRAINT ck_memory_embeddings_embedding_dim CHECK (vector_dims(embedding) = dim)
)""",
    """CREATE INDEX ix_memory_embeddings_model_id_dim ON agent_memory.memory_embeddings (model_id, dim)""",    # The default embedding space (S3's Vector(384)); a new table, so its identity gives id 1.
    """INSERT INTO agent_memory.embedding_models (name, dim, distance, index_storage, hnsw_m, hnsw_ef_construction, is_default)
VALUES ('sentence-transformers/all-MiniLM-L6-v2', 384, 'cosine', 'vector', 16, 64, true)""",
    # Its HNSW partial expression index (schema.md "Embeddings"; S5: m = 16, ef_construction = 64).
    """CREATE INDEX ix_memory_embeddings_hnsw_1 ON agent_memory.memory_embeddings USING hnsw (CAST(embedding AS VECTOR(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64) WHERE model_id = 1""",
]

DOWNGRADE = [
    "DROP TABLE agent_memory.memory_embeddings",
    "DROP TABLE agent_memory.memories",
    "DROP TABLE agent_memory.embedding_models",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
