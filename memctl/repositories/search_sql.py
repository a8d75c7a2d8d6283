"""The one top-k search statement: what services run (:meth:`MemoryRepository.search`) and what
``memctl bench-hnsw`` measures, built here only.

The query path of schema.md "Embeddings": the model's partial HNSW index (``model_id`` a literal, so
the index predicate matches), ``ORDER BY embedding::<type>(d) <op> $1 LIMIT k``, with ``org_id = $2``
and ``searchable`` (the memory is active and not deleted, revision 0012) filtered inside the index
scan. With ``hnsw.iterative_scan`` on, pgvector goes on scanning until k rows pass both filters or
``hnsw.max_scan_tuples`` rows were visited (pgvector README, "Iterative Index Scans"). The scan is a
MATERIALIZED CTE so that its LIMIT applies before the join that reads the content, and the outer
``ORDER BY distance + 0`` re-sorts what a relaxed-order scan returns slightly out of order.
The memories join checks active and not deleted again: a stale flag can only hide a row, never
return a deleted one. Parameters: ``$1`` the query vector, ``$2`` the organisation (when given).
"""

from __future__ import annotations

from memctl.models import SCHEMA, ModelSpec


def where(model: ModelSpec, org: bool, org_param: int = 2) -> str:
    """WHERE clause of the searchable rows of ``model`` (``model_id`` a literal, so the partial index
    applies), with ``org_id = $<org_param>`` when ``org``."""
    return f"model_id = {int(model.id)} AND searchable" + (f" AND org_id = ${org_param}" if org else "")


def search_sql(model: ModelSpec, k: int, org: bool = True) -> str:
    """The top-``k`` search of ``model``: rows ``(memory_id uuid, content text, distance float8)``,
    nearest first; with ``org``, of the organisation ``$2`` only."""
    scan = (f"SELECT org_id, memory_id, embedding::{model.cast_sql} {model.operator} $1 AS distance "
            f"FROM {SCHEMA}.memory_embeddings WHERE {where(model, org)} ORDER BY distance LIMIT {int(k)}")
    return (f"WITH r AS MATERIALIZED ({scan}) SELECT r.memory_id, m.content, r.distance FROM r "
            f"JOIN {SCHEMA}.memories m ON m.org_id = r.org_id AND m.id = r.memory_id "
            f"WHERE m.status = 'active' AND m.deleted_at IS NULL ORDER BY r.distance + 0")


def available_sql(model: ModelSpec) -> str:
    """How many rows a search of ``model`` in organisation ``$1`` can return at most: its active,
    not deleted memories with an embedding of the model (the bound of the search contract)."""
    return (f"SELECT count(*) FROM {SCHEMA}.memory_embeddings e JOIN {SCHEMA}.memories m "
            f"ON m.org_id = e.org_id AND m.id = e.memory_id WHERE e.model_id = {int(model.id)} AND e.org_id = $1 "
            f"AND m.status = 'active' AND m.deleted_at IS NULL")
