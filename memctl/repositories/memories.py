"""Memories of one organisation: add (deduplicated), vector search, hot cache, versions, soft delete."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.data import registry
from memctl.errors import ConfigError, DatasetError
from memctl.models import SCHEMA, ModelSpec
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

    ``available``: when fewer than k came back, how many active memories of the organisation have
    an embedding of the model (None when k came back). ``stopped_early``: pgvector's
    ``hnsw.max_scan_tuples`` ended the scan before k rows were found (``available`` > len).
    """

    available: int | None = None
    stopped_early: bool = False


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
                  embedding: np.ndarray | None = None, model: ModelSpec | None = None) -> AddResult:
        """Insert a memory unless an active one of the same agent has the same content.

        Deduplicates through the partial unique index (org_id, agent_id, content_hash) WHERE
        active (``ON CONFLICT ... DO NOTHING``). ``embedding`` (d,) float32 is stored for
        ``model`` (default: the default model); DatasetError if its dimension is not the model's.
        """
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
        if embedding is not None:
            await self._embed(row, embedding, model)
        return AddResult(row, created)

    async def _embed(self, memory_id: uuid.UUID, embedding: np.ndarray, model: ModelSpec | None) -> None:
        model = model or await registry.get_model(self.conn)
        vec = np.asarray(embedding, dtype=np.float32)
        if vec.shape != (model.dim,):
            raise DatasetError(f"embedding has shape {vec.shape}, model {model.name!r} needs ({model.dim},)")
        await self.conn.execute(text(
            f"INSERT INTO {SCHEMA}.memory_embeddings (org_id, memory_id, model_id, dim, embedding) "
            f"VALUES (:org, :memory, :model, :dim, :embedding) ON CONFLICT DO NOTHING"),
            {"org": self.org_id, "memory": memory_id, "model": model.id, "dim": model.dim, "embedding": vec})

    async def get(self, memory_id: uuid.UUID) -> MemoryRow | None:
        """The memory, deleted or not; None when this organisation has no such memory."""
        row = (await self.conn.execute(text(
            f"SELECT {_ROW} FROM {SCHEMA}.memories WHERE org_id = :org AND id = :id"),
            {"org": self.org_id, "id": memory_id})).mappings().first()
        return MemoryRow(**row) if row else None

    async def search(self, query: np.ndarray, k: int = 10, *, model: ModelSpec | None = None,
                     ef_search: int = 40) -> SearchHits:
        """The ``k`` active memories nearest to ``query`` (d,) float32, nearest first.

        Contract: returns min(k, active and not deleted memories of the organisation that have an
        embedding of ``model``) rows, unless pgvector's ``hnsw.max_scan_tuples`` ends the scan
        first; then ``hits.stopped_early`` is True and ``hits.available`` says how many there were.
        The statement is :func:`~memctl.repositories.search_sql.search_sql` (the one bench-hnsw
        measures), with ``hnsw.iterative_scan = relaxed_order`` and ``hnsw.ef_search`` set for this
        transaction only. Raises ConfigError unless 1 <= k, ef_search <= 1000 (pgvector's range).
        """
        if not 1 <= k <= 1000 or not 1 <= ef_search <= 1000:
            raise ConfigError("k and ef_search must be between 1 and 1000 (pgvector's ef_search range)")
        model = model or await registry.get_model(self.conn)
        await self.conn.execute(text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                                     "set_config('hnsw.ef_search', :ef, true)"), {"ef": str(int(ef_search))})
        rows = (await self.conn.exec_driver_sql(
            search_sql(model, k), (np.asarray(query, dtype=np.float32), self.org_id))).all()
        hits = SearchHits(SearchHit(r.memory_id, r.content, float(r.distance)) for r in rows)
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
                             reason: str | None = None) -> bool:
        """Replace the content; the previous one becomes a version (who and why recorded with it)."""
        await self.conn.execute(text("SELECT set_config('app.changed_by', :who, true), "
                                     "set_config('app.change_reason', :why, true)"),
                                {"who": changed_by or "", "why": reason or ""})
        result = await self.conn.execute(text(
            f"UPDATE {SCHEMA}.memories SET content = :content WHERE org_id = :org AND id = :id AND deleted_at IS NULL"),
            {"org": self.org_id, "id": memory_id, "content": content})
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
