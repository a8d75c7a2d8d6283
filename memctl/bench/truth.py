"""Exact top-k for recall@k: computed in the database (index scans off) or with numpy, and cached.

The cache key is the model's data snapshot (row count and max(created_at) of its embeddings,
within the organisation filter), k, the distance, the query vectors and the server's identity,
so a sweep, the filtered groups and a re-run on unchanged data never recompute it; any insert or
delete changes the key. Cached truths are ``.npz`` files under ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np

from memctl.bench.sql import Queries, exact_mode, where
from memctl.bench.types import TruthInfo
from memctl.models import SCHEMA, ModelSpec
from memctl.progress import Progress, no_progress


@dataclass
class Truth:
    """Exact neighbours of each query: ``ids[i]`` (up to k memory ids, nearest first) and
    ``dists`` (q, k) float64, NaN where a query has fewer than k neighbours."""

    ids: list[list[str]]
    dists: np.ndarray
    info: TruthInfo


async def snapshot_key(conn: asyncpg.Connection, model: ModelSpec, org_id: uuid.UUID | None, k: int,
                       queries: np.ndarray, source: str) -> str:
    """The cache key (hex) of the exact top-k for this data snapshot and these queries."""
    args = (org_id,) if org_id else ()
    rows, newest = await conn.fetchrow(
        f"SELECT count(*), max(created_at)::text FROM {SCHEMA}.memory_embeddings WHERE {where(model, org_id, 1)}",
        *args)
    system = await conn.fetchval("SELECT system_identifier::text || current_database() FROM pg_control_system()")
    h = hashlib.sha256()
    for part in (system, model.id, model.dim, model.operator, org_id, k, rows, newest, source):
        h.update(repr(part).encode())
    h.update(np.ascontiguousarray(queries, dtype=np.float32).tobytes())
    return h.hexdigest()[:32]


def _pack(ids: list[list[str]], k: int) -> np.ndarray:
    out = np.full((len(ids), k), "", dtype="<U36")
    for i, row in enumerate(ids):
        out[i, : len(row)] = row
    return out


def _load(path: Path, key: str, elapsed_s: float) -> Truth:
    with np.load(path, allow_pickle=False) as f:
        ids = [[x for x in row if x] for row in f["ids"].tolist()]
        return Truth(ids, f["dists"], TruthInfo(str(f["source"]), elapsed_s, True, key))


async def _database(conn: asyncpg.Connection, model: ModelSpec, queries: np.ndarray, k: int,
                    org_id: uuid.UUID | None, progress: Progress) -> tuple[list[list[str]], np.ndarray]:
    q = Queries(model, k, org_id)
    ids: list[list[str]] = []
    dists = np.full((len(queries), k), np.nan)
    async with conn.transaction():
        await exact_mode(conn)
        stmt = await conn.prepare(q.truth)
        for i, vec in enumerate(queries):
            rows = await stmt.fetch(vec, *q.args)
            ids.append([str(r["memory_id"]) for r in rows])
            dists[i, : len(rows)] = [r["distance"] for r in rows]
            progress("exact top-k", i + 1, len(queries))
    return ids, dists


def as_matrix(vectors: list, dim: int) -> np.ndarray:
    """(n, dim) float32 from vectors as asyncpg returns them (pgvector ``Vector`` objects or arrays)."""
    rows = [v.to_numpy() if hasattr(v, "to_numpy") else np.asarray(v) for v in vectors]
    return np.array(rows, dtype=np.float32).reshape(len(rows), dim)


def distances(model: ModelSpec, queries: np.ndarray, data: np.ndarray) -> np.ndarray:
    """(q, n) distances with pgvector's operators: cosine 1 - cos, l2 Euclidean, inner product -q.x."""
    q = queries.astype(np.float64)
    x = data.astype(np.float64)
    if model.distance == "cosine":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        return 1.0 - qn @ xn.T
    if model.distance == "l2":
        return np.sqrt(np.maximum((q * q).sum(1)[:, None] - 2 * q @ x.T + (x * x).sum(1)[None, :], 0.0))
    return -(q @ x.T)


async def _numpy(conn: asyncpg.Connection, model: ModelSpec, queries: np.ndarray, k: int,
                 org_id: uuid.UUID | None, progress: Progress) -> tuple[list[list[str]], np.ndarray]:
    rows = await conn.fetch(f"SELECT memory_id, embedding FROM {SCHEMA}.memory_embeddings "
                            f"WHERE {where(model, org_id, 1)}", *((org_id,) if org_id else ()))
    if not rows:
        return [[] for _ in queries], np.full((len(queries), k), np.nan)
    ids = np.array([str(r[0]) for r in rows])
    data = as_matrix([r[1] for r in rows], model.dim)
    out_ids: list[list[str]] = []
    out = np.full((len(queries), k), np.nan)
    kk = min(k, len(ids))
    for start in range(0, len(queries), 256):  # (256, n) float64 blocks keep memory bounded
        d = distances(model, queries[start:start + 256], data)
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        for j, cand in enumerate(part):
            order = cand[np.argsort(d[j, cand], kind="stable")]
            out_ids.append(ids[order].tolist())
            out[start + j, :kk] = d[j, order]
        progress("exact top-k", min(start + 256, len(queries)), len(queries))
    return out_ids, out


async def exact_top_k(conn: asyncpg.Connection, model: ModelSpec, queries: np.ndarray, k: int,
                      org_id: uuid.UUID | None = None, source: str = "database", cache_dir: Path | None = None,
                      progress: Progress = no_progress) -> Truth:
    """Exact top-k of every query (``queries`` (q, d) float32), from the cache when the data is unchanged.

    ``source`` 'database' runs the plain query with index scans off; 'numpy' fetches the model's
    vectors and ranks them in memory (for small sets). Must run outside a transaction.
    """
    key = await snapshot_key(conn, model, org_id, k, queries, source)
    path = cache_dir / f"truth-{key}.npz" if cache_dir else None
    t0 = time.perf_counter()
    if path is not None and path.exists():
        try:
            return _load(path, key, round(time.perf_counter() - t0, 3))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
    compute = _numpy if source == "numpy" else _database
    ids, dists = await compute(conn, model, queries, k, org_id, progress)
    info = TruthInfo(source, round(time.perf_counter() - t0, 3), False, key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=_pack(ids, k), dists=dists, source=np.array(source))
        tmp.replace(path)
    return Truth(ids, dists, info)
