"""import_and_user_erasure: updated_at kept on request; deleting a user takes what was derived from them.

Two changes for issue 14 (memctl import, memctl erase):

1. ``touch_updated_at()`` leaves ``updated_at`` alone while the transaction has set
   ``memctl.keep_updated_at = 'on'`` (``SET LOCAL``). An import loads the columns of a foreign-key
   cycle (task_contexts.current_stage_id, memories.superseded_by / merged_into) NULL and sets
   them afterwards; without this, that UPDATE would rewrite every such row's updated_at and the
   copy would differ from its source. Every other UPDATE still gets ``now()``.
2. ``BEFORE DELETE ON users``: the user's sessions are deleted (with their checkpoints; the foreign
   key only sets ``sessions.user_id`` NULL), the consolidated memories built from the user's
   memories are deleted (rebuilding them needs a summariser), the memories consolidated into those
   lose the link (``is_consolidated`` false), and the user's memory ids leave every stage memory's
   ``raw_memory_refs``. Before this, deleting a user left all four behind (the right to erasure).
   Skipped when the delete is a cascade of the organisation's (``pg_trigger_depth() > 1``): then
   everything of the organisation goes anyway.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UUID_RE = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

UPGRADE = [
    """CREATE OR REPLACE FUNCTION agent_memory.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF coalesce(current_setting('memctl.keep_updated_at', true), '') <> 'on' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$""",
    f"""CREATE OR REPLACE FUNCTION agent_memory.erase_user_derived() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    gone uuid[];
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    -- sessions.user_id is ON DELETE SET NULL (schema.md): the user's sessions would outlive them
    DELETE FROM agent_memory.sessions s WHERE s.org_id = OLD.org_id AND s.user_id = OLD.id;
    gone := ARRAY(SELECT m.id FROM agent_memory.memories m WHERE m.org_id = OLD.org_id AND m.user_id = OLD.id);
    IF cardinality(gone) = 0 THEN
        RETURN OLD;
    END IF;
    UPDATE agent_memory.memories m SET consolidated_into_id = NULL, is_consolidated = false
     WHERE m.org_id = OLD.org_id AND m.consolidated_into_id IN (
           SELECT c.id FROM agent_memory.consolidated_memories c
            WHERE c.org_id = OLD.org_id AND c.source_memory_ids && gone);
    DELETE FROM agent_memory.consolidated_memories c WHERE c.org_id = OLD.org_id AND c.source_memory_ids && gone;
    UPDATE agent_memory.stage_memories s
       SET raw_memory_refs = (SELECT coalesce(jsonb_agg(r.v ORDER BY r.o), '[]'::jsonb)
                                FROM jsonb_array_elements(s.raw_memory_refs) WITH ORDINALITY AS r(v, o)
                               WHERE NOT (jsonb_typeof(r.v) = 'string' AND r.v #>> '{{}}' ~ '{UUID_RE}'
                                          AND (r.v #>> '{{}}')::uuid = ANY (gone)))
     WHERE s.org_id = OLD.org_id AND EXISTS (
           SELECT 1 FROM jsonb_array_elements_text(s.raw_memory_refs) AS e(ref)
            WHERE e.ref ~ '{UUID_RE}' AND e.ref::uuid = ANY (gone));
    RETURN OLD;
END
$$""",
    "CREATE TRIGGER trg_users_erase_derived BEFORE DELETE ON agent_memory.users "
    "FOR EACH ROW EXECUTE FUNCTION agent_memory.erase_user_derived()",
]

DOWNGRADE = [
    "DROP TRIGGER trg_users_erase_derived ON agent_memory.users",
    "DROP FUNCTION agent_memory.erase_user_derived()",
    """CREATE OR REPLACE FUNCTION agent_memory.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$""",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
