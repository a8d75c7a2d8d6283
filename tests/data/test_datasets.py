"""Datasets: reading the first rows of an .npz reads only those rows, and gives the same arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memctl.data.datasets import load_npz, load_queries
from memctl.errors import DatasetError


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_first_rows_equal_a_full_read_sliced(tmp_path, save):
    rng = np.random.default_rng(1)
    texts = np.array([f"paragraph {i} " + "x" * (i % 7) for i in range(50)])
    emb = rng.standard_normal((50, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    path = tmp_path / "d.npz"
    save(path, texts=texts, embeddings=emb, model=np.array("m"), query_embeddings=queries)
    for limit in (1, 17, 50, 80, None):
        ds = load_npz(path, limit)
        n = 50 if limit is None else min(limit, 50)
        assert ds.texts == [str(t) for t in texts[:n]] and np.array_equal(ds.embeddings, emb[:n])
        assert ds.model == "m" and ds.dim == 8
    assert np.array_equal(load_queries(path, 3), queries[:3])


def test_damaged_member_is_one_dataset_error(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, texts=np.array(["a", "b"]), embeddings=np.ones((2, 4), np.float32), model=np.array("m"))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte of the stored data changed: the CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="cannot read"):
        load_npz(path)


def bad_datasets(tmp_path: Path) -> dict[str, Path]:
    """One .npz per way a dataset can be wrong (issue 12's probes), each a file on disk."""
    good = {"texts": np.array(["a", "b"]), "embeddings": np.ones((2, 4), np.float32), "model": np.array("m")}
    variants = {
        "bytes texts": {"texts": np.array([b"a", b"b"])},
        "object texts": {"texts": np.array(["a", 1], dtype=object)},
        "0-d texts": {"texts": np.array("ab")},
        "string embeddings": {"embeddings": np.array([["x"] * 4] * 2)},
        "array model name": {"model": np.array(["a", "b"])},
        "empty model name": {"model": np.array("")},
        "NUL in text": {"texts": np.array(["a\x00b", "c"])},
        "lone surrogate": {"texts": np.array(["a\ud800", "c"])},
        "over-long text": {"texts": np.array(["x" * 9000, "c"])},
        "NaN embedding": {"embeddings": np.array([[np.nan] * 4, [1.0] * 4], np.float32)},
    }
    out = {}
    for name, change in variants.items():
        path = tmp_path / (name.replace(" ", "_") + ".npz")
        np.savez(path, **{**good, **change})
        out[name] = path
    (tmp_path / "empty.npz").write_bytes(b"")
    out["empty file"] = tmp_path / "empty.npz"
    crc = tmp_path / "crc.npz"
    np.savez(crc, **good)
    raw = bytearray(crc.read_bytes())
    raw[raw.find(b"\x93NUMPY") + 60] ^= 0xFF  # inside the first member's data: its CRC no longer matches
    crc.write_bytes(bytes(raw))
    out["corrupt zip CRC"] = crc
    return out


def test_every_bad_dataset_is_one_dataset_error_naming_the_file(tmp_path):
    for name, path in bad_datasets(tmp_path).items():
        with pytest.raises(DatasetError) as err:
            load_npz(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value), name
