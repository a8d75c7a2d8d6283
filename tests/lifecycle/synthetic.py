"""Deterministic embedders for tests, importable as ``--embedder tests.lifecycle.synthetic:embed_768``.

Each text gets a unit vector from a generator seeded with its BLAKE2b hash: the same text always
gets the same vector, different texts unrelated ones (so a memory's own text finds it first).
"""

from __future__ import annotations

import hashlib

import numpy as np


def embed(texts: list[str], dim: int) -> np.ndarray:
    """(len(texts), dim) float32 unit vectors, one per text, seeded by the text."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        out[i] = v / np.linalg.norm(v)
    return out


def embed_384(texts: list[str]) -> np.ndarray:
    """384 dimensions (the shared files' models' size)."""
    return embed(texts, 384)


def embed_768(texts: list[str]) -> np.ndarray:
    """768 dimensions (vector storage)."""
    return embed(texts, 768)


def embed_3072(texts: list[str]) -> np.ndarray:
    """3072 dimensions (halfvec storage: over vector's 2000 HNSW limit)."""
    return embed(texts, 3072)


def embed_huge_384(texts: list[str]) -> np.ndarray:
    """Finite values whose squared norm overflows float32 (pgvector's distances would be NaN)."""
    return embed(texts, 384) * np.float32(1e20)


def embed_beyond_halfvec_384(texts: list[str]) -> np.ndarray:
    """One value per row past halfvec's range (65504): a halfvec index cannot hold it."""
    out = embed(texts, 384)
    out[:, 0] = 1e5
    return out
