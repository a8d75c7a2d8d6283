"""maintenance_at_scale: archiving no longer re-inserts into HNSW; maintenance indexes per organisation.

Measured at 100,000 memories (issue 15): ``maintain`` archived a batch of 953 rows in 4.9 s, 4.7 s of
it in revision 0012's trigger that flips ``memory_embeddings.searchable``. A 1.6 KB embedding row
has no room on its page for a HOT update, so each flip inserted the new row version into the HNSW
graph, which costs about a search at ef_construction and grows with the graph (15 ms a row at
1,000,000). And the expire and purge batches scanned every organisation's due rows, the ones already
archived included, for each batch of each organisation: quadratic in the rows due.

- Each HNSW index of ``memory_embeddings`` becomes partial on ``searchable`` too (``WHERE model_id =
  N AND searchable``; pgvector README, "Filtering": partial indexes). A row that stops being
  searchable gets no new entry; the same batch took 0.37 s. Searches already filter on
  ``searchable`` (revision 0012), so they use the new index unchanged; archived and deleted rows no
  longer sit in the graph. Making a memory active again inserts it (as every change did before).
  Online, each is built ``CONCURRENTLY`` beside the old one under a temporary name (``..._0018``,
  IF NOT EXISTS, so a re-run after a failure goes on; memctl repairs an INVALID leftover first), with
  ``maintenance_work_mem`` raised to 1 GB if lower; then one short transaction drops the old index
  and renames the new. Offline (``--sql``) the catalog is not known, so the SQL is a DO block that
  does the same without CONCURRENTLY: writes to memory_embeddings wait for the build there.
  consolidated_memory_embeddings has no ``searchable``: its indexes are unchanged.
- ``ix_memories_expires_at (expires_at) WHERE expires_at IS NOT NULL`` becomes
  ``(org_id, expires_at) WHERE expires_at IS NOT NULL AND status = 'active' AND deleted_at IS NULL``:
  expire's batches read only their organisation's rows that are still due.
- ``ix_memories_deleted_at (deleted_at) WHERE deleted_at IS NOT NULL`` becomes
  ``(org_id, deleted_at) WHERE deleted_at IS NOT NULL``: purge's batches read only their organisation.

Revision ID: 0018
Revises: 0017
"""

import re

from alembic import op
from sqlalchemy import text

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

S = "agent_memory"
HNSW = re.compile(r"^ix_memory_embeddings_hnsw_(\d+)$")
PLAIN = " WHERE (model_id = {id})"
SEARCHABLE = " WHERE ((model_id = {id}) AND searchable)"

# Built CONCURRENTLY (memories stays writable), IF NOT EXISTS / IF EXISTS so a re-run goes on (as in 0009).
UPGRADE_CONCURRENTLY = [
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_memories_org_id_expires_at ON {S}.memories (org_id, expires_at) "
    "WHERE expires_at IS NOT NULL AND status = 'active' AND deleted_at IS NULL",
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_memories_org_id_deleted_at ON {S}.memories (org_id, deleted_at) "
    "WHERE deleted_at IS NOT NULL",
    f"DROP INDEX CONCURRENTLY IF EXISTS {S}.ix_memories_expires_at",
    f"DROP INDEX CONCURRENTLY IF EXISTS {S}.ix_memories_deleted_at",
]
DOWNGRADE_CONCURRENTLY = [
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_memories_expires_at ON {S}.memories (expires_at) "
    "WHERE expires_at IS NOT NULL",
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_memories_deleted_at ON {S}.memories (deleted_at) "
    "WHERE deleted_at IS NOT NULL",
    f"DROP INDEX CONCURRENTLY IF EXISTS {S}.ix_memories_org_id_expires_at",
    f"DROP INDEX CONCURRENTLY IF EXISTS {S}.ix_memories_org_id_deleted_at",
]

INDEXES = f"""
SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = '{S}.memory_embeddings'::regclass AND c.relname ~ '^ix_memory_embeddings_hnsw_[0-9]+$'
 ORDER BY c.relname"""
DEFINITION = f"SELECT pg_get_indexdef(('{S}.' || quote_ident(:name))::regclass)"
RAISE_MEMORY = ("SELECT set_config('maintenance_work_mem', '1GB', false) WHERE pg_size_bytes("
                "current_setting('maintenance_work_mem')) < pg_size_bytes('1GB')")
# Offline: the same swap in one transaction, without CONCURRENTLY (CREATE INDEX blocks writes, not reads).
OFFLINE = """DO $rebuild$
DECLARE r record; old text; new text;
BEGIN
    IF pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('1GB') THEN
        PERFORM set_config('maintenance_work_mem', '1GB', true);
    END IF;
    FOR r IN SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def, substring(c.relname FROM '[0-9]+$') AS model
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'agent_memory.memory_embeddings'::regclass
                AND c.relname ~ '^ix_memory_embeddings_hnsw_[0-9]+$' ORDER BY 1 LOOP
        old := format('{old}', r.model);
        new := format('{new}', r.model);
        IF right(r.def, length(old)) <> old THEN
            RAISE EXCEPTION 'agent_memory.% is not the index revision 0018 expects: %', r.name, r.def;
        END IF;
        EXECUTE replace(left(r.def, length(r.def) - length(old)), format('INDEX %s ON', r.name),
                        format('INDEX %s_0018 ON', r.name)) || new;
        EXECUTE format('DROP INDEX agent_memory.%I', r.name);
        EXECUTE format('ALTER INDEX agent_memory.%I RENAME TO %I', r.name || '_0018', r.name);
    END LOOP;
END
$rebuild$"""


def _rebuild(old: str, new: str) -> None:
    """Rebuild each HNSW index of memory_embeddings with the predicate ``new`` (a format string of
    the model id) instead of ``old``. An index whose definition does not end in ``old`` is not
    memctl's: the revision stops with an error naming it."""
    if op.get_context().as_sql:
        op.execute(OFFLINE.format(old=old.format(id="%s"), new=new.format(id="%s")))
        return
    conn = op.get_bind()
    names = conn.execute(text(INDEXES)).scalars().all()
    with op.get_context().autocommit_block():
        conn.execute(text(RAISE_MEMORY))
        for name in names:
            model = HNSW.match(name).group(1)
            tail_old, tail_new = old.format(id=model), new.format(id=model)
            definition = conn.execute(text(DEFINITION), {"name": name}).scalar()
            if not definition.endswith(tail_old):
                raise RuntimeError(f"{S}.{name} is not the index revision 0018 expects: {definition}")
            build = definition[: -len(tail_old)] + tail_new
            op.execute(build.replace(f"CREATE INDEX {name} ON", f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name}_0018 ON", 1))
        conn.execute(text("RESET maintenance_work_mem"))
    for name in names:
        op.execute(f"DROP INDEX {S}.{name}")
        op.execute(f"ALTER INDEX {S}.{name}_0018 RENAME TO {name}")


def _concurrently(statements: list[str]) -> None:
    with op.get_context().autocommit_block():
        for statement in statements:
            op.execute(statement)


def upgrade() -> None:
    _concurrently(UPGRADE_CONCURRENTLY)
    _rebuild(PLAIN, SEARCHABLE)


def downgrade() -> None:
    _rebuild(SEARCHABLE, PLAIN)
    _concurrently(DOWNGRADE_CONCURRENTLY)
