"""Synthetic embeddings drawn from a model of real ones (issue 15).

The clustered noise memctl generated before (32 random unit centres plus isotropic Gaussian noise) is
far harder for HNSW than real text embeddings once the table grows (recall@10 at ef_search 40: 0.93
at 100k rows, 0.58 at 1M, against 0.96 on 30k real MiniLM vectors), so recall measured on it said
little. Real sentence embeddings sit near a low-dimensional, clustered surface. This module fits a
mixture to real vectors and samples new ones from it:

- ``components`` clusters (k-means, cosine geometry on unit vectors), each with its share of the rows
  (``weights``) and its mean;
- per cluster, the ``rank`` leading principal directions of its rows around the mean, scaled by
  their standard deviations (``factors``): the low-rank covariance;
- the rest of each cluster's spread as one standard deviation per axis of the *global* principal
  basis (``residual_std`` over ``basis``): real residuals are anisotropic, concentrated on the
  corpus's leading directions, and isotropic noise in 384 dimensions is what made the old data hard.

A sample is ``mean + z @ factors + (e * residual_std) @ basis`` with z, e standard normal, made
unit length. :data:`MIXTURE_FILE` (shipped with memctl, about 1 MB) was fitted by
``benchmarks/fit_synthetic.py`` to the 20,000 real MiniLM vectors of ``debian-minilm-20k.npz`` with
128 components and rank 8. Measured: recall@10 at ef_search 40 (m 16, ef_construction 64) on
20,000 sampled vectors against 20,000 real ones: see ``benchmarks/synthetic_recall.py`` and the README.

Other dimensions: above the mixture's (384) the sample is mapped by a fixed random matrix with
orthonormal columns, which keeps every inner product, so neighbourhoods and recall are unchanged;
below it, the sample keeps its first ``dim`` coordinates in the global principal basis (the most
variance any ``dim`` coordinates can keep), then is made unit length again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from memctl.errors import DatasetError

MIXTURE_FILE = "minilm_mixture.npz"  # in the memctl.data package
FIT_COMPONENTS = 128
FIT_RANK = 8
KMEANS_ITERATIONS = 20


@dataclass(frozen=True)
class Mixture:
    """A fitted mixture: ``weights`` (K,), ``means`` (K, d), ``factors`` (K, r, d) (directions scaled
    by their standard deviation), ``residual_std`` (K, d) per axis of ``basis`` (d, d), rows orthonormal.
    All float32."""

    weights: np.ndarray
    means: np.ndarray
    factors: np.ndarray
    residual_std: np.ndarray
    basis: np.ndarray

    @property
    def dim(self) -> int:
        """The dimension of the vectors the mixture was fitted to."""
        return int(self.means.shape[1])

    def sample(self, rng: np.random.Generator, n: int, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` unit vectors, (n, dim) float32 (``dim`` defaults to the mixture's; see the module
        docstring for other dimensions), and each one's component (n,) int."""
        labels = rng.choice(len(self.weights), n, p=self.weights)
        z = rng.standard_normal((n, self.factors.shape[1]), dtype=np.float32)
        e = rng.standard_normal((n, self.dim), dtype=np.float32) * self.residual_std[labels]
        out = self.means[labels] + e @ self.basis
        for k in np.unique(labels):  # per component: no (n, r, d) temporary
            rows = labels == k
            out[rows] += z[rows] @ self.factors[k]
        out = _to_dim(out, self.basis, dim or self.dim)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32), labels

    def save(self, path) -> None:
        """Write the mixture as a float16 ``.npz`` (compressed)."""
        np.savez_compressed(path, **{k: getattr(self, k).astype(np.float16) for k in
                                     ("weights", "means", "factors", "residual_std", "basis")})


def _to_dim(x: np.ndarray, basis: np.ndarray, dim: int) -> np.ndarray:
    d = x.shape[1]
    if dim == d:
        return x
    if dim < d:
        return x @ basis[:dim].T
    return x @ _lift(dim, d).T


@lru_cache(maxsize=4)
def _lift(dim: int, d: int) -> np.ndarray:
    """A fixed (dim, d) float32 matrix with orthonormal columns: x -> x @ lift.T keeps inner products."""
    q, _ = np.linalg.qr(np.random.default_rng(dim).standard_normal((dim, d)))
    return q.astype(np.float32)


@lru_cache(maxsize=1)
def shipped_mixture() -> Mixture:
    """The mixture fitted to real MiniLM vectors (:data:`MIXTURE_FILE`). Raises DatasetError if the
    file is missing from the installation."""
    try:
        with resources.files("memctl.data").joinpath(MIXTURE_FILE).open("rb") as f, np.load(f) as data:
            parts = {k: data[k].astype(np.float32) for k in data.files}
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"memctl's synthetic-data model {MIXTURE_FILE} cannot be read: {exc}") from None
    parts["weights"] = parts["weights"] / parts["weights"].sum()
    return Mixture(**parts)


def fit_mixture(vectors: np.ndarray, components: int = FIT_COMPONENTS, rank: int = FIT_RANK,
                seed: int = 0) -> Mixture:
    """Fit a :class:`Mixture` to ``vectors`` (n, d) float32, unit length (module docstring).
    Deterministic in ``seed``. Raises DatasetError when there are fewer rows than components."""
    x = np.asarray(vectors, dtype=np.float32)
    n, d = x.shape
    if n < components:
        raise DatasetError(f"{n} vectors cannot fit {components} components")
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(n, components, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        labels = _nearest(x, centres)
        for k in range(components):
            members = x[labels == k]
            if len(members):
                centres[k] = members.mean(axis=0)
    labels = _nearest(x, centres)
    _, _, basis = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    weights = np.zeros(components, np.float32)
    factors = np.zeros((components, rank, d), np.float32)
    residual_std = np.zeros((components, d), np.float32)
    for k in range(components):
        around = x[labels == k] - centres[k]
        weights[k] = len(around) / n
        if len(around) < 2:
            continue
        _, s, vt = np.linalg.svd(around, full_matrices=False)
        r = min(rank, len(s))
        factors[k, :r] = vt[:r] * (s[:r, None] / np.sqrt(len(around)))
        rest = around - (around @ vt[:r].T) @ vt[:r]
        residual_std[k] = np.sqrt(((rest @ basis.T) ** 2).mean(axis=0))
    return Mixture(weights, centres, factors, residual_std, basis.astype(np.float32))


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centre (Euclidean), in blocks of 4,096 rows."""
    half = 0.5 * (centres * centres).sum(axis=1)
    return np.concatenate([np.argmax(x[i:i + 4096] @ centres.T - half, axis=1) for i in range(0, len(x), 4096)])
