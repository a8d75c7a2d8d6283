"""The schema objects that are not tables: functions, triggers, the role, row-level security.

This module is the models' side of them (what verify-schema expects); the migrations carry
frozen copies of the same statements. Sources: schema.md rules 2 (RLS, ``current_org_id()``,
``memory_app``), 4 (``touch_updated_at``) and the memories version trigger.
"""

from __future__ import annotations

from sqlalchemy import Table

from memctl.models.base import SCHEMA, metadata

APP_ROLE = "memory_app"
# memctl's operator roles are members of it: a permissive policy on every RLS table lets them see and
# change every row without superuser or BYPASSRLS (revision 0010; README "Least privilege").
ADMIN_ROLE = "memctl_admin"
POLICY_NAME = "tenant_isolation"
ADMIN_POLICY = "memctl_admin_all"
TOUCH_TRIGGER = "trg_touch_updated_at"
VERSION_TRIGGER = "trg_memories_record_version"
# Global tables without org_id (schema.md "Global tables"); every other table is tenant-owned.
REFERENCE_TABLES = ("organizations", "embedding_models", "memory_access_policies")

CREATE_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
]



def create_role(role: str) -> str:
    """Create the NOLOGIN group role ``role`` unless the cluster has it (roles are cluster-wide)."""
    return f"""DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
END
$$"""


CREATE_ROLE = create_role(APP_ROLE)

CREATE_ADMIN_ROLE = create_role(ADMIN_ROLE)

CURRENT_ORG_ID = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.current_org_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.current_org_id', true), '')::uuid $$"""

# convert_to() is STABLE, so PostgreSQL refuses it in a generated column; in one database the
# encoding cannot change, so the wrapped expression is immutable in fact.
SHA256_HEX = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.sha256_hex(content text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(content, 'UTF8')), 'hex') $$"""

# memctl import sets ``memctl.keep_updated_at = 'on'`` (SET LOCAL) while it sets the columns of a
# foreign-key cycle after loading them NULL, so the copy keeps its source's updated_at (revision 0016).
KEEP_UPDATED_AT = "memctl.keep_updated_at"
TOUCH_UPDATED_AT = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF coalesce(current_setting('{KEEP_UPDATED_AT}', true), '') <> 'on' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$"""

RECORD_MEMORY_VERSION = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.record_memory_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO {SCHEMA}.memory_versions
        (org_id, memory_id, version_num, content, content_hash, changed_by, change_reason)
    SELECT OLD.org_id, OLD.id, coalesce(max(v.version_num), 0) + 1, OLD.content, OLD.content_hash,
           nullif(current_setting('app.changed_by', true), ''),
           nullif(current_setting('app.change_reason', true), '')
      FROM {SCHEMA}.memory_versions v
     WHERE v.org_id = OLD.org_id AND v.memory_id = OLD.id;
    RETURN NEW;
END
$$"""

VERSION_TRIGGER_SQL = (
    f"CREATE TRIGGER {VERSION_TRIGGER} AFTER UPDATE OF content ON {SCHEMA}.memories "
    f"FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content) "
    f"EXECUTE FUNCTION {SCHEMA}.record_memory_version()"
)


# A memory's embeddings carry ``searchable`` = (status = 'active' AND deleted_at IS NULL), so that
# pgvector's iterative index scan sees the filter and goes on until k searchable rows are found
# (pgvector README, "Iterative Index Scans"; issue 12: filtering after the scan returned fewer than k).
# Kept by two triggers (revision 0012); check-constraints reports any disagreement.
SEARCHABLE_SQL = "(status = 'active' AND deleted_at IS NULL)"
SYNC_SEARCHABLE_TRIGGER = "trg_memories_sync_searchable"
EMBEDDING_SEARCHABLE_TRIGGER = "trg_memory_embeddings_searchable"
SYNC_SEARCHABLE = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.sync_memory_searchable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE {SCHEMA}.memory_embeddings SET searchable = (NEW.status = 'active' AND NEW.deleted_at IS NULL)
     WHERE org_id = NEW.org_id AND memory_id = NEW.id;
    RETURN NEW;
END
$$"""
SYNC_SEARCHABLE_TRIGGER_SQL = (
    f"CREATE TRIGGER {SYNC_SEARCHABLE_TRIGGER} AFTER UPDATE OF status, deleted_at ON {SCHEMA}.memories "
    f"FOR EACH ROW WHEN ((OLD.status = 'active' AND OLD.deleted_at IS NULL) IS DISTINCT FROM "
    f"(NEW.status = 'active' AND NEW.deleted_at IS NULL)) EXECUTE FUNCTION {SCHEMA}.sync_memory_searchable()"
)
EMBEDDING_SEARCHABLE = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.memory_embedding_searchable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    SELECT m.status = 'active' AND m.deleted_at IS NULL INTO NEW.searchable
      FROM {SCHEMA}.memories m WHERE m.org_id = NEW.org_id AND m.id = NEW.memory_id;
    NEW.searchable := coalesce(NEW.searchable, true);
    RETURN NEW;
END
$$"""
EMBEDDING_SEARCHABLE_TRIGGER_SQL = (
    # only when the writer left it NULL (revision 0013): backfill, seed and the repositories pass it
    f"CREATE TRIGGER {EMBEDDING_SEARCHABLE_TRIGGER} BEFORE INSERT ON {SCHEMA}.memory_embeddings "
    f"FOR EACH ROW WHEN (NEW.searchable IS NULL) EXECUTE FUNCTION {SCHEMA}.memory_embedding_searchable()"
)


# An embedding row records the content_hash its vector was computed from; NULL stands for "the content
# when it was written, unchanged since". When the content changes, these triggers write the old hash
# into the NULL rows, so the vector shows as stale (check-constraints stale_embedding) instead of
# passing for current. No row is rewritten by the migration (revision 0013; issue 13).
FREEZE_HASH_TRIGGER = "trg_freeze_embedding_hash"


def freeze_hash_function(owner_table: str, embedding_table: str, owner_column: str) -> str:
    """``freeze_<embedding_table>_hash()``: on a content change of ``owner_table``, the old
    content_hash goes into its embeddings' NULL content_hash."""
    return f"""CREATE OR REPLACE FUNCTION {SCHEMA}.freeze_{embedding_table}_hash() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE {SCHEMA}.{embedding_table} SET content_hash = OLD.content_hash
     WHERE org_id = OLD.org_id AND {owner_column} = OLD.id AND content_hash IS NULL;
    RETURN NEW;
END
$$"""


def freeze_hash_trigger(owner_table: str, embedding_table: str) -> str:
    """The AFTER UPDATE OF content trigger of ``owner_table`` running :func:`freeze_hash_function`."""
    return (f"CREATE TRIGGER {FREEZE_HASH_TRIGGER} AFTER UPDATE OF content ON {SCHEMA}.{owner_table} "
            f"FOR EACH ROW WHEN (OLD.content_hash IS DISTINCT FROM NEW.content_hash) "
            f"EXECUTE FUNCTION {SCHEMA}.freeze_{embedding_table}_hash()")


HASHED_EMBEDDINGS = (("memories", "memory_embeddings", "memory_id"),
                     ("consolidated_memories", "consolidated_memory_embeddings", "consolidated_memory_id"))


def freeze_hash_statements() -> list[str]:
    """Functions and triggers of both embedding tables (see :data:`FREEZE_HASH_TRIGGER`)."""
    return [stmt for owner, emb, col in HASHED_EMBEDDINGS
            for stmt in (freeze_hash_function(owner, emb, col), freeze_hash_trigger(owner, emb))]


UUID_RE = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# Deleting a user takes what was derived from their memories (revision 0016; issue 14, the right to
# erasure): the consolidated memories built from them (deleted: rebuilding needs a summariser), the link
# of the memories consolidated into those, and their ids in stage memories' raw_memory_refs. Skipped in
# an organisation's cascade (pg_trigger_depth() > 1), where everything goes anyway.
ERASE_USER_TRIGGER = "trg_users_erase_derived"
ERASE_USER_DERIVED = f"""CREATE OR REPLACE FUNCTION {SCHEMA}.erase_user_derived() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    gone uuid[];
BEGIN
    IF pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    -- sessions.user_id is ON DELETE SET NULL (schema.md): the user's sessions would outlive them
    DELETE FROM {SCHEMA}.sessions s WHERE s.org_id = OLD.org_id AND s.user_id = OLD.id;
    gone := ARRAY(SELECT m.id FROM {SCHEMA}.memories m WHERE m.org_id = OLD.org_id AND m.user_id = OLD.id);
    IF cardinality(gone) = 0 THEN
        RETURN OLD;
    END IF;
    UPDATE {SCHEMA}.memories m SET consolidated_into_id = NULL, is_consolidated = false
     WHERE m.org_id = OLD.org_id AND m.consolidated_into_id IN (
           SELECT c.id FROM {SCHEMA}.consolidated_memories c
            WHERE c.org_id = OLD.org_id AND c.source_memory_ids && gone);
    DELETE FROM {SCHEMA}.consolidated_memories c WHERE c.org_id = OLD.org_id AND c.source_memory_ids && gone;
    UPDATE {SCHEMA}.stage_memories s
       SET raw_memory_refs = (SELECT coalesce(jsonb_agg(r.v ORDER BY r.o), '[]'::jsonb)
                                FROM jsonb_array_elements(s.raw_memory_refs) WITH ORDINALITY AS r(v, o)
                               WHERE NOT (jsonb_typeof(r.v) = 'string' AND r.v #>> '{{}}' ~ '{UUID_RE}'
                                          AND (r.v #>> '{{}}')::uuid = ANY (gone)))
     WHERE s.org_id = OLD.org_id AND EXISTS (
           SELECT 1 FROM jsonb_array_elements_text(s.raw_memory_refs) AS e(ref)
            WHERE e.ref ~ '{UUID_RE}' AND e.ref::uuid = ANY (gone));
    RETURN OLD;
END
$$"""
ERASE_USER_TRIGGER_SQL = (f"CREATE TRIGGER {ERASE_USER_TRIGGER} BEFORE DELETE ON {SCHEMA}.users "
                          f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.erase_user_derived()")


def touch_trigger(table: str) -> str:
    """``CREATE TRIGGER trg_touch_updated_at BEFORE UPDATE ON <table>`` (rule 4)."""
    return (f"CREATE TRIGGER {TOUCH_TRIGGER} BEFORE UPDATE ON {SCHEMA}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.touch_updated_at()")


def tables_with_updated_at() -> list[str]:
    """Names of the model tables that have an ``updated_at`` column, sorted."""
    return sorted(t.name for t in metadata.tables.values() if "updated_at" in t.c)


def tenant_tables() -> list[str]:
    """Names of the model tables that have an ``org_id`` column (RLS applies), sorted."""
    return sorted(t.name for t in metadata.tables.values() if "org_id" in t.c)


def org_key(table: str) -> str:
    """The column naming the organisation: ``id`` in organizations, ``org_id`` in every tenant table."""
    return "id" if table == "organizations" else "org_id"


def rls_statements(table: str) -> list[str]:
    """ENABLE + FORCE row-level security, the policies and grants of one table (rule 2)."""
    q = f"{SCHEMA}.{table}"
    cur = f"{SCHEMA}.current_org_id()"
    key = org_key(table)
    stmts = [
        f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY_NAME} ON {q} TO {APP_ROLE} USING ({key} = {cur}) WITH CHECK ({key} = {cur})",
        f"CREATE POLICY {ADMIN_POLICY} ON {q} TO {ADMIN_ROLE} USING (true) WITH CHECK (true)",
    ]
    if table == "memory_access_policies":
        # S4: platform-wide policies (org_id IS NULL) are readable by every tenant, writable by none.
        stmts.append(f"CREATE POLICY platform_read ON {q} FOR SELECT TO {APP_ROLE} USING (org_id IS NULL)")
    return stmts


# VACUUM, ANALYZE and REINDEX without owning the table: the MAINTAIN privilege of PostgreSQL 17 (revision 0010).
GRANT_ADMIN_MAINTAIN = f"""DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON ALL TABLES IN SCHEMA {SCHEMA} TO {ADMIN_ROLE}';
    END IF;
END
$$"""


def grant_statements() -> list[str]:
    """Privileges of ``memory_app`` (DML on tenant tables, read-only on embedding_models and
    organization_models, no new organisations) and of ``memctl_admin`` (DML on every table, and
    MAINTAIN from PostgreSQL 17)."""
    return [
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {APP_ROLE}",
        f"REVOKE INSERT, UPDATE, DELETE ON {SCHEMA}.embedding_models FROM {APP_ROLE}",
        # provisioning organisations is memctl's job, not a tenant's (revision 0011)
        f"REVOKE INSERT ON {SCHEMA}.organizations FROM {APP_ROLE}",
        # an organisation's model is switched by memctl models set-default only (revision 0013)
        f"REVOKE INSERT, UPDATE, DELETE ON {SCHEMA}.organization_models FROM {APP_ROLE}",
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {ADMIN_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {ADMIN_ROLE}",
        GRANT_ADMIN_MAINTAIN,
    ]


def table(name: str) -> Table:
    """The model Table ``agent_memory.<name>``."""
    return metadata.tables[f"{SCHEMA}.{name}"]
