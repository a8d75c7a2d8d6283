"""Embedding spaces and the embeddings of memories (schema.md "embedding_models", "Embeddings").

Embeddings live beside their owner, one row per (owner, model), in an untyped ``vector`` column
checked against the model's ``dim``. Each registered model gets one HNSW partial expression index
per embedding table (:func:`hnsw_index`); queries must use the same expression
(``embedding::vector(<dim>) <=> $1`` with ``model_id = <id>``, and ``searchable`` on
memory_embeddings, whose indexes hold only searchable rows: revision 0018).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass

import numpy as np
from pgvector.sqlalchemy import HALFVEC, VECTOR
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Identity,
    Index,
    MetaData,
    SmallInteger,
    Table,
    UniqueConstraint,
    and_,
    cast,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CreateIndex

from memctl.models.base import (
    HEX64,
    SCHEMA,
    SMALLINT,
    Base,
    created_at,
    enum_check,
    fk_index,
    org_fk,
    org_pk,
    tenant_fk,
    updated_at,
)
from memctl.models.enums import Distance, IndexStorage, ModelState

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # S3's Vector(384)
DEFAULT_MODEL_DIM = 384
DEFAULT_HNSW_M = 16  # S5: m = 16 (also pgvector's default)
DEFAULT_HNSW_EF_CONSTRUCTION = 64  # S5: ef_construction = 64 (also pgvector's default)
MAX_DIM = {IndexStorage.VECTOR: 2000, IndexStorage.HALFVEC: 4000}  # pgvector HNSW limits

EMBEDDING_TABLES = ("memory_embeddings", "consolidated_memory_embeddings")
SEARCHABLE_TABLE = "memory_embeddings"  # the embedding table with ``searchable`` (revision 0012)
HALFVEC_MAX = 65504.0  # the largest finite half-precision value (IEEE 754 binary16): halfvec's range
# the revision that added model states, organization_models and content hashes: the code that reads
# them (memctl models, seed, bench-hnsw, check-constraints, export) needs a database at least there
LIFECYCLE_REVISION = "0013"
# the columns of embedding_models that make a ModelSpec, in its order
MODEL_COLUMNS = "id, name, dim, distance, index_storage, hnsw_m, hnsw_ef_construction, state"

# distance -> (SQL operator, opclass suffix); pgvector README "Querying" and "HNSW".
DISTANCE_OPS = {
    Distance.COSINE: ("<=>", "cosine_ops"),
    Distance.L2: ("<->", "l2_ops"),
    Distance.INNER_PRODUCT: ("<#>", "ip_ops"),
}


class EmbeddingModel(Base):
    """A registered embedding space: name, dimension, distance and its HNSW build parameters."""

    __tablename__ = "embedding_models"
    __table_args__ = (
        UniqueConstraint("name"),
        UniqueConstraint("id", "dim"),
        CheckConstraint("dim >= 1 AND dim <= 16000", name="dim_range"),
        enum_check("distance", Distance),
        enum_check("index_storage", IndexStorage),
        CheckConstraint(
            "(index_storage = 'vector' AND dim <= 2000) OR (index_storage = 'halfvec' AND dim <= 4000)",
            name="hnsw_dim_limit",
        ),
        CheckConstraint("hnsw_m >= 2 AND hnsw_m <= 100", name="hnsw_m_range"),
        CheckConstraint("hnsw_ef_construction >= 2 * hnsw_m AND hnsw_ef_construction <= 1000",
                        name="hnsw_ef_construction_range"),
        Index("uq_embedding_models_is_default", "is_default", unique=True, postgresql_where=text("is_default")),
        enum_check("state", ModelState),
        CheckConstraint("length(name) >= 1 AND length(name) <= 200 AND name = btrim(name) AND name !~ '[[:cntrl:]]'",
                        name="name_format"),
        CheckConstraint("NOT is_default OR state = 'ready'", name="default_is_ready"),
    )

    id: Mapped[int] = mapped_column(SMALLINT, Identity(always=True), primary_key=True)
    name: Mapped[str]
    dim: Mapped[int] = mapped_column(SMALLINT)
    distance: Mapped[str] = mapped_column(server_default=text("'cosine'"))
    index_storage: Mapped[str] = mapped_column(server_default=text("'vector'"))
    hnsw_m: Mapped[int] = mapped_column(SMALLINT, server_default=text(str(DEFAULT_HNSW_M)))
    hnsw_ef_construction: Mapped[int] = mapped_column(
        SMALLINT, server_default=text(str(DEFAULT_HNSW_EF_CONSTRUCTION)))
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[dt.datetime] = created_at()
    # registered -> ready -> retiring (revision 0013): verify-schema requires valid indexes of ready models
    state: Mapped[str] = mapped_column(server_default=text("'registered'"))


class OrganizationModel(Base):
    """An organisation's embedding model, when it is not the global default (revision 0013).

    Written only by ``memctl models set-default --org`` (memctl_admin): memory_app may read its own
    organisation's row, never write it, so a tenant cannot switch its model past set-default's checks.
    """

    __tablename__ = "organization_models"
    __table_args__ = (
        org_fk(),
        ForeignKeyConstraint(["model_id"], [f"{SCHEMA}.embedding_models.id"], ondelete="RESTRICT"),
        fk_index("model_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(SMALLINT)
    created_at: Mapped[dt.datetime] = created_at()
    updated_at: Mapped[dt.datetime] = updated_at()


def _embedding_table_args(owner_col: str, owner_table: str) -> tuple:
    return (
        tenant_fk(["org_id", owner_col], owner_table, "CASCADE"),
        ForeignKeyConstraint(["model_id", "dim"], [f"{SCHEMA}.embedding_models.id",
                                                   f"{SCHEMA}.embedding_models.dim"], ondelete="RESTRICT"),
        fk_index("model_id", "dim"),
        CheckConstraint("vector_dims(embedding) = dim", name="embedding_dim"),
        CheckConstraint(f"content_hash ~ {HEX64}", name="content_hash_sha256"),
    )


class Embedding(VECTOR):
    """pgvector's ``vector`` type whose values go to asyncpg as numpy arrays.

    memctl's engines register pgvector's binary asyncpg codec on connect (db.engine); pgvector's
    SQLAlchemy type renders values as text first, which that codec refuses ("expected list or
    ndarray"), so an ORM insert failed. Here a value is handed over as a (d,) float32 array on
    asyncpg; other drivers keep pgvector's text form. Results come back as (d,) float32 arrays.
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect):
        """(d,) float32 arrays for asyncpg (its codec encodes them), pgvector's text elsewhere."""
        if dialect.driver != "asyncpg":
            return super().bind_processor(dialect)

        def process(value):
            return None if value is None else np.asarray(value, dtype=np.float32)
        return process

    def result_processor(self, dialect: Dialect, coltype):
        """(d,) float32 arrays, whatever the driver handed back (pgvector's type made lists)."""
        convert = super().result_processor(dialect, coltype)

        def process(value):
            value = value if isinstance(value, np.ndarray) else convert(value)
            return None if value is None else np.asarray(value, dtype=np.float32)
        return process


class MemoryEmbedding(Base):
    """The embedding of a memory in one model's space (S4 memory_embeddings). PK (org_id, memory_id, model_id)."""

    __tablename__ = "memory_embeddings"
    __table_args__ = _embedding_table_args("memory_id", "memories")

    org_id: Mapped[uuid.UUID] = org_pk()
    memory_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(SMALLINT, primary_key=True)
    dim: Mapped[int] = mapped_column(SMALLINT)
    embedding: Mapped[object] = mapped_column(Embedding())
    external_vector_id: Mapped[str | None]  # S4 vector_id
    created_at: Mapped[dt.datetime] = created_at()
    # the memory is active and not deleted: kept by triggers (ddl.SYNC_SEARCHABLE), filtered in the index scan;
    # no default: left NULL, a BEFORE INSERT trigger sets it from the memory (revision 0013)
    searchable: Mapped[bool]
    # the memory's content_hash the vector was computed from; NULL: its content at the time of writing,
    # unchanged since (trg_memories_freeze_embedding_hash records the old hash when it changes; 0013)
    content_hash: Mapped[str | None]


class ConsolidatedMemoryEmbedding(Base):
    """The embedding of a consolidated memory in one model's space (S2 idx_cm_embedding)."""

    __tablename__ = "consolidated_memory_embeddings"
    __table_args__ = _embedding_table_args("consolidated_memory_id", "consolidated_memories")

    org_id: Mapped[uuid.UUID] = org_pk()
    consolidated_memory_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(SMALLINT, primary_key=True)
    dim: Mapped[int] = mapped_column(SMALLINT)
    embedding: Mapped[object] = mapped_column(Embedding())
    external_vector_id: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    content_hash: Mapped[str | None]  # as in memory_embeddings (revision 0013)


@dataclass(frozen=True)
class ModelSpec:
    """What an HNSW index of a model depends on: a row of embedding_models."""

    id: int
    name: str
    dim: int
    distance: str = Distance.COSINE
    index_storage: str = IndexStorage.VECTOR
    hnsw_m: int = DEFAULT_HNSW_M
    hnsw_ef_construction: int = DEFAULT_HNSW_EF_CONSTRUCTION
    state: str = ModelState.READY

    @property
    def operator(self) -> str:
        """The pgvector distance operator of this model (``<=>`` cosine, ``<->`` l2, ``<#>`` ip)."""
        return DISTANCE_OPS[Distance(self.distance)][0]

    @property
    def opclass(self) -> str:
        """The HNSW operator class, e.g. ``vector_cosine_ops`` or ``halfvec_ip_ops``."""
        return f"{self.index_storage}_{DISTANCE_OPS[Distance(self.distance)][1]}"

    @property
    def cast_sql(self) -> str:
        """The indexed expression's type, e.g. ``vector(384)``: queries cast ``embedding`` to it."""
        return f"{self.index_storage}({self.dim})"


def content_hash(text: str) -> str:
    """SHA-256 hex of the UTF-8 text: what ``agent_memory.sha256_hex(content)`` computes for the generated
    ``content_hash`` (schema.md), so a writer can fill an embedding row's content_hash without a round trip."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hnsw_index_name(table: str, model_id: int) -> str:
    """``ix_<table>_hnsw_<model_id>`` (schema.md "Embeddings")."""
    return f"ix_{table}_hnsw_{model_id}"


def is_hnsw_index_name(name: str) -> bool:
    """True for a name :func:`hnsw_index_name` makes: a per-model index, which follows the rows of
    embedding_models rather than the models (Alembic's autogenerate must not compare it)."""
    return re.fullmatch(r"ix_\w+_hnsw_\d+", name) is not None


def hnsw_index_ddl(dialect: Dialect, table: str, model: ModelSpec) -> str:
    """``CREATE INDEX`` of ``model``'s HNSW index on embedding table ``table`` (see :func:`hnsw_index`)."""
    return str(CreateIndex(hnsw_index(table, model)).compile(dialect=dialect))


def hnsw_index(table: str, model: ModelSpec) -> Index:
    """The HNSW partial expression index of ``model`` on embedding table ``table``.

    ``USING hnsw ((embedding::vector(dim)) <opclass>) WITH (m, ef_construction) WHERE model_id = id``,
    plus ``AND searchable`` on memory_embeddings (revision 0018: a memory that is archived or deleted
    gets no new graph entry, which took archiving 9,968 of 100,000 rows from 38.7 s to 4.4 s; pgvector README,
    "Filtering", partial indexes). Built on a scratch Table so that it is not attached to the
    models' MetaData.
    """
    scratch = Table(table, MetaData(schema=SCHEMA), Column("embedding", VECTOR()),
                    Column("model_id", SmallInteger), Column("searchable", Boolean))
    type_ = VECTOR(model.dim) if model.index_storage == IndexStorage.VECTOR else HALFVEC(model.dim)
    expr = cast(scratch.c.embedding, type_).label("embedding_typed")
    return Index(
        hnsw_index_name(table, model.id),
        expr,
        postgresql_using="hnsw",
        postgresql_with={"m": model.hnsw_m, "ef_construction": model.hnsw_ef_construction},
        postgresql_ops={"embedding_typed": model.opclass},
        postgresql_where=(and_(scratch.c.model_id == model.id, scratch.c.searchable)
                          if table == SEARCHABLE_TABLE else scratch.c.model_id == model.id),
    )


def vector_problem(model: ModelSpec, vectors: np.ndarray) -> tuple[np.ndarray, str] | None:
    """The rows of ``vectors`` (n, d) float32 that ``model``'s index cannot hold, and why, or None.

    In order: a NaN or infinite value; a squared norm past float32's range (pgvector sums in
    float32: its distances would be NaN); a zero vector under a cosine model (no cosine distance,
    pgvector README); a value outside halfvec's range (+-65504) when the index stores halfvec (the
    build would fail on it).
    """
    v = np.asarray(vectors, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        checks = [
            (~np.isfinite(v).all(axis=1), "holds NaN or infinity"),
            (~np.isfinite(np.einsum("ij,ij->i", v, v)), "is too large: its squared norm overflows float32"),
            (~v.any(axis=1) if model.distance == Distance.COSINE else None,
             "is a zero vector, which has no cosine distance"),
            ((np.abs(v) > HALFVEC_MAX).any(axis=1) if model.index_storage == IndexStorage.HALFVEC else None,
             f"holds a value beyond halfvec's range (+-{HALFVEC_MAX:g})"),
        ]
    for bad, why in checks:
        if bad is not None and bad.any():
            return np.flatnonzero(bad), why
    return None
