"""Objects of a schema that memctl does not create, read so that their appearance is drift.

memctl's schema has tables, indexes, functions and one identity sequence. Anything else in it
changes behaviour without touching a table's definition: a rule rewrites the statements on a table,
a view or materialized view can expose rows (running as its owner), a domain or type can be used
by a later column, a sequence's options decide the ids it hands out. Each is read here into the
:class:`~memctl.schema.snapshot.Snapshot`, so an extra one is a finding and a changed one a
``category.attribute`` finding. A sequence's current value is data, never compared.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.schema.snapshot import SCHEMA_OWNER, STANDALONE_TYPE_SQL, Snapshot, owner_sql

_SEQUENCES = f"""
SELECT c.relname, format_type(s.seqtypid, NULL) AS type, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle, c.relpersistence::text AS persistence, {owner_sql("c.relowner")} AS owner,
       (SELECT t.relname || '.' || a.attname || CASE d.deptype WHEN 'i' THEN ' (identity)' ELSE '' END
          FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
           AND d.deptype IN ('a', 'i')) AS owned_by
  FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema
"""

_VIEWS = f"""
SELECT c.relname, c.relkind::text AS relkind,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
       coalesce(c.reloptions, '{{}}') AS reloptions, {owner_sql("c.relowner")} AS owner
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema AND c.relkind IN ('v', 'm', 'f')
"""

# Standalone types: domains, enums, ranges and composite types made by CREATE TYPE (not a table's
# row type, not an array type, not the multirange a range type brings along).
_TYPES = f"""
SELECT t.typname, t.typtype::text AS typtype, {owner_sql("t.typowner")} AS owner,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
       t.typnotnull, pg_get_expr(t.typdefaultbin, 0) AS default,
       ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY 1) AS checks,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
       ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS attributes,
       (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) AS subtype
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = :schema
   AND {STANDALONE_TYPE_SQL}
"""

_RELKIND = {"v": "view", "m": "materialized_view", "f": "foreign_table"}
_TYPTYPE = {"c": "composite", "d": "domain", "e": "enum", "r": "range"}


async def read_relations(conn: AsyncConnection, snap: Snapshot) -> None:
    """Add ``sequence``, ``view``, ``materialized_view``, ``foreign_table`` and ``type`` objects of
    ``snap.schema`` to ``snap``."""
    params = {"schema": snap.schema, "schema_owner": SCHEMA_OWNER}

    async def rows(sql: str):
        return (await conn.execute(text(sql), params)).mappings().all()

    for r in await rows(_SEQUENCES):
        snap.add("sequence", r["relname"], type=r["type"], start=r["seqstart"], increment=r["seqincrement"],
                 min=r["seqmin"], max=r["seqmax"], cache=r["seqcache"], cycle=r["seqcycle"],
                 persistence=r["persistence"], owner=r["owner"], owned_by=r["owned_by"])
    for r in await rows(_VIEWS):
        snap.add(_RELKIND[r["relkind"]], r["relname"], definition=(r["definition"] or "present").strip(),
                 options=sorted(r["reloptions"]), owner=r["owner"])
    for r in await rows(_TYPES):
        snap.add("type", r["typname"], kind=_TYPTYPE[r["typtype"]], owner=r["owner"], base=r["base"],
                 not_null=r["typnotnull"], default=r["default"], checks=list(r["checks"]),
                 labels=list(r["labels"]), attributes=list(r["attributes"]), subtype=r["subtype"])
