"""The tables an organisation owns, read from the catalog (issue 14): every table of agent_memory with
an ``org_id`` column, and ``organizations`` itself (keyed by ``id``). A tenant table added to the
models is found without touching this code, as the isolation proof finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import pyarrow as pa

from memctl.models import SCHEMA
from memctl.models.ddl import org_key

# Column types that go to Arrow as themselves; every other type travels as its text form (exact:
# PostgreSQL's own output, cast back on import) and the manifest records the type.
NATIVE = {"bool", "int2", "int4", "int8", "float4", "float8", "text", "varchar", "timestamptz", "date"}
EMBEDDING_TABLES = {"memory_embeddings", "consolidated_memory_embeddings"}
_ARROW = {"bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "float4": pa.float32(),
          "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(),
          "timestamptz": pa.timestamp("us", tz="UTC"), "date": pa.date32()}

_COLUMNS = """
SELECT c.relname AS table, a.attname AS column, t.typname AS type, format_type(a.atttypid, a.atttypmod) AS pg_type,
       a.attnotnull AS not_null
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  JOIN pg_type t ON t.oid = a.atttypid
 WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')
   AND (c.relname = 'organizations' OR EXISTS (SELECT 1 FROM pg_attribute o WHERE o.attrelid = c.oid
        AND o.attname = 'org_id' AND NOT o.attisdropped))
 ORDER BY c.relname, a.attnum"""


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier (names come from the catalog; quoted all the same)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    """A stored (not generated) column: its name, ``type`` (pg_type.typname) and ``pg_type`` (the full
    SQL type, e.g. ``numeric(4,3)``, what an import casts back to)."""

    name: str
    type: str
    pg_type: str
    not_null: bool

    @property
    def native(self) -> bool:
        """True when the value goes to Arrow as itself (else as its text form)."""
        return self.type in NATIVE

    @property
    def as_text(self) -> bool:
        """True when it travels as PostgreSQL's text form (neither Arrow-native nor a vector)."""
        return not self.native and self.type != "vector"

    def arrow_type(self, dim: int | None = None) -> pa.DataType:
        """Its type in an export's Parquet file: vectors as fixed-size lists of ``dim`` float32, native
        types as themselves, every other type as a string (PostgreSQL's text form)."""
        if self.type == "vector":
            return pa.list_(pa.float32(), dim)
        return _ARROW[self.type] if self.native else pa.string()


@dataclass(frozen=True)
class TenantTable:
    """A table the organisation owns: ``key`` is the column naming the organisation (``org_id``, or
    ``id`` for organizations); ``columns`` the stored ones in table order."""

    name: str
    key: str
    columns: tuple[Column, ...]

    @property
    def embeddings(self) -> bool:
        """True for an embedding table (one file per model: the vectors' dimension differs)."""
        return self.name in EMBEDDING_TABLES


async def tenant_tables(conn: asyncpg.Connection) -> list[TenantTable]:
    """Every table of the schema an organisation owns, by name, with its stored columns."""
    by_table: dict[str, list[Column]] = {}
    for r in await conn.fetch(_COLUMNS, SCHEMA):
        by_table.setdefault(r["table"], []).append(Column(r["column"], r["type"], r["pg_type"], r["not_null"]))
    return [TenantTable(name, org_key(name), tuple(cols))
            for name, cols in sorted(by_table.items())]
