"""Sessions of one organisation: start, end, read."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.models import SCHEMA

_ROW = "id, agent_id, user_id, started_at, ended_at"


@dataclass(frozen=True)
class SessionRow:
    """A session of an agent (with a user, when there is one)."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: uuid.UUID | None
    started_at: dt.datetime
    ended_at: dt.datetime | None


class SessionRepository:
    """Sessions of ``org_id`` on ``conn`` (a transaction opened by :func:`org_scope`)."""

    def __init__(self, conn: AsyncConnection, org_id: uuid.UUID) -> None:
        self.conn, self.org_id = conn, org_id

    async def start(self, agent_id: uuid.UUID, user_id: uuid.UUID | None = None,
                    metadata: dict[str, Any] | None = None) -> uuid.UUID:
        """A new session's id."""
        return (await self.conn.execute(text(
            f"INSERT INTO {SCHEMA}.sessions (org_id, agent_id, user_id, metadata) "
            f"VALUES (:org, :agent, :user, CAST(:metadata AS jsonb)) RETURNING id"),
            {"org": self.org_id, "agent": agent_id, "user": user_id,
             "metadata": json.dumps(metadata or {})})).scalar_one()

    async def end(self, session_id: uuid.UUID) -> bool:
        """Mark an open session ended; False if it is unknown or already ended."""
        result = await self.conn.execute(text(
            f"UPDATE {SCHEMA}.sessions SET ended_at = now() WHERE org_id = :org AND id = :id AND ended_at IS NULL"),
            {"org": self.org_id, "id": session_id})
        return result.rowcount == 1

    async def get(self, session_id: uuid.UUID) -> SessionRow | None:
        """The session, or None when this organisation has no such session."""
        row = (await self.conn.execute(text(
            f"SELECT {_ROW} FROM {SCHEMA}.sessions WHERE org_id = :org AND id = :id"),
            {"org": self.org_id, "id": session_id})).mappings().first()
        return SessionRow(**row) if row else None

    async def list(self, agent_id: uuid.UUID | None = None, open_only: bool = False) -> list[SessionRow]:
        """Sessions, newest first, of one agent or all, optionally only those not ended."""
        where = ("AND agent_id = :agent " if agent_id else "") + ("AND ended_at IS NULL" if open_only else "")
        rows = (await self.conn.execute(text(
            f"SELECT {_ROW} FROM {SCHEMA}.sessions WHERE org_id = :org {where} ORDER BY started_at DESC"),
            {"org": self.org_id, "agent": agent_id})).mappings().all()
        return [SessionRow(**r) for r in rows]
