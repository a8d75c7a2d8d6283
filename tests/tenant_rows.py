"""One row in every tenant table for an organisation: the data the isolation proof works on.

Written by hand per table, in foreign-key order; the proof lists the tables from the catalog,
and fails for a table that has no row here, so a new tenant table cannot go unproven.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

S = "agent_memory"
VECTOR_384 = "'[" + ",".join(["0.1"] * 384) + "]'"  # a constant non-zero vector (0.1 in every dimension)

# table -> (columns, values); :org, :slug, :hash are bound, <table> is the id made for that table earlier.
ROWS: list[tuple[str, str, str]] = [
    ("organizations", "id, slug, name", ":org, :slug, :slug"),
    ("agents", "org_id, name", ":org, 'agent'"),
    ("users", "org_id, external_id", ":org, 'user-1'"),
    ("projects", "org_id, name", ":org, 'project'"),
    ("data_sources", "org_id, source_name, source_type", ":org, 'docs', 'api'"),
    ("memory_access_policies", "org_id, policy_name, policy_rules", ":org, 'policy', '{}'"),
    ("retention_policies", "org_id, tier, max_age_days", ":org, 'task', 30"),
    ("api_tokens", "org_id, name, token_prefix, token_hash", ":org, 'token', 'abcdefgh', :hash"),
    ("consolidation_jobs", "org_id, trigger_type, triggered_by", ":org, 'manual', 'test'"),
    ("directives", "org_id, agent_id, content", ":org, <agents>, 'be brief'"),
    ("memory_collections", "org_id, user_id, collection_type, name", ":org, <users>, 'list', 'favourites'"),
    ("sessions", "org_id, agent_id", ":org, <agents>"),
    ("checkpoints", "org_id, session_id, step", ":org, <sessions>, 1"),
    ("task_contexts", "org_id, agent_id, task_goal", ":org, <agents>, 'ship it'"),
    ("stage_memories", "org_id, task_id, stage_type", ":org, <task_contexts>, 'planning'"),
    ("task_errors", "org_id, task_id, error_type, error_severity", ":org, <task_contexts>, 'missing_info', 0.5"),
    ("compression_metrics", "org_id, compression_type, input_tokens, output_tokens", ":org, 'task', 10, 5"),
    ("memories", "org_id, agent_id, category, content", ":org, <agents>, 'factual', 'the sky is blue'"),
    ("consolidated_memories", "org_id, content, tier, abstraction_level, pattern_type, source_memory_ids, "
     "consolidation_method", ":org, 'summary', 'task', 1, 'summary', ARRAY[<memories>]::uuid[], 'manual'"),
    ("consolidated_memory_embeddings", "org_id, consolidated_memory_id, model_id, dim, embedding",
     f":org, <consolidated_memories>, 1, 384, {VECTOR_384}"),
    ("memory_embeddings", "org_id, memory_id, model_id, dim, embedding", f":org, <memories>, 1, 384, {VECTOR_384}"),
    ("memory_tags", "org_id, memory_id, tag", ":org, <memories>, 'colour'"),
    ("memory_versions", "org_id, memory_id, version_num, content, content_hash", ":org, <memories>, 1, 'old', :hash"),
    ("memory_collection_items", "org_id, collection_id, memory_id", ":org, <memory_collections>, <memories>"),
    ("organization_models", "org_id, model_id", ":org, 1"),
    ("memory_relationships", "org_id, source_memory_id, target_memory_id, relationship_type",
     ":org, <memories>, <memory_2>, 'supports'"),
]


PARENTS = {"agents", "users", "sessions", "task_contexts", "memories", "consolidated_memories", "memory_collections"}


async def add_tenant_rows(conn: AsyncConnection, slug: str) -> uuid.UUID:
    """Create organisation ``slug`` with one row in every table of :data:`ROWS`; its id."""
    org = uuid.uuid4()
    ids: dict[str, object] = {}
    params = {"org": org, "slug": slug, "hash": hashlib.sha256(slug.encode()).hexdigest()}
    for table, columns, values in ROWS:
        if table == "memory_relationships":  # needs a second memory
            second = (await conn.execute(text(
                f"INSERT INTO {S}.memories (org_id, agent_id, category, content) "
                f"VALUES (:org, '{ids['agents']}', 'factual', 'grass is green') RETURNING id"), params)).scalar()
            ids["memory_2"] = second
        sql_values = re.sub(r"<(\w+)>", lambda m: f"'{ids[m.group(1)]}'", values)
        returning = "id" if table in PARENTS else "ctid"
        row = (await conn.execute(text(f"INSERT INTO {S}.{table} ({columns}) VALUES ({sql_values}) "
                                       f"RETURNING {returning}"), params)).scalar()
        ids[table] = row
    return org


def covered_tables() -> set[str]:
    """Tables that get a row."""
    return {t for t, _, _ in ROWS}
