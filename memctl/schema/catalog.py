"""Read the live catalog of one schema into a :class:`Snapshot` (plain, comparable data).

Everything comes from the PostgreSQL catalog and its deparsers, so that two databases built
from the same DDL give equal snapshots: ``pg_attribute``/``pg_attrdef`` (columns, defaults,
generation expressions), ``pg_constraint`` + ``pg_get_constraintdef`` (PK, FK with ON DELETE
including ``SET NULL (col)``, UNIQUE, CHECK), ``pg_index`` + ``pg_am`` + ``pg_opclass`` +
``pg_class.reloptions`` + ``pg_get_expr`` (indexes: method, keys, opclasses, WITH, predicate,
validity), ``pg_class`` (RLS, persistence, reloptions, owner), ``pg_inherits`` (children in any
schema), ``pg_policy``, ``pg_trigger``, ``pg_proc`` and ``pg_rules``; the other relations and types
come from :mod:`~memctl.schema.relations`, the privileges from :mod:`~memctl.schema.acl`.
Comments are not compared: they change no behaviour, and operators annotate their schemas.
SQLAlchemy's inspector reflects none of opclass, WITH parameters or ``SET NULL (col)``, which is
why memctl reads the catalog itself.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.schema.acl import read_privileges
from memctl.schema.relations import read_relations
from memctl.schema.snapshot import SCHEMA_OWNER, Objects, Snapshot, owner_sql

__all__ = ["Objects", "Snapshot", "read_snapshot"]


_TABLES = f"""
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text AS persistence,
       coalesce(c.reloptions, '{{}}') AS reloptions, {owner_sql("c.relowner")} AS owner,
       ARRAY(SELECT p.relnamespace::regnamespace::text || '.' || p.relname FROM pg_inherits i
               JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid ORDER BY 1) AS inherits,
       ARRAY(SELECT k.relnamespace::regnamespace::text || '.' || k.relname FROM pg_inherits i
               JOIN pg_class k ON k.oid = i.inhrelid WHERE i.inhparent = c.oid ORDER BY 1) AS inherited_by
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
"""

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
       NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid AND k.contype = 'n'
                      AND k.conkey = ARRAY[a.attnum] AND NOT k.convalidated) AS not_null_validated,
       (SELECT co.collname FROM pg_collation co JOIN pg_type ty ON ty.oid = a.atttypid
         WHERE co.oid = a.attcollation AND a.attcollation <> ty.typcollation) AS collation,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END AS default,
       CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS generated,
       a.attidentity::text AS attidentity
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
"""

_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype::text AS contype, pg_get_constraintdef(k.oid) AS definition, k.convalidated
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema AND k.contype IN ('p', 'f', 'u', 'c', 'x')
"""

_INDEXES = """
SELECT t.relname AS table, i.relname AS index, am.amname AS method, x.indisunique, x.indisvalid,
       x.indnullsnotdistinct,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k + 1, true)
               FROM generate_subscripts(x.indkey, 1) AS k ORDER BY k) AS keys,
       ARRAY(SELECT (CASE WHEN o & 1 = 1 THEN 'DESC' ELSE '' END) || (CASE WHEN (o & 2 = 2) <> (o & 1 = 1)
                      THEN CASE WHEN o & 2 = 2 THEN ' NULLS FIRST' ELSE ' NULLS LAST' END ELSE '' END)
               FROM unnest(x.indoption) AS o) AS key_options,
       ARRAY(SELECT coalesce(co.collname, '') FROM unnest(x.indcollation) AS u(oid)
               LEFT JOIN pg_collation co ON co.oid = u.oid AND co.collname <> 'default') AS key_collations,
       ARRAY(SELECT CASE WHEN oc.opcdefault THEN '' ELSE oc.opcname END
               FROM unnest(x.indclass) WITH ORDINALITY AS u(oid, ord)
               JOIN pg_opclass oc ON oc.oid = u.oid ORDER BY u.ord) AS opclasses,
       coalesce(i.reloptions, '{}') AS reloptions,
       pg_get_expr(x.indpred, x.indrelid) AS predicate
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_am am ON am.oid = i.relam
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = :schema
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype IN ('p', 'u', 'x'))
"""

_POLICIES = """
SELECT c.relname, p.polname, p.polcmd::text AS polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
               FROM unnest(p.polroles) AS r ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
  FROM pg_policy p
  JOIN pg_class c ON c.oid = p.polrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema
"""

_TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) AS definition, t.tgenabled::text AS tgenabled
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema AND NOT t.tgisinternal
"""

_FUNCTIONS = f"""
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature,
       {owner_sql("p.proowner")} AS owner,
       pg_get_function_result(p.oid) AS result, p.provolatile::text AS provolatile, p.prosrc,
       p.prosecdef, p.proleakproof, coalesce(p.proconfig, '{{}}') AS proconfig
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = :schema
"""

# PostgreSQL docs, "pg_rules": every rule but the _RETURN rule of a view.
_RULES = """
SELECT tablename, rulename, definition FROM pg_rules WHERE schemaname = :schema
"""

_CONTYPES = {"p": "primary_key", "f": "foreign_key", "u": "unique", "c": "check", "x": "exclusion"}
_POLCMD = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}
_VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}
# pg_trigger.tgenabled: when the trigger fires (ALTER TABLE ... ENABLE [REPLICA | ALWAYS] TRIGGER)
_FIRING = {"O": "origin", "D": "disabled", "R": "replica", "A": "always"}
_PERSISTENCE = {"p": "permanent", "u": "unlogged", "t": "temporary"}


def _with_params(reloptions: list[str]) -> dict[str, str]:
    return dict(opt.split("=", 1) for opt in reloptions)


async def read_snapshot(conn: AsyncConnection, schema: str) -> Snapshot:
    """Snapshot of ``schema`` as seen by ``conn`` (run as a role that can see the whole catalog)."""
    snap = Snapshot(schema)
    params = {"schema": schema, "schema_owner": SCHEMA_OWNER}

    async def rows(sql: str):
        return (await conn.execute(text(sql), params)).mappings().all()

    for r in await rows(_TABLES):
        snap.add("table", r["relname"], rls_enabled=r["relrowsecurity"], rls_forced=r["relforcerowsecurity"],
                 persistence=_PERSISTENCE[r["persistence"]], options=sorted(r["reloptions"]), owner=r["owner"],
                 inherits=list(r["inherits"]), inherited_by=list(r["inherited_by"]))
    for r in await rows(_COLUMNS):
        snap.add("column", f"{r['relname']}.{r['attname']}", type=r["type"], not_null=r["attnotnull"],
                 not_null_validated=r["not_null_validated"],
                 default=r["default"], generated=r["generated"], identity=r["attidentity"] or None,
                 collation=r["collation"])
    for r in await rows(_CONSTRAINTS):
        snap.add(_CONTYPES[r["contype"]], f"{r['relname']}.{r['conname']}",
                 definition=r["definition"], validated=r["convalidated"])
    for r in await rows(_INDEXES):
        snap.add("index", f"{r['table']}.{r['index']}", method=r["method"], unique=r["indisunique"],
                 nulls_not_distinct=r["indnullsnotdistinct"], keys=list(r["keys"]),
                 opclasses=list(r["opclasses"]), key_options=list(r["key_options"]),
                 key_collations=list(r["key_collations"]), with_params=_with_params(r["reloptions"]),
                 predicate=r["predicate"], valid=r["indisvalid"])
    for r in await rows(_POLICIES):
        snap.add("policy", f"{r['relname']}.{r['polname']}", command=_POLCMD[r["polcmd"]],
                 permissive=r["polpermissive"], roles=list(r["roles"]), using=r["using_expr"],
                 with_check=r["check_expr"])
    for r in await rows(_TRIGGERS):
        snap.add("trigger", f"{r['relname']}.{r['tgname']}", definition=r["definition"],
                 firing=_FIRING[r["tgenabled"]])
    for r in await rows(_FUNCTIONS):
        snap.add("function", r["signature"], result=r["result"], owner=r["owner"],
                 volatility=_VOLATILITY[r["provolatile"]], body=r["prosrc"].strip(),
                 security_definer=r["prosecdef"], leakproof=r["proleakproof"], config=sorted(r["proconfig"]))
    for r in await rows(_RULES):
        snap.add("rule", f"{r['tablename']}.{r['rulename']}", definition=r["definition"])
    await read_relations(conn, snap)
    await read_privileges(conn, snap)
    return snap
