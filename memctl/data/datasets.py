"""Datasets for seeding and benchmarking: the ``.npz`` format of ``shared/data`` or synthetic.

An ``.npz`` dataset holds ``texts`` (n,) str, ``embeddings`` (n, d) float32 and ``model`` str;
``query_embeddings`` (q, d) float32 is optional (benchmark queries). Loaded with
``allow_pickle=False``: a file that needs pickle is refused.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memctl.data.synthetic import shipped_mixture
from memctl.errors import ConfigError, DatasetError
from memctl.models.embeddings import DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME
from memctl.models.memory import MAX_CONTENT_CHARS


@dataclass
class Dataset:
    """Texts with their embeddings in one model's space.

    ``texts`` (n,) str; ``embeddings`` (n, d) float32; ``model`` the embedding model's name.
    """

    texts: list[str]
    embeddings: np.ndarray
    model: str
    source: str

    @property
    def dim(self) -> int:
        """Embedding dimension d."""
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return len(self.texts)

    def batches(self, size: int) -> Iterator[Dataset]:
        """Consecutive slices of at most ``size`` rows (views: no copy of the embeddings)."""
        for start in range(0, len(self), size):
            yield Dataset(self.texts[start:start + size], self.embeddings[start:start + size], self.model,
                          self.source)


@contextmanager
def _open(path: Path) -> Iterator[Any]:
    """The open .npz (``allow_pickle=False``); any error reading it, in the body too (a bad zip, a
    damaged member), becomes one DatasetError naming the file."""
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"cannot read {path} as a .npz dataset: not a zip archive (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            yield data
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read {path} as a .npz dataset: {exc}") from None


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _rows(data, key: str, limit: int | None) -> np.ndarray:
    """The first ``limit`` rows of array ``key`` of an open .npz (all rows when None).

    Reads and decompresses only those rows' bytes from the zip member (the .npy format: a header,
    then the C-order data; numpy docs, ``numpy.lib.format``): the first 1,000 rows of the 20,000
    Debian paragraphs are 4 MB of text, not the whole 78 MB array. Other layouts are read whole.
    """
    if not limit:
        return data[key]
    with data.zip.open(f"{key}.npy") as fp:
        reader = _HEADER_READERS.get(np.lib.format.read_magic(fp))
        shape, fortran, dtype = reader(fp) if reader else ((), True, None)
        if not shape:
            return data[key]  # a 0-d array: nothing to slice (the caller says what is wrong)
        if fortran or dtype.hasobject:
            return data[key][:limit]
        n = min(limit, shape[0])
        count = n * int(np.prod(shape[1:], dtype=np.int64))
        raw = fp.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"{key}.npy is shorter than its header says")
    return np.frombuffer(raw, dtype=dtype, count=count).reshape((n, *shape[1:]))


def load_npz(path: Path, limit: int | None = None) -> Dataset:
    """Load ``texts``, ``embeddings`` and ``model`` from an .npz file, the first ``limit`` rows.

    Raises :class:`DatasetError` on a missing key, mismatched lengths, non-finite values or a
    non-2-D embedding array.
    """
    with _open(path) as data:
        missing = {"texts", "embeddings", "model"} - set(data.files)
        if missing:
            raise DatasetError(f"{path} lacks {', '.join(sorted(missing))} (expected texts, embeddings, model)")
        texts = _rows(data, "texts", limit)
        emb = _rows(data, "embeddings", limit)
        model = data["model"]
    return _checked(Dataset(_texts(texts, path), _matrix(emb, path, "embeddings"), _model_name(model, path),
                            str(path)))


def _texts(texts: np.ndarray, path: Path) -> list[str]:
    if texts.ndim != 1 or texts.dtype.kind != "U":
        kind = "bytes (decode them first)" if texts.dtype.kind == "S" else f"{texts.dtype} of shape {texts.shape}"
        raise DatasetError(f"{path}: texts must be a 1-D array of unicode strings, got {kind}")
    return texts.tolist()


def _matrix(values: np.ndarray, path: Path, key: str) -> np.ndarray:
    if values.dtype.kind not in "fiu":
        raise DatasetError(f"{path}: {key} must be numbers, got {values.dtype}")
    return np.ascontiguousarray(values, dtype=np.float32)


def _model_name(model: np.ndarray, path: Path) -> str:
    name = model.item() if model.ndim == 0 and model.dtype.kind == "U" else None
    if not name or not name.strip() or "\x00" in name or len(name) > 200:
        raise DatasetError(f"{path}: model must be one non-empty string (the embedding model's name), got "
                           f"{model.dtype} of shape {model.shape}")
    return name


def load_queries(path: Path, limit: int | None = None) -> np.ndarray:
    """``query_embeddings`` (q, d) float32 of an .npz dataset, the first ``limit`` rows."""
    with _open(path) as data:
        if "query_embeddings" not in data.files:
            raise DatasetError(f"{path} has no query_embeddings")
        q = _matrix(_rows(data, "query_embeddings", limit), path, "query_embeddings")
    if q.ndim != 2 or not np.isfinite(q).all():
        raise DatasetError(f"{path}: query_embeddings must be a finite (q, d) array")
    return q


def queries_of(queries: Path | None, dataset: Path | None) -> np.ndarray | None:
    """Benchmark queries (q, d) float32: ``queries``' file (DatasetError if it has none), else the
    dataset file's own ``query_embeddings`` if it has them, else None (the bench samples stored rows)."""
    if queries is not None:
        return load_queries(queries)
    if dataset is None:
        return None
    with _open(dataset) as data:
        has_queries = "query_embeddings" in data.files
    return load_queries(dataset) if has_queries else None


def _checked(ds: Dataset) -> Dataset:
    emb = ds.embeddings
    if emb.ndim != 2 or emb.shape[0] != len(ds.texts):
        raise DatasetError(f"{ds.source}: embeddings must be (n, d) with n = len(texts) = {len(ds.texts)}, "
                           f"got {emb.shape}")
    if not np.isfinite(emb).all():
        raise DatasetError(f"{ds.source}: embeddings contain NaN or infinity")
    for i, t in enumerate(ds.texts):
        problem = ("is empty" if not t.strip() else "holds a NUL character" if "\x00" in t
                   else f"is longer than {MAX_CONTENT_CHARS} characters (S3)" if len(t) > MAX_CONTENT_CHARS
                   else None)
        if problem is None:
            try:
                t.encode("utf-8")
            except UnicodeEncodeError:
                problem = "is not valid Unicode (a lone surrogate)"
        if problem:
            raise DatasetError(f"{ds.source}: text {i} {problem}")
    return ds


_WORDS = (
    "agent user project deadline prefers meeting report database index vector search memory retention "
    "policy tenant summary cluster latency recall build deploy review budget customer schedule invoice "
    "release feature incident backup restore migration schema query cache token session checkpoint"
).split()


def dataset_from(dataset: Path | None, synthetic_n: int | None, limit: int | None = None,
                 default_synthetic: int = 0) -> Dataset | SyntheticRows:
    """The dataset an operator named: ``dataset`` (an .npz, its first ``limit`` rows) or
    ``synthetic_n`` generated rows, streamed (``default_synthetic`` when neither is given and it is not 0).

    Raises ConfigError when both or neither are given, DatasetError for a bad file.
    """
    if dataset is not None and synthetic_n is not None:
        raise ConfigError("give --dataset or --synthetic, not both")
    if dataset is not None:
        return load_npz(dataset, limit)
    n = synthetic_n or default_synthetic
    if not n:
        raise ConfigError("give --dataset PATH.npz or --synthetic N")
    return SyntheticRows(n)


SYNTHETIC_CHUNK = 8192  # rows generated at a time: memory stays constant, rows do not depend on the batch size


@dataclass
class SyntheticRows:
    """``n`` generated texts with unit vectors (``dim``) in ``model``'s space, made
    :data:`SYNTHETIC_CHUNK` rows at a time (:meth:`batches`), so memory stays constant whatever ``n``
    (issue 15: 1,000,000 rows held at once took 9.1 GB). Deterministic in ``seed``: chunk k comes from
    its own generator (``seed``, k), so a row is the same whatever the batch size.

    Vectors are drawn from the mixture fitted to real MiniLM embeddings
    (:func:`memctl.data.synthetic.shipped_mixture`), so approximate search meets neighbourhoods like
    real text's. Texts are distinct (each carries its row number) and name the row's component as its
    topic.
    """

    n: int
    dim: int = DEFAULT_MODEL_DIM
    model: str = DEFAULT_MODEL_NAME
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise DatasetError("--synthetic needs at least 1 row")

    @property
    def source(self) -> str:
        """``synthetic:<n>``."""
        return f"synthetic:{self.n}"

    def __len__(self) -> int:
        return self.n

    def chunk(self, k: int) -> Dataset:
        """Rows ``k * SYNTHETIC_CHUNK`` up to the next chunk (or ``n``)."""
        start = k * SYNTHETIC_CHUNK
        rows = min(SYNTHETIC_CHUNK, self.n - start)
        rng = np.random.default_rng([self.seed, k])
        emb, labels = shipped_mixture().sample(rng, rows, self.dim)
        words = rng.integers(0, len(_WORDS), (rows, 8))
        texts = [f"memory {start + i}: " + " ".join(_WORDS[w] for w in row) + f" (topic {labels[i]})"
                 for i, row in enumerate(words)]
        return Dataset(texts, emb, self.model, self.source)

    def batches(self, size: int) -> Iterator[Dataset]:
        """The rows, chunk by chunk, in slices of at most ``size``."""
        for k in range((self.n + SYNTHETIC_CHUNK - 1) // SYNTHETIC_CHUNK):
            yield from self.chunk(k).batches(size)


def synthetic(n: int, dim: int = DEFAULT_MODEL_DIM, *, seed: int = 0, model: str = DEFAULT_MODEL_NAME) -> Dataset:
    """All ``n`` rows of :class:`SyntheticRows` in memory at once: texts (n,), embeddings (n, dim) float32.
    For a few hundred thousand rows at most; seed streams :class:`SyntheticRows` instead."""
    rows = SyntheticRows(n, dim, model, seed)
    parts = list(rows.batches(SYNTHETIC_CHUNK))
    return Dataset([t for p in parts for t in p.texts], np.concatenate([p.embeddings for p in parts]), model,
                   rows.source)
