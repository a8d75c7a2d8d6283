"""The unit of work of a service: one transaction, one organisation (S3's BaseRepository, fixed).

``org_scope`` opens a transaction and, before any query, sets ``app.current_org_id`` with
``set_config(..., true)``: transaction-local, so a pooled connection never carries one tenant's
setting into the next transaction (schema.md rule 2; S3's ``SET LOCAL ... = :org_id`` cannot
take a bind parameter, set_config can). Row-level security then confines every statement to
that organisation when the service connects as a member of ``memory_app``; the repositories
also filter on ``org_id`` themselves, which lets the planner use the tenant indexes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.errors import ConfigError
from memctl.repositories.memories import MemoryRepository
from memctl.repositories.sessions import SessionRepository


def org_uuid(org_id: uuid.UUID | str) -> uuid.UUID:
    """``org_id`` as a UUID; ConfigError for anything that is not one."""
    try:
        return org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id))
    except ValueError:
        raise ConfigError(f"organisation id must be a UUID, got {org_id!r}") from None


@dataclass
class OrgSession:
    """One organisation's transaction: ``memories`` and ``sessions`` repositories on ``conn``."""

    conn: AsyncConnection
    org_id: uuid.UUID

    @property
    def memories(self) -> MemoryRepository:
        """Memories of this organisation."""
        return MemoryRepository(self.conn, self.org_id)

    @property
    def sessions(self) -> SessionRepository:
        """Sessions of this organisation."""
        return SessionRepository(self.conn, self.org_id)


@asynccontextmanager
async def org_scope(engine: AsyncEngine, org_id: uuid.UUID | str) -> AsyncIterator[OrgSession]:
    """A transaction scoped to ``org_id``: committed when the block ends, rolled back on error.

    Use an engine from :func:`memctl.make_engine` (it registers pgvector's codecs, so embeddings
    are numpy arrays). Raises ConfigError for an ``org_id`` that is not a UUID.
    """
    org = org_uuid(org_id)
    async with engine.begin() as conn:
        await conn.execute(text("SELECT set_config('app.current_org_id', :org, true)"), {"org": str(org)})
        yield OrgSession(conn, org)
