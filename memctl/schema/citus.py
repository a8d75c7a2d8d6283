"""``verify-schema --target citus``: can the schema be distributed by ``org_id``?

Citus co-locates a distributed table's rows by its distribution column, and enforces a primary
key, unique constraint or index only when it includes that column, and a foreign key between
distributed tables only when both sides include it at the same position (Citus docs,
"Distributing by Tenant ID" / "Table Management"). Tables without ``org_id`` must be reference
tables by design (schema.md: organizations, embedding_models, memory_access_policies), and a
reference table may not point at a distributed one.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.models.ddl import REFERENCE_TABLES
from memctl.schema.diff import Finding, qualified

DISTRIBUTION_COLUMN = "org_id"

_COLS = ("ARRAY(SELECT a.attname::text FROM unnest({keys}) WITH ORDINALITY AS u(n, o) "
         "JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = u.n ORDER BY u.o)")

_KEYS = f"""
SELECT c.relname AS table, k.conname AS name, k.contype::text AS kind,
       {_COLS.format(keys="k.conkey", rel="k.conrelid")} AS cols,
       f.relname AS ref_table, {_COLS.format(keys="k.confkey", rel="k.confrelid")} AS ref_cols
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class f ON f.oid = k.confrelid
 WHERE n.nspname = :schema AND k.contype IN ('p', 'u', 'f')
UNION ALL
SELECT t.relname, i.relname, 'i', {_COLS.format(keys="x.indkey::int2[]", rel="x.indrelid")}, NULL, NULL
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE n.nspname = :schema AND x.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
 ORDER BY 1, 2
"""

_TABLES = """
SELECT c.relname AS table,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = :col
                  AND NOT a.attisdropped) AS distributed
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
 ORDER BY 1
"""


async def citus_findings(conn: AsyncConnection, schema: str) -> list[Finding]:
    """Every key, unique index and table of ``schema`` that stops distribution by ``org_id``.

    Kinds: ``citus_not_distributable`` (table without org_id that is not a reference table),
    ``citus_key_without_org_id`` (PK / UNIQUE / unique index of a tenant table without org_id),
    ``citus_fk_without_org_id`` (FK between tenant tables not matching org_id to org_id),
    ``citus_reference_to_distributed`` (FK from a reference table to a tenant table).
    """
    tables = {r.table: r.distributed for r in (await conn.execute(
        text(_TABLES), {"schema": schema, "col": DISTRIBUTION_COLUMN})).all()}
    findings = [Finding("citus_not_distributable", qualified(schema, t), f"{DISTRIBUTION_COLUMN} or reference table",
                        "neither")
                for t, dist in tables.items() if not dist and t not in REFERENCE_TABLES]
    for r in (await conn.execute(text(_KEYS), {"schema": schema})).all():
        name, cols = qualified(schema, r.table, r.name), list(r.cols)
        distributed = tables.get(r.table, False) and r.table not in REFERENCE_TABLES
        if r.kind in ("p", "u", "i"):
            if distributed and DISTRIBUTION_COLUMN not in cols:
                findings.append(Finding("citus_key_without_org_id", name, f"includes {DISTRIBUTION_COLUMN}",
                                        ", ".join(cols)))
            continue
        ref_distributed = tables.get(r.ref_table, False) and r.ref_table not in REFERENCE_TABLES
        if not distributed and ref_distributed:
            findings.append(Finding("citus_reference_to_distributed", name, "reference -> reference",
                                    f"{r.table} -> {r.ref_table}"))
        elif distributed and ref_distributed:
            pairs = list(zip(cols, r.ref_cols, strict=True))
            if (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) not in pairs:
                findings.append(Finding("citus_fk_without_org_id", name,
                                        f"{DISTRIBUTION_COLUMN} -> {DISTRIBUTION_COLUMN}",
                                        ", ".join(f"{a} -> {b}" for a, b in pairs)))
    return findings
