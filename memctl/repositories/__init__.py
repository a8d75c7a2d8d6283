"""Org-scoped repositories for services: a transaction per unit of work with
``app.current_org_id`` set before any query, so row-level security confines it to one tenant.

    from memctl import make_engine
    from memctl.repositories import org_scope

    async with org_scope(engine, org_id) as uow:
        added = await uow.memories.add(agent_id, "prefers dark mode", category="preference")
        hits = await uow.memories.search(query_vector, k=5)
"""

from memctl.repositories.memories import AddResult, MemoryRepository, MemoryRow, SearchHit, SearchHits, VersionRow
from memctl.repositories.scope import OrgSession, org_scope, org_uuid
from memctl.repositories.sessions import SessionRepository, SessionRow

__all__ = ["AddResult", "MemoryRepository", "MemoryRow", "OrgSession", "SearchHit", "SearchHits", "SessionRepository",
           "SessionRow", "VersionRow", "org_scope", "org_uuid"]
