"""The embedding model registry: look up, register, and (re)build a model's HNSW indexes.

A model's lifecycle (revision 0013): ``add_model`` registers it (state registered, no index),
``memctl models index`` builds its indexes concurrently (ready), ``memctl models retire`` removes
it (retiring, then gone). ``register_model`` is seed's shortcut for a new dataset's model: it
builds the indexes in the caller's transaction and registers the model ready.
"""

from __future__ import annotations

import unicodedata
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.db.names import checked
from memctl.errors import ConfigError, DatasetError, ModelUnavailable, NotFound
from memctl.models import SCHEMA, ModelSpec, hnsw_index_name
from memctl.models.embeddings import EMBEDDING_TABLES, MAX_DIM, MODEL_COLUMNS, hnsw_index_ddl
from memctl.models.enums import Distance, IndexStorage, ModelState

_COLUMNS = MODEL_COLUMNS
# Unicode categories a name must not hold: control, format (zero-width, direction overrides), line and
# paragraph separators, surrogates, private use, unassigned: two names that print alike stay apart.
UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


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
        f"INSERT INTO {SCHEMA}.embedding_models (name, dim, index_storage, state) "
        f"VALUES (:name, :dim, :storage, 'ready') "
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


def check_model_params(dim: int, distance: str, storage: str, m: int, ef_construction: int) -> None:
    """Raise ConfigError unless the parameters fit pgvector's HNSW limits (pgvector README, "HNSW":
    vector up to 2,000 dimensions, halfvec up to 4,000; m 2..100; ef_construction 4..1000 and at
    least 2 * m), the same rules as embedding_models' CHECKs."""
    if distance not in set(Distance):
        raise ConfigError(f"--distance must be one of {', '.join(Distance)}, got {distance!r}")
    if storage not in set(IndexStorage):
        raise ConfigError(f"--storage must be one of {', '.join(IndexStorage)}, got {storage!r}")
    limit = MAX_DIM[IndexStorage(storage)]
    if not 1 <= dim <= limit:
        raise ConfigError(f"--dim {dim}: pgvector's HNSW index takes 1 to {limit} dimensions with {storage} "
                          f"storage" + (" (use --storage halfvec up to 4000)" if storage == "vector" else ""))
    if not 2 <= m <= 100:
        raise ConfigError(f"--m {m}: pgvector's HNSW m is 2 to 100")
    if not 2 * m <= ef_construction <= 1000:
        raise ConfigError(f"--ef-construction {ef_construction}: pgvector needs 2 * m ({2 * m}) to 1000")


async def add_model(conn: AsyncConnection, name: str, dim: int, *, distance: str = "cosine",
                    storage: str = "vector", m: int = 16, ef_construction: int = 64) -> ModelSpec:
    """Register model ``name`` in state registered (no index yet: backfill first, then
    ``memctl models index``). Raises ConfigError for parameters pgvector refuses
    (:func:`check_model_params`) or a name already registered."""
    check_model_params(dim, distance, storage, m, ef_construction)
    if not 1 <= len(name) <= 200 or name != name.strip() or any(unicodedata.category(c) in UNPRINTABLE for c in name):
        raise ConfigError("a model name is 1 to 200 characters, without control or invisible format characters "
                          "(zero-width, direction overrides, line separators) or blanks at either end")
    row = (await conn.execute(text(
        f"INSERT INTO {SCHEMA}.embedding_models (name, dim, distance, index_storage, hnsw_m, hnsw_ef_construction) "
        f"VALUES (:name, :dim, :distance, :storage, :m, :ef) ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}"),
        {"name": name, "dim": dim, "distance": distance, "storage": storage, "m": m, "ef": ef_construction},
    )).mappings().first()
    if row is None:
        raise ConfigError(f"a model named {name!r} is registered already (memctl models list)")
    return ModelSpec(**row)


async def current_model(conn: AsyncConnection, org_id: uuid.UUID) -> ModelSpec:
    """The model organisation ``org_id`` searches with: its own (organization_models) or the global
    default. Raises NotFound when neither exists."""
    row = (await conn.execute(text(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.embedding_models WHERE id = coalesce("
        f"(SELECT model_id FROM {SCHEMA}.organization_models WHERE org_id = :org), "
        f"(SELECT id FROM {SCHEMA}.embedding_models WHERE is_default))"), {"org": org_id})).mappings().first()
    if row is None:
        raise NotFound("no default embedding model is registered (run memctl migrate)")
    return ModelSpec(**row)


async def usable_model(conn: AsyncConnection, model: ModelSpec | str, *states: str) -> ModelSpec:
    """``model`` (a name, or a spec re-read by id so a model retired since is noticed) if its state is
    one of ``states`` (default: ready). Raises ModelUnavailable naming the state otherwise."""
    states = states or (ModelState.READY,)
    if isinstance(model, ModelSpec):
        row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM {SCHEMA}.embedding_models WHERE id = :id"),
                                  {"id": model.id})).mappings().first()
        shown = model.name
    else:
        row = (await conn.execute(text(f"SELECT {_COLUMNS} FROM {SCHEMA}.embedding_models WHERE name = :name"),
                                  {"name": checked("embedding model named", model)})).mappings().first()
        shown = model
    if row is None:
        raise ModelUnavailable(f"no embedding model named {shown!r} is registered")
    spec = ModelSpec(**row)
    if spec.state not in states:
        raise ModelUnavailable(f"embedding model {spec.name!r} is {spec.state}, not {' or '.join(states)}"
                               + (" (memctl models index makes it ready)" if spec.state == "registered" else ""))
    return spec
