"""model_lifecycle: a model state, a per-organisation model, and the content hash of each embedding.

For ``memctl models`` (issue 13): changing the embedding model with zero downtime.

- ``embedding_models.name``: 1 to 200 characters, no control character, no blank at either end.
- ``embedding_models.state``: registered (backfilling, no index required) -> ready (valid HNSW
  indexes; may be a default) -> retiring (being removed). Existing models are ready, unless their
  index on memory_embeddings is missing (then registered). A default model must be ready (CHECK).
- ``organization_models``: an organisation's model when it is not the global default. memory_app
  may read its organisation's row (tenant_isolation) but not write it: only memctl_admin switches
  a tenant's model, through set-default's checks.
- ``content_hash`` on both embedding tables: the hash of the content the vector was computed from.
  No row is rewritten (an UPDATE of every embedding would re-insert each one into the HNSW
  index): NULL stands for "the content when it was written, unchanged since", and a trigger on
  each owner table writes the old hash into the NULL rows when the content changes, so the vector
  shows as stale instead of passing for current.
- ``memory_embeddings.searchable`` loses its default, and trg_memory_embeddings_searchable (0012)
  runs only WHEN the inserted row leaves it NULL: a writer that joins the memory anyway (backfill,
  seed, the repositories) passes it and saves the trigger's lookup per row (a quarter of a
  backfill's insert time, measured). The search rechecks the memory, so a wrong flag can only hide
  a row, never return a deleted one; check-constraints reports it (searchable_mismatch).

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE agent_memory.embedding_models ADD COLUMN state TEXT DEFAULT 'ready' NOT NULL "
    "CONSTRAINT ck_embedding_models_state CHECK (state IN ('registered', 'ready', 'retiring')) "
    "CONSTRAINT ck_embedding_models_default_is_ready CHECK (NOT is_default OR state = 'ready')",
    "ALTER TABLE agent_memory.embedding_models ALTER COLUMN state SET DEFAULT 'registered'",
    # a model name is printed in tables and logs: no control characters (terminal escapes), no blanks
    # around it (' e5' and 'e5' would be two models). A name registered before that breaks the rule is
    # named, with the statement that renames it, instead of a bare CHECK violation.
    """DO $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(quote_literal(name), ', ') INTO bad FROM agent_memory.embedding_models
     WHERE NOT (length(name) >= 1 AND length(name) <= 200 AND name = btrim(name) AND name !~ '[[:cntrl:]]');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'embedding model name(s) % hold control characters or blanks at either end; rename them '
            'first, e.g. UPDATE agent_memory.embedding_models SET name = btrim(name) WHERE name <> btrim(name)', bad;
    END IF;
END
$$""",
    # Reviewed lint exception: a table of a few rows.
    "-- squawk-ignore constraint-missing-not-valid\nALTER TABLE agent_memory.embedding_models ADD CONSTRAINT "
    "ck_embedding_models_name_format CHECK (length(name) >= 1 AND length(name) <= 200 AND name = btrim(name) "
    "AND name !~ '[[:cntrl:]]')",
    "UPDATE agent_memory.embedding_models SET state = 'registered' WHERE NOT is_default "
    "AND to_regclass('agent_memory.ix_memory_embeddings_hnsw_' || id) IS NULL",
    """CREATE TABLE agent_memory.organization_models (
        org_id UUID NOT NULL,
        model_id SMALLINT NOT NULL,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_organization_models PRIMARY KEY (org_id),
        CONSTRAINT fk_organization_models_org_id_organizations FOREIGN KEY(org_id)
            REFERENCES agent_memory.organizations (id) ON DELETE CASCADE,
        CONSTRAINT fk_organization_models_model_id_embedding_models FOREIGN KEY(model_id)
            REFERENCES agent_memory.embedding_models (id) ON DELETE RESTRICT
    )""",
    "CREATE INDEX ix_organization_models_model_id ON agent_memory.organization_models (model_id)",
    "CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON agent_memory.organization_models "
    "FOR EACH ROW EXECUTE FUNCTION agent_memory.touch_updated_at()",
    "ALTER TABLE agent_memory.organization_models ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE agent_memory.organization_models FORCE ROW LEVEL SECURITY",
    "CREATE POLICY tenant_isolation ON agent_memory.organization_models TO memory_app "
    "USING (org_id = agent_memory.current_org_id()) WITH CHECK (org_id = agent_memory.current_org_id())",
    "CREATE POLICY memctl_admin_all ON agent_memory.organization_models TO memctl_admin "
    "USING (true) WITH CHECK (true)",
    "GRANT SELECT ON agent_memory.organization_models TO memory_app",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON agent_memory.organization_models TO memctl_admin",
    """DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON agent_memory.organization_models TO memctl_admin';
    END IF;
END
$$""",
    # an insert that leaves searchable out gets NULL, which the trigger below fills: no client breaks
    "-- squawk-ignore ban-drop-default\nALTER TABLE agent_memory.memory_embeddings ALTER COLUMN searchable DROP DEFAULT",
    "DROP TRIGGER trg_memory_embeddings_searchable ON agent_memory.memory_embeddings",
    "CREATE TRIGGER trg_memory_embeddings_searchable BEFORE INSERT ON agent_memory.memory_embeddings "
    "FOR EACH ROW WHEN (NEW.searchable IS NULL) EXECUTE FUNCTION agent_memory.memory_embedding_searchable()",
    "ALTER TABLE agent_memory.memory_embeddings ADD COLUMN content_hash TEXT "
    "CONSTRAINT ck_memory_embeddings_content_hash_sha256 CHECK (content_hash ~ '^[0-9a-f]{64}$')",
    "ALTER TABLE agent_memory.consolidated_memory_embeddings ADD COLUMN content_hash TEXT "
    "CONSTRAINT ck_consolidated_memory_embeddings_content_hash_sha256 CHECK (content_hash ~ '^[0-9a-f]{64}$')",
    """CREATE OR REPLACE FUNCTION agent_memory.freeze_memory_embeddings_hash() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE agent_memory.memory_embeddings SET content_hash = OLD.content_hash
     WHERE org_id = OLD.org_id AND memory_id = OLD.id AND content_hash IS NULL;
    RETURN NEW;
END
$$""",
    "CREATE TRIGGER trg_freeze_embedding_hash AFTER UPDATE OF content ON agent_memory.memories "
    "FOR EACH ROW WHEN (OLD.content_hash IS DISTINCT FROM NEW.content_hash) "
    "EXECUTE FUNCTION agent_memory.freeze_memory_embeddings_hash()",
    """CREATE OR REPLACE FUNCTION agent_memory.freeze_consolidated_memory_embeddings_hash() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE agent_memory.consolidated_memory_embeddings SET content_hash = OLD.content_hash
     WHERE org_id = OLD.org_id AND consolidated_memory_id = OLD.id AND content_hash IS NULL;
    RETURN NEW;
END
$$""",
    "CREATE TRIGGER trg_freeze_embedding_hash AFTER UPDATE OF content ON agent_memory.consolidated_memories "
    "FOR EACH ROW WHEN (OLD.content_hash IS DISTINCT FROM NEW.content_hash) "
    "EXECUTE FUNCTION agent_memory.freeze_consolidated_memory_embeddings_hash()",
]

DOWNGRADE = [
    "DROP TRIGGER trg_freeze_embedding_hash ON agent_memory.consolidated_memories",
    "DROP FUNCTION agent_memory.freeze_consolidated_memory_embeddings_hash()",
    "DROP TRIGGER trg_freeze_embedding_hash ON agent_memory.memories",
    "DROP FUNCTION agent_memory.freeze_memory_embeddings_hash()",
    "ALTER TABLE agent_memory.consolidated_memory_embeddings DROP COLUMN content_hash",
    "ALTER TABLE agent_memory.memory_embeddings DROP COLUMN content_hash",
    "DROP TRIGGER trg_memory_embeddings_searchable ON agent_memory.memory_embeddings",
    "CREATE TRIGGER trg_memory_embeddings_searchable BEFORE INSERT ON agent_memory.memory_embeddings "
    "FOR EACH ROW EXECUTE FUNCTION agent_memory.memory_embedding_searchable()",
    "ALTER TABLE agent_memory.memory_embeddings ALTER COLUMN searchable SET DEFAULT true",
    "DROP TABLE agent_memory.organization_models",
    "ALTER TABLE agent_memory.embedding_models DROP CONSTRAINT ck_embedding_models_name_format",
    "ALTER TABLE agent_memory.embedding_models DROP CONSTRAINT ck_embedding_models_default_is_ready",
    "ALTER TABLE agent_memory.embedding_models DROP CONSTRAINT ck_embedding_models_state",
    "ALTER TABLE agent_memory.embedding_models DROP COLUMN state",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
