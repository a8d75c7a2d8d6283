"""Declarative base, naming convention, type map and column helpers shared by every model.

Rules from schema.md ("Rules that hold for every table"):
- names come from one naming convention (rule 8); every CHECK is named;
- tenant-owned tables have ``PRIMARY KEY (org_id, id)`` and composite foreign keys (rule 1);
- ids are ``uuid DEFAULT gen_random_uuid()`` (rule 3); times are ``timestamptz`` (rule 4);
- enumerations are ``text`` with a named ``CHECK (col IN (...))`` (rule 5);
- scores are ``numeric(4,3)`` with a range CHECK (rule 6); JSON is ``jsonb NOT NULL`` with a
  ``jsonb_typeof`` CHECK (rule 7).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "agent_memory"

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}

metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

# Python type -> column type; Mapped[X | None] makes a column nullable, Mapped[X] NOT NULL.
Json = dict[str, Any]
JsonArray = list[Any]


class Base(DeclarativeBase):
    """Declarative base of every memctl model: one MetaData in schema ``agent_memory``."""

    metadata = metadata
    type_annotation_map = {
        uuid.UUID: UUID(as_uuid=True),
        dt.datetime: TIMESTAMP(timezone=True),
        str: Text(),
        int: Integer(),
        bool: Boolean(),
        Decimal: Numeric(4, 3),
        dict[str, Any]: JSONB(),
        list[Any]: JSONB(),
        list[str]: ARRAY(Text()),
        list[uuid.UUID]: ARRAY(UUID(as_uuid=True)),
    }


SMALLINT = SmallInteger()
NOW = text("now()")
GEN_UUID = text("gen_random_uuid()")


def uuid_pk() -> Mapped[uuid.UUID]:
    """The ``id uuid DEFAULT gen_random_uuid()`` column (rule 3)."""
    return mapped_column(primary_key=True, server_default=GEN_UUID)


def org_pk() -> Mapped[uuid.UUID]:
    """The ``org_id`` column of a tenant-owned table: first column of its primary key (rule 1)."""
    return mapped_column(primary_key=True)


def created_at() -> Mapped[dt.datetime]:
    """``created_at timestamptz NOT NULL DEFAULT now()`` (rule 4)."""
    return mapped_column(server_default=NOW)


def updated_at() -> Mapped[dt.datetime]:
    """``updated_at timestamptz NOT NULL DEFAULT now()``, kept by the touch_updated_at trigger (rule 4)."""
    return mapped_column(server_default=NOW)


def jsonb_object(name: str | None = None) -> Mapped[Json]:
    """``jsonb NOT NULL DEFAULT '{}'`` (rule 7; pair with :func:`json_check`).

    ``name`` sets the SQL column name where the attribute differs (``metadata_`` -> ``metadata``).
    """
    return mapped_column(*([name] if name else []), server_default=text("'{}'::jsonb"))


def jsonb_array() -> Mapped[JsonArray]:
    """``jsonb NOT NULL DEFAULT '[]'`` (rule 7; pair with :func:`json_check`)."""
    return mapped_column(server_default=text("'[]'::jsonb"))


def enum_check(column: str, values: type[StrEnum], name: str | None = None) -> CheckConstraint:
    """Named ``CHECK (column IN (...))`` mirroring a StrEnum (rule 5). Name defaults to the column."""
    listed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


def score_check(column: str) -> CheckConstraint:
    """Named ``CHECK (column BETWEEN 0 AND 1)`` for a numeric(4,3) score (rule 6)."""
    return CheckConstraint(f"{column} >= 0 AND {column} <= 1", name=f"{column}_range")


def json_check(column: str, kind: str) -> CheckConstraint:
    """Named ``CHECK (jsonb_typeof(column) = kind)``, kind 'object' or 'array' (rule 7)."""
    return CheckConstraint(f"jsonb_typeof({column}) = '{kind}'", name=f"{column}_is_{kind}")


def length_check(column: str, low: int, high: int) -> CheckConstraint:
    """Named ``CHECK (char_length(column) BETWEEN low AND high)``."""
    return CheckConstraint(f"char_length({column}) >= {low} AND char_length({column}) <= {high}",
                           name=f"{column}_length")


def nonneg_check(column: str) -> CheckConstraint:
    """Named ``CHECK (column >= 0)``."""
    return CheckConstraint(f"{column} >= 0", name=f"{column}_nonneg")


def tenant_fk(columns: list[str], target: str, ondelete: str, *, set_null: str | None = None,
              name: str | None = None) -> ForeignKeyConstraint:
    """Composite FK ``(org_id, x_id) -> target (org_id, id)`` (rule 1).

    ``ondelete`` is CASCADE, RESTRICT or SET NULL; with SET NULL the column-list form
    ``SET NULL (x_id)`` is used so ``org_id`` is never nulled (PostgreSQL 15+).
    """
    action = f"SET NULL ({set_null or columns[1]})" if ondelete == "SET NULL" else ondelete
    return ForeignKeyConstraint(
        columns,
        [f"{SCHEMA}.{target}.org_id", f"{SCHEMA}.{target}.id"],
        ondelete=action,
        name=name,
    )


def org_fk() -> ForeignKeyConstraint:
    """``org_id -> organizations(id) ON DELETE CASCADE`` (rule 10); the PK (org_id, ...) indexes it."""
    return ForeignKeyConstraint(["org_id"], [f"{SCHEMA}.organizations.id"], ondelete="CASCADE")


def fk_index(*columns: str, **kw: Any) -> Index:
    """The supporting index of a foreign key (rule 9): leading columns are the FK's columns.

    Named by the convention ``ix_<table>_<cols>``.
    """
    return Index(None, *columns, **kw)


HEX64 = "'^[0-9a-f]{64}$'"
