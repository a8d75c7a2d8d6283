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
  Every index's definition is checked first: one already in the target shape is left alone, one
  in neither shape stops the revision before anything is built (a one-line error naming it).
  Online, each is built ``CONCURRENTLY`` beside the old one under a temporary name (``..._0018``,
  IF NOT EXISTS, so a re-run after a failure goes on; a leftover ``_0018`` that is INVALID or of the
  other shape is dropped first), with ``maintenance_work_mem`` sized to the graph (rows x (vector +
  neighbour lists + element overhead) x 1.25, memctl.db.build_memory's estimate) up to 1 GB and never
  below the session's setting (pgvector's parallel build allocates all of it as shared memory); then
  one short transaction drops the old index and renames the new. Offline (``--sql``) the catalog is
  not known, so the SQL is a DO block that does the same without CONCURRENTLY: writes to
  memory_embeddings wait for the build there.
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
SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = '{S}.memory_embeddings'::regclass AND c.relname ~ '^ix_memory_embeddings_hnsw_[0-9]+$'
 ORDER BY c.relname"""
LEFTOVER = f"""
SELECT x.indisvalid, pg_get_indexdef(c.oid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
 WHERE c.relnamespace = '{S}'::regnamespace AND c.relname = :name"""
# The graph estimate of memctl.db.build_memory (frozen here), in kB, for the rows the new predicate admits.
GRAPH_KB = f"""
SELECT ceil(count(*) * ((CASE m.index_storage WHEN 'halfvec' THEN 2 ELSE 4 END) * m.dim + 8
                        + 2 * m.hnsw_m * (1 + 1.0 / greatest(m.hnsw_m - 1, 1)) * 16 + 100) * 1.25 / 1024)::bigint
  FROM {S}.embedding_models m LEFT JOIN {S}.memory_embeddings e ON e.model_id = m.id AND {{admits}}
 WHERE m.id = :model GROUP BY m.index_storage, m.dim, m.hnsw_m"""
SET_MEMORY = ("SELECT set_config('maintenance_work_mem', greatest(pg_size_bytes(current_setting("
              "'maintenance_work_mem')) / 1024, least(:kb, 1048576))::text || 'kB', false)")
STOP = "DO $stop$ BEGIN RAISE EXCEPTION '%', {message}; END $stop$"
# Offline: the same checks and swap in one transaction, without CONCURRENTLY (CREATE INDEX blocks writes).
OFFLINE = """DO $rebuild$
DECLARE r record; old text; new text; kb bigint; base text := current_setting('maintenance_work_mem');
BEGIN
    FOR r IN SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def, substring(c.relname FROM '[0-9]+$') AS model
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'agent_memory.memory_embeddings'::regclass
                AND c.relname ~ '^ix_memory_embeddings_hnsw_[0-9]+$' ORDER BY 1 LOOP
        IF right(r.def, length(format('{old}', r.model))) <> format('{old}', r.model)
           AND right(r.def, length(format('{new}', r.model))) <> format('{new}', r.model) THEN
            RAISE EXCEPTION 'agent_memory.% is not an index revision 0018 knows: %', r.name, r.def;
        END IF;
    END LOOP;
    FOR r IN SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def, substring(c.relname FROM '[0-9]+$') AS model
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'agent_memory.memory_embeddings'::regclass
                AND c.relname ~ '^ix_memory_embeddings_hnsw_[0-9]+$' ORDER BY 1 LOOP
        old := format('{old}', r.model);
        new := format('{new}', r.model);
        CONTINUE WHEN right(r.def, length(old)) <> old;
        SELECT ceil(count(*) * ((CASE m.index_storage WHEN 'halfvec' THEN 2 ELSE 4 END) * m.dim + 8
                    + 2 * m.hnsw_m * (1 + 1.0 / greatest(m.hnsw_m - 1, 1)) * 16 + 100) * 1.25 / 1024)::bigint
          INTO kb FROM agent_memory.embedding_models m
          LEFT JOIN agent_memory.memory_embeddings e ON e.model_id = m.id AND {admits}
         WHERE m.id = r.model::int GROUP BY m.index_storage, m.dim, m.hnsw_m;
        PERFORM set_config('maintenance_work_mem', greatest(pg_size_bytes(base) / 1024,
                           least(coalesce(kb, 0), 1048576))::text || 'kB', true);
        EXECUTE format('DROP INDEX IF EXISTS agent_memory.%I', r.name || '_0018');
        EXECUTE replace(left(r.def, length(r.def) - length(old)), format('INDEX %s ON', r.name),
                        format('INDEX %s_0018 ON', r.name)) || new;
        EXECUTE format('DROP INDEX agent_memory.%I', r.name);
        EXECUTE format('ALTER INDEX agent_memory.%I RENAME TO %I', r.name || '_0018', r.name);
    END LOOP;
    PERFORM set_config('maintenance_work_mem', base, true);
END
$rebuild$"""


def _plan(old: str, new: str) -> list[tuple[str, str, str]]:
    """(name, model id, CREATE INDEX) of each HNSW index of memory_embeddings to rebuild with the
    predicate ``new`` (a format string of the model id) instead of ``old``. An index already ending
    in ``new`` is left alone; one ending in neither stops the revision, before anything is built,
    with a database error (one line at the CLI). Offline: nothing (the DO block checks)."""
    if op.get_context().as_sql:
        return []
    conn = op.get_bind()
    todo = []
    for name, definition in conn.execute(text(INDEXES)).all():
        model = HNSW.match(name).group(1)
        tail_old, tail_new = old.format(id=model), new.format(id=model)
        if definition.endswith(tail_new):
            continue
        if not definition.endswith(tail_old):
            conn.execute(text(STOP.format(message=_literal(
                f"{S}.{name} is not an index revision 0018 knows: {definition}"))))
        todo.append((name, model, definition[: -len(tail_old)] + tail_new))
    return todo


def _rebuild(todo: list[tuple[str, str, str]], old: str, new: str, admits: str) -> None:
    """Build ``todo`` (from :func:`_plan`) beside the old indexes, then swap them in; ``admits`` is the
    new predicate's row filter on ``e``, for the graph estimate. Offline: the DO block."""
    if op.get_context().as_sql:
        op.execute(OFFLINE.format(old=old.format(id="%s"), new=new.format(id="%s"), admits=admits))
        return
    conn = op.get_bind()
    with op.get_context().autocommit_block():
        for name, model, build in todo:
            temporary = f"{name}_0018"
            leftover = conn.execute(text(LEFTOVER), {"name": temporary}).first()
            if leftover is not None and not (leftover[0] and leftover[1].endswith(new.format(id=model))):
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {S}.{temporary}")
            kb = conn.execute(text(GRAPH_KB.format(admits=admits)), {"model": int(model)}).scalar() or 0
            conn.execute(text(SET_MEMORY), {"kb": int(kb)})
            op.execute(build.replace(f"CREATE INDEX {name} ON", f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {temporary} ON", 1))
            conn.execute(text("RESET maintenance_work_mem"))
    for name, _, _ in todo:
        op.execute(f"DROP INDEX {S}.{name}")
        op.execute(f"ALTER INDEX {S}.{name}_0018 RENAME TO {name}")


def _literal(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _concurrently(statements: list[str]) -> None:
    with op.get_context().autocommit_block():
        for statement in statements:
            op.execute(statement)


def upgrade() -> None:
    todo = _plan(PLAIN, SEARCHABLE)
    _concurrently(UPGRADE_CONCURRENTLY)
    _rebuild(todo, PLAIN, SEARCHABLE, "e.searchable")


def downgrade() -> None:
    _rebuild(_plan(SEARCHABLE, PLAIN), SEARCHABLE, PLAIN, "true")
    _concurrently(DOWNGRADE_CONCURRENTLY)
