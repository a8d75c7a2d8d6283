"""How an import loads an organisation's tables: their order, the columns set afterwards, and the
expression that gives each column its value in the target (issue 14).

All of it is read from the target's catalog (foreign keys, primary keys, nullability), so a tenant
table added later is ordered and remapped without touching this code:

- **Order**: a table is loaded after every table its foreign keys reference. None of the schema's
  foreign keys is deferrable, and some form cycles: ``memories`` references itself
  (``superseded_by``, ``merged_into``) and ``task_contexts.current_stage_id`` and
  ``stage_memories.task_id`` reference each other. The nullable columns of such a foreign key are
  loaded NULL and set by an UPDATE once every row is in (:attr:`LoadPlan.deferred`).
- **Ids** (``--as-org``): every uuid column of a primary key, every column a foreign key points at
  such a column, and the ids inside ``consolidated_memories.source_memory_ids`` and
  ``stage_memories.raw_memory_refs`` (schema.md: arrays without a foreign key) get the new id
  ``md5(<new organisation id> || <old id>)::uuid``: the same old id becomes the same new id in every
  table, array and JSON document, with no map to keep. The organisation key becomes the new
  organisation's id. Without ``--as-org`` ids are kept.
- **Models**: a column referencing ``embedding_models`` gets the target's id of the model of the same
  name (ids differ between databases).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from memctl.errors import ConfigError
from memctl.models import SCHEMA
from memctl.models.ddl import UUID_RE
from memctl.transfer.tables import Column, TenantTable, quote

# Columns holding ids without a foreign key (schema.md, S1): the table's column -> its shape.
ID_ARRAYS = {("consolidated_memories", "source_memory_ids")}
ID_JSON_ARRAYS = {("stage_memories", "raw_memory_refs")}

_CONSTRAINTS = """
SELECT c.contype::text AS contype, c.confdeltype::text AS on_delete, cl.relname AS table, rf.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, o)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS cols,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(n, o)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS ref_cols
  FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid LEFT JOIN pg_class rf ON rf.oid = c.confrelid
 WHERE c.contype IN ('f', 'p') AND cl.relnamespace = to_regnamespace($1)
 ORDER BY cl.relname, c.conname"""


@dataclass(frozen=True)
class ForeignKey:
    """``table(cols) REFERENCES ref_table(ref_cols)``; ``on_delete`` is pg_constraint.confdeltype
    ('c' cascade, 'n' set null, 'r' restrict, 'a' no action, 'd' set default)."""

    table: str
    cols: tuple[str, ...]
    ref_table: str
    ref_cols: tuple[str, ...]
    on_delete: str = "a"


@dataclass
class LoadPlan:
    """Tables in load order, the columns of each that are loaded NULL and set afterwards
    (``deferred``: table -> columns), each table's primary key, and the id columns remapped."""

    tables: list[TenantTable]
    deferred: dict[str, list[str]] = field(default_factory=dict)
    primary_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ids: dict[str, set[str]] = field(default_factory=dict)
    model_columns: dict[str, set[str]] = field(default_factory=dict)


async def constraints(conn: asyncpg.Connection) -> tuple[list[ForeignKey], dict[str, tuple[str, ...]]]:
    """The schema's foreign keys, and its primary keys (table -> columns), from the catalog."""
    rows = await conn.fetch(_CONSTRAINTS, SCHEMA)
    fks = [ForeignKey(r["table"], tuple(r["cols"]), r["ref_table"], tuple(r["ref_cols"]), r["on_delete"])
           for r in rows if r["contype"] == "f"]
    return fks, {r["table"]: tuple(r["cols"]) for r in rows if r["contype"] == "p"}


async def load_plan(conn: asyncpg.Connection, tables: list[TenantTable]) -> LoadPlan:
    """The plan for ``tables`` (:func:`memctl.transfer.tables.tenant_tables` of the target). Raises
    ConfigError when a cycle of foreign keys has no nullable column to break it."""
    names = {t.name for t in tables}
    all_fks, primary_keys = await constraints(conn)
    fks = [fk for fk in all_fks if fk.table in names]
    plan = LoadPlan([], primary_keys=primary_keys)
    by_name = {t.name: t for t in tables}
    for t in tables:
        pk = plan.primary_keys.get(t.name, ())
        plan.ids[t.name] = {c.name for c in t.columns if c.name in pk and c.type == "uuid" and c.name != t.key}
    keys = {name: set(cols) for name, cols in plan.ids.items()}
    for fk in fks:
        if fk.ref_table == "embedding_models":
            plan.model_columns.setdefault(fk.table, set()).update(c for c in fk.cols if c != "dim")
        elif fk.ref_table in names:
            plan.ids[fk.table] |= {c for c, rc in zip(fk.cols, fk.ref_cols, strict=True) if rc in keys[fk.ref_table]}
    plan.tables = _ordered(tables, [fk for fk in fks if fk.ref_table in names], plan.deferred, by_name)
    return plan


def _nullable(table: TenantTable, fk: ForeignKey) -> list[str]:
    return [c.name for c in table.columns if c.name in fk.cols and not c.not_null and c.name != table.key]


def _ordered(tables: list[TenantTable], fks: list[ForeignKey], deferred: dict[str, list[str]],
             by_name: dict[str, TenantTable]) -> list[TenantTable]:
    """Kahn's order over the foreign keys; self-references and, when the order is stuck, a foreign key
    on a cycle are deferred (their nullable columns go into ``deferred``)."""
    edges = []
    for fk in fks:
        if fk.table == fk.ref_table:
            deferred.setdefault(fk.table, []).extend(_nullable(by_name[fk.table], fk))
        else:
            edges.append(fk)
    order: list[TenantTable] = []
    remaining = {t.name for t in tables}
    while remaining:
        ready = sorted(n for n in remaining
                       if not any(e.table == n and e.ref_table in remaining for e in edges))
        if ready:
            order += [by_name[n] for n in ready]
            remaining -= set(ready)
            continue
        cut = next((e for e in sorted(edges, key=lambda e: (e.table, e.cols))
                    if e.table in remaining and _nullable(by_name[e.table], e)
                    and _reaches(e.ref_table, e.table, edges, remaining)), None)
        if cut is None:
            raise ConfigError(f"the foreign keys among {', '.join(sorted(remaining))} form a cycle without a "
                              "nullable column: the import cannot order them")
        deferred.setdefault(cut.table, []).extend(_nullable(by_name[cut.table], cut))
        edges.remove(cut)
    return order


def _reaches(start: str, goal: str, edges: list[ForeignKey], within: set[str]) -> bool:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack += [e.ref_table for e in edges if e.table == node and e.ref_table in within]
    return False


def remap(expr: str, salt: str | None) -> str:
    """The new id for the uuid ``expr`` (unchanged without ``salt``, the new organisation's id)."""
    return expr if salt is None else f"md5('{salt}' || ({expr})::text)::uuid"


def value(table: TenantTable, c: Column, plan: LoadPlan, source: str, *, org: str, salt: str | None,
          models: dict[int, int]) -> str:
    """The SQL expression giving column ``c`` of ``table`` its value from the staging row ``source``:
    cast back from text, the organisation key set to ``org`` (a uuid literal), ids remapped
    (:func:`remap`), model ids mapped (source id -> target id)."""
    raw = f"{source}.{quote(c.name)}"
    typed = raw if stage_type(c) == c.pg_type else f"{raw}::{c.pg_type}"
    if c.name == table.key:
        return f"'{org}'::uuid"
    if c.name in plan.model_columns.get(table.name, ()):
        cases = " ".join(f"WHEN {old} THEN {new}" for old, new in sorted(models.items()))
        return f"(CASE {typed} {cases} END)" if cases else typed
    if salt is None:
        return typed
    if c.name in plan.ids.get(table.name, ()):
        return remap(typed, salt)
    if (table.name, c.name) in ID_ARRAYS:
        return (f"ARRAY(SELECT {remap('u.x', salt)} FROM unnest({typed}) WITH ORDINALITY AS u(x, o) "
                f"ORDER BY u.o)")
    if (table.name, c.name) in ID_JSON_ARRAYS:
        ref = "(r.v #>> '{}')::uuid"
        new = f"to_jsonb(({remap(ref, salt)})::text)"
        return (f"(SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(r.v) = 'string' AND r.v #>> '{{}}' ~ "
                f"'{UUID_RE}' THEN {new} ELSE r.v END ORDER BY r.o), '[]'::jsonb) "
                f"FROM jsonb_array_elements({typed}) WITH ORDINALITY AS r(v, o))")
    return typed


def stage_type(c: Column) -> str:
    """The staging table's type of ``c``: its own for Arrow-native and vector columns, else text."""
    return "text" if c.as_text else c.pg_type
