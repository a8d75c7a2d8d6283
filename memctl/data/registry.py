"""The embedding model registry: look up, register, and (re)build a model's HNSW indexes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.db.names import checked
from memctl.errors import DatasetError, NotFound
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.models.embeddings import EMBEDDING_TABLES, MAX_DIM, MODEL_COLUMNS, hnsw_index_ddl
from memctl.models.enums import IndexStorage

_COLUMNS = MODEL_COLUMNS


async def get_model(conn: AsyncConnection, name: str | None = None) -> ModelSpec:
    """The registered model called ``name``, or the default model when ``name`` is None.

    Raises :class:`NotFound` when there is no such row (names are bound, never formatted into SQL).
    """
    where, params = ("name = :name", {"name": checked("embedding model named", name)}) if name else ("is_default", {})
    row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM {SCHEMA}.embedding_models WHERE {where}"),
                              params)).mappings().first()
    if row is None:
        raise NotFound(f"no embedding model named {name!r} is registered" if name
                       else "no default embedding model is registered (run memctl migrate)")
    return ModelSpec(**row)


async def register_model(conn: AsyncConnection, name: str, dim: int) -> ModelSpec:
    """Register a cosine model ``name`` of dimension ``dim`` and create its HNSW indexes.

    Storage is ``vector`` up to 2000 dimensions and ``halfvec`` up to 4000 (pgvector's HNSW
    limits); larger raises :class:`DatasetError`. Runs in the caller's transaction.
    """
    if dim <= MAX_DIM[IndexStorage.VECTOR]:
        storage = IndexStorage.VECTOR
    elif dim <= MAX_DIM[IndexStorage.HALFVEC]:
        storage = IndexStorage.HALFVEC
    else:
        raise DatasetError(f"dimension {dim} exceeds pgvector's HNSW limit of 4000 (halfvec)")
    row = (await conn.execute(text(
        f"INSERT INTO {SCHEMA}.embedding_models (name, dim, index_storage) VALUES (:name, :dim, :storage) "
        f"RETURNING {_COLUMNS}"), {"name": name, "dim": dim, "storage": str(storage)})).mappings().one()
    model = ModelSpec(**row)
    for table in EMBEDDING_TABLES:
        await create_index(conn, table, model)
    return model


async def drop_index(conn: AsyncConnection, table: str, model: ModelSpec) -> None:
    """Drop ``model``'s HNSW index on ``table`` if it exists (in the caller's transaction)."""
    await conn.exec_driver_sql(f"DROP INDEX IF EXISTS {SCHEMA}.{hnsw_index_name(table, model.id)}")


async def create_index(conn: AsyncConnection, table: str, model: ModelSpec) -> None:
    """Create ``model``'s HNSW index on ``table`` (in the caller's transaction)."""
    await conn.exec_driver_sql(hnsw_index_ddl(conn.dialect, table, model))
