"""Where ``models backfill`` gets vectors: an .npz file matched by content hash, or an embedder.

Both answer :meth:`VectorSource.vectors` for a batch of (content, content_hash): the rows they have
vectors for, and those vectors. A file may lack a text (it was embedded before the memory existed):
that row is left unmatched, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from memctl.data.datasets import load_npz
from memctl.errors import DatasetError
from memctl.lifecycle.embedders import Embedder
from memctl.models import ModelSpec
from memctl.models.embeddings import content_hash, vector_problem


class VectorSource(Protocol):
    """Vectors for a batch of memory contents."""

    description: str
    needs_text: bool  # False: matches by content hash alone (the texts passed are None)

    async def vectors(self, texts: list[str], hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(indices into the batch that have a vector, (len(indices), d) float32 vectors)."""
        ...

    async def aclose(self) -> None:
        """Release what the source holds (HTTP connections)."""
        ...


@dataclass
class FileSource:
    """An .npz of ``texts`` and ``embeddings`` (the shared data layout), indexed by the SHA-256 of
    each text; ``rows`` how many texts it holds."""

    description: str
    by_hash: dict[str, int]
    embeddings: np.ndarray
    needs_text = False

    @classmethod
    def load(cls, path: Path, model: ModelSpec) -> FileSource:
        """Load ``path`` for ``model``. Raises DatasetError (nothing written) when the file's ``model``
        names another model, its dimension is not the model's, or a row is one the model's index
        cannot hold (:func:`~memctl.models.embeddings.vector_problem`: a zero vector under cosine, a
        norm past float32, a value past halfvec's range)."""
        ds = load_npz(path)
        if ds.model != model.name:
            raise DatasetError(f"{path} holds vectors of model {ds.model!r}, not {model.name!r}: two models' "
                               f"vectors of the same dimension mix without an error, so the names must match")
        if ds.dim != model.dim:
            raise DatasetError(f"{path} has {ds.dim}-dimension vectors, model {model.name!r} has {model.dim}")
        if (problem := vector_problem(model, ds.embeddings)) is not None:
            rows, why = problem
            raise DatasetError(f"{path}: row {rows[0]} (and {len(rows) - 1} more) {why} (model {model.name!r}): "
                               f"nothing written")
        return cls(f"file {path.name}", {content_hash(t): i for i, t in enumerate(ds.texts)}, ds.embeddings)

    async def vectors(self, texts: list[str], hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The batch rows whose content the file holds, and their vectors."""
        found = [(i, self.by_hash[h]) for i, h in enumerate(hashes) if h in self.by_hash]
        rows = np.array([i for i, _ in found], dtype=np.int64)
        return rows, self.embeddings[[j for _, j in found]] if found else self.embeddings[:0]

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass
class EmbedderSource:
    """An :class:`~memctl.lifecycle.embedders.Embedder` run on each batch's contents; its vectors are
    checked against the model: (n, dim), and no zero vector under a cosine model."""

    embedder: Embedder
    model: ModelSpec
    needs_text = True

    @property
    def description(self) -> str:
        """The embedder's description (never a key)."""
        return self.embedder.description

    async def vectors(self, texts: list[str], hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every row of the batch, embedded. Raises DatasetError for a wrong dimension or a vector the
        model's index cannot hold (:func:`~memctl.models.embeddings.vector_problem`)."""
        out = await self.embedder.embed(texts)
        if out.shape != (len(texts), self.model.dim):
            raise DatasetError(f"{self.description} returned shape {out.shape}, model {self.model.name!r} needs "
                               f"({len(texts)}, {self.model.dim})")
        if (problem := vector_problem(self.model, out)) is not None:
            rows, why = problem
            raise DatasetError(f"{self.description}: the vector of {len(rows)} text(s) {why} (model "
                               f"{self.model.name!r}); batches already written stay")
        return np.arange(len(texts)), out

    async def aclose(self) -> None:
        """Close the embedder."""
        await self.embedder.aclose()
