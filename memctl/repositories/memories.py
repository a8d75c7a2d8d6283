"""Memories of one organisation: add (deduplicated), vector search, hot cache, versions, soft delete."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.data import registry
from memctl.errors import ConfigError, DatasetError, ModelUnavailable
from memctl.models import SCHEMA, ModelSpec
from memctl.models.embeddings import vector_problem
from memctl.models.enums import ModelState
from memctl.repositories.search_sql import available_sql, search_sql

ACTIVE = "status = 'active' AND deleted_at IS NULL"
_ROW = ("id, agent_id, content, tier, category, status, retrieval_count, accessed_at, created_at, "
        "deleted_at")


@dataclass(frozen=True)
class MemoryRow:
    """A memory as a service reads it."""

    id: uuid.UUID
    agent_id: uuid.UUID
    content: str
    tier: str
    category: str
    status: str
    retrieval_count: int
    accessed_at: dt.datetime
    created_at: dt.datetime
    deleted_at: dt.datetime | None


@dataclass(frozen=True)
class AddResult:
    """The memory's id and whether this call created it (False: an active duplicate existed)."""

    id: uuid.UUID
    created: bool


@dataclass(frozen=True)
class SearchHit:
    """A search result: memory id, content, and its distance to the query (the model's metric)."""

    id: uuid.UUID
    content: str
    distance: float


class SearchHits(list[SearchHit]):
    """The hits of one search, nearest first (a list), and whether it holds all it should.

    ``model``: the model searched (its space is the distances'). ``available``: when fewer than k
    came back, how many active memories of the organisation have an embedding of the model (None
    when k came back). ``stopped_early``: pgvector's ``hnsw.max_scan_tuples`` ended the scan before
    k rows were found (``available`` > len).
    """

    model: ModelSpec | None = None
    available: int | None = None
    stopped_early: bool = False


# A model a service may write embeddings for: ready, or registered (dual-write while it is backfilled).
WRITABLE = (ModelState.READY, ModelState.REGISTERED)
Embeddings = Mapping[str | ModelSpec, np.ndarray]


@dataclass(frozen=True)
class VersionRow:
    """An earlier content of a memory (recorded by trg_memories_record_version on each change)."""

    version_num: int
    content: str
    changed_by: str | None
    change_reason: str | None
    created_at: dt.datetime


class MemoryRepository:
    """Memories of ``org_id`` on ``conn`` (a transaction opened by :func:`org_scope`)."""

    def __init__(self, conn: AsyncConnection, org_id: uuid.UUID) -> None:
        self.conn, self.org_id = conn, org_id

    async def add(self, agent_id: uuid.UUID, content: str, *, category: str = "factual", tier: str = "task",
                  user_id: uuid.UUID | None = None, session_id: uuid.UUID | None = None,
                  metadata: dict[str, Any] | None = None, expires_at: dt.datetime | None = None,
                  embedding: np.ndarray | None = None, model: ModelSpec | None = None,
                  embeddings: Embeddings | None = None) -> AddResult:
        """Insert a memory unless an active one of the same agent has the same content.

        Deduplicates through the partial unique index (org_id, agent_id, content_hash) WHERE
        active (``ON CONFLICT ... DO NOTHING``). ``embedding`` (d,) float32 is stored for
        ``model`` (default: the organisation's current model); ``embeddings`` maps more models
        (names or specs) to their vectors: during a model change a service writes both
        (README, "Changing the embedding model"). Each row records the content hash it was
        computed from. DatasetError if a vector's dimension is not its model's; ModelUnavailable
        for a model that is unknown or retiring; ConfigError for a personal memory without ``user_id``.
        """
        if tier == "personal" and user_id is None:
            raise ConfigError("a personal memory needs its user_id (CHECK personal_has_user, revision 0014)")
        row = (await self.conn.execute(text(
            f"INSERT INTO {SCHEMA}.memories (org_id, agent_id, user_id, session_id, category, tier, content, "
            f"metadata, expires_at) VALUES (:org, :agent, :user, :session, :category, :tier, :content, "
            f"CAST(:metadata AS jsonb), :expires) "
            f"ON CONFLICT (org_id, agent_id, content_hash) WHERE {ACTIVE} DO NOTHING RETURNING id"),
            {"org": self.org_id, "agent": agent_id, "user": user_id, "session": session_id, "category": category,
             "tier": tier, "content": content, "metadata": json.dumps(metadata or {}),
             "expires": expires_at})).scalar()
        created = row is not None
        if not created:
            row = (await self.conn.execute(text(
                f"SELECT id FROM {SCHEMA}.memories WHERE org_id = :org AND agent_id = :agent AND {ACTIVE} "
                f"AND content_hash = {SCHEMA}.sha256_hex(:content)"),
                {"org": self.org_id, "agent": agent_id, "content": content})).scalar_one()
        vectors = dict(embeddings or {})
        if embedding is not None:
            vectors[model or await self.current_model()] = embedding
        await self._embed(row, vectors, replace=False)
        return AddResult(row, created)

    async def current_model(self) -> ModelSpec:
        """The model this organisation searches with now: its own choice (``memctl models
        set-default --org``) or the global default. A service embeds its query in this model's
        space and passes it to :meth:`search`, so a cutover between the two calls cannot mix spaces."""
        return await registry.current_model(self.conn, self.org_id)

    async def _embed(self, memory_id: uuid.UUID, vectors: Embeddings, replace: bool) -> None:
        """Store each model's vector for the memory, with the memory's current content hash; with
        ``replace`` an existing row of the model is overwritten (a re-embedded content)."""
        # without ``replace`` a row of the current content is kept, a stale one replaced (a duplicate add)
        conflict = ("DO UPDATE SET embedding = EXCLUDED.embedding, content_hash = EXCLUDED.content_hash, "
                    "created_at = now()" + ("" if replace else
                                            f" WHERE {SCHEMA}.memory_embeddings.content_hash <> EXCLUDED.content_hash"))
        for key, embedding in vectors.items():
            model = await registry.usable_model(self.conn, key, *WRITABLE)
            vec = np.asarray(embedding, dtype=np.float32)
            if vec.shape != (model.dim,):
                raise DatasetError(f"embedding has shape {vec.shape}, model {model.name!r} needs ({model.dim},)")
            if (problem := vector_problem(model, vec[None, :])) is not None:
                raise DatasetError(f"embedding {problem[1]} (model {model.name!r})")
            await self.conn.execute(text(
                f"INSERT INTO {SCHEMA}.memory_embeddings (org_id, memory_id, model_id, dim, embedding, content_hash, "
                f"searchable) SELECT m.org_id, m.id, :model, :dim, :embedding, m.content_hash, "
                f"m.status = 'active' AND m.deleted_at IS NULL FROM {SCHEMA}.memories m "
                f"WHERE m.org_id = :org AND m.id = :memory "
                f"ON CONFLICT (org_id, memory_id, model_id) {conflict}"),
                {"org": self.org_id, "memory": memory_id, "model": model.id, "dim": model.dim, "embedding": vec})

    async def get(self, memory_id: uuid.UUID) -> MemoryRow | None:
        """The memory, deleted or not; None when this organisation has no such memory."""
        row = (await self.conn.execute(text(
            f"SELECT {_ROW} FROM {SCHEMA}.memories WHERE org_id = :org AND id = :id"),
            {"org": self.org_id, "id": memory_id})).mappings().first()
        return MemoryRow(**row) if row else None

    async def search(self, query: np.ndarray, k: int = 10, *, model: ModelSpec | str | None = None,
                     ef_search: int = 40) -> SearchHits:
        """The ``k`` active memories nearest to ``query`` (d,) float32, nearest first, in ``model``'s
        space (a spec or a name; default: :meth:`current_model`). ``hits.model`` is the model used.

        Any ready model is served, the organisation's current one or not: a query embedded just
        before a cutover still finds its rows. An unknown, registered (not indexed yet) or retiring
        model, or a query of another dimension, raises ModelUnavailable: two 384-dimension spaces
        mix without any error, so the model is named, never guessed (issue 13).

        Contract: returns min(k, active and not deleted memories of the organisation that have an
        embedding of ``model``) rows, unless pgvector's ``hnsw.max_scan_tuples`` ends the scan
        first; then ``hits.stopped_early`` is True and ``hits.available`` says how many there were.
        The statement is :func:`~memctl.repositories.search_sql.search_sql` (the one bench-hnsw
        measures), with ``hnsw.iterative_scan = relaxed_order`` and ``hnsw.ef_search`` set for this
        transaction only. Raises ConfigError unless 1 <= k, ef_search <= 1000 (pgvector's range).
        """
        if not 1 <= k <= 1000 or not 1 <= ef_search <= 1000:
            raise ConfigError("k and ef_search must be between 1 and 1000 (pgvector's ef_search range)")
        model = await registry.usable_model(self.conn, model) if model is not None else await self.current_model()
        query = np.asarray(query, dtype=np.float32)
        if query.shape != (model.dim,):
            raise ModelUnavailable(f"query has shape {query.shape}, model {model.name!r} needs ({model.dim},)")
        await self.conn.execute(text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                                     "set_config('hnsw.ef_search', :ef, true)"), {"ef": str(int(ef_search))})
        rows = (await self.conn.exec_driver_sql(
            search_sql(model, k), (query, self.org_id))).all()
        hits = SearchHits(SearchHit(r.memory_id, r.content, float(r.distance)) for r in rows)
        hits.model = model
        if len(hits) < k:  # fewer than asked: all there are, or the scan stopped early
            hits.available = int((await self.conn.exec_driver_sql(available_sql(model), (self.org_id,))).scalar())
            hits.stopped_early = hits.available > len(hits)
        return hits

    async def mark_retrieved(self, ids: list[uuid.UUID]) -> int:
        """Count a retrieval of each memory (retrieval_count + 1, last_retrieved_at and accessed_at now)."""
        result = await self.conn.execute(text(
            f"UPDATE {SCHEMA}.memories SET retrieval_count = retrieval_count + 1, last_retrieved_at = now(), "
            f"accessed_at = now() WHERE org_id = :org AND id = ANY(:ids)"), {"org": self.org_id, "ids": list(ids)})
        return result.rowcount

    async def hot(self, agent_id: uuid.UUID | None = None, limit: int = 20) -> list[MemoryRow]:
        """The hot cache: active memories most retrieved, then most recently accessed."""
        where = "AND agent_id = :agent" if agent_id else ""
        rows = (await self.conn.execute(text(
            f"SELECT {_ROW} FROM {SCHEMA}.memories WHERE org_id = :org AND {ACTIVE} {where} "
            f"ORDER BY retrieval_count DESC, accessed_at DESC LIMIT :limit"),
            {"org": self.org_id, "agent": agent_id, "limit": int(limit)})).mappings().all()
        return [MemoryRow(**r) for r in rows]

    async def update_content(self, memory_id: uuid.UUID, content: str, *, changed_by: str | None = None,
                             reason: str | None = None, embeddings: Embeddings | None = None) -> bool:
        """Replace the content; the previous one becomes a version (who and why recorded with it).

        ``embeddings`` (model name or spec -> (d,) float32) replace the memory's vectors of those
        models with ones of the new content. A vector not replaced keeps the hash of the content it
        was computed from, so check-constraints reports it as ``stale_embedding`` and ``memctl
        models backfill --stale`` recomputes it (revision 0013).
        """
        await self.conn.execute(text("SELECT set_config('app.changed_by', :who, true), "
                                     "set_config('app.change_reason', :why, true)"),
                                {"who": changed_by or "", "why": reason or ""})
        result = await self.conn.execute(text(
            f"UPDATE {SCHEMA}.memories SET content = :content WHERE org_id = :org AND id = :id AND deleted_at IS NULL"),
            {"org": self.org_id, "id": memory_id, "content": content})
        if result.rowcount == 1 and embeddings:
            await self._embed(memory_id, embeddings, replace=True)
        return result.rowcount == 1

    async def versions(self, memory_id: uuid.UUID) -> list[VersionRow]:
        """Earlier contents of the memory, oldest first."""
        rows = (await self.conn.execute(text(
            f"SELECT version_num, content, changed_by, change_reason, created_at FROM {SCHEMA}.memory_versions "
            f"WHERE org_id = :org AND memory_id = :id ORDER BY version_num"),
            {"org": self.org_id, "id": memory_id})).mappings().all()
        return [VersionRow(**r) for r in rows]

    async def soft_delete(self, memory_id: uuid.UUID) -> bool:
        """Mark the memory deleted (``memctl maintain purge`` removes it after the grace period)."""
        result = await self.conn.execute(text(
            f"UPDATE {SCHEMA}.memories SET deleted_at = now() WHERE org_id = :org AND id = :id AND deleted_at IS NULL"),
            {"org": self.org_id, "id": memory_id})
        return result.rowcount == 1
