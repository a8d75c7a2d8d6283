"""Embedders: an OpenAI-compatible endpoint (a local stand-in answering with real multilingual-e5-small
vectors) with batching, bounded concurrency and retries; Python callables; the shared output check."""

from __future__ import annotations

import asyncio
import socket
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import numpy as np
import pytest

from memctl.errors import ConfigError, EmbedderError
from memctl.lifecycle.embedders import (
    MAX_BACKOFF_S,
    MAX_RETRY_AFTER_S,
    CallableEmbedder,
    Embedder,
    OpenAIEmbedder,
    checked_matrix,
    embedder_from_spec,
    retry_delay,
)
from tests.lifecycle.embedding_server import DROP, MALFORMED, EmbeddingServer, fake_embed

DATASET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "debian-e5-5k.npz"
KEY_ENV = "MEMCTL_TEST_EMBED_KEY"
KEY = "sk-test-3f9c2a7e51d04b8f"
SERVER = "tests.lifecycle.embedding_server"
N_TEXTS = 300


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No key, base URL or proxy from the environment of the run (a proxy would swallow 127.0.0.1)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", KEY_ENV, "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def debian() -> tuple[list[str], np.ndarray]:
    """The first 300 Debian paragraphs and their multilingual-e5-small vectors (300, 384) float32."""
    if not DATASET.is_file():
        pytest.skip(f"real embeddings not available: {DATASET} is absent")
    with np.load(DATASET, allow_pickle=False) as data:
        texts = data["texts"][:N_TEXTS].tolist()
        vectors = np.ascontiguousarray(data["embeddings"][:N_TEXTS], dtype=np.float32)
    assert len(set(texts)) == N_TEXTS
    return texts, vectors


@pytest.fixture
def mapping(debian) -> dict[str, np.ndarray]:
    texts, vectors = debian
    return dict(zip(texts, vectors, strict=True))


def openai(server: EmbeddingServer, **options) -> Embedder:
    options = {"api_key_env": KEY_ENV, "backoff_s": 0.001, **options}
    return embedder_from_spec("openai:multilingual-e5-small", base_url=server.url, **options)


async def embed_once(embedder: Embedder, texts: list[str]) -> np.ndarray:
    try:
        return await embedder.embed(texts)
    finally:
        await embedder.aclose()


async def test_batches_retry_and_come_back_in_order(debian, mapping, monkeypatch):
    texts, vectors = debian
    monkeypatch.setenv(KEY_ENV, KEY)
    with EmbeddingServer(mapping, fail_plan=[429, 500], delay_s=0.05) as server:
        embedder = openai(server, request_size=32, concurrency=3)
        out = await embed_once(embedder, texts)
    assert isinstance(embedder, OpenAIEmbedder) and isinstance(embedder, Embedder)
    assert out.shape == (N_TEXTS, 384) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.array_equal(out, vectors)
    assert embedder.retries == 2 and embedder.requests == server.requests == 10 + 2
    assert sorted(server.batch_sizes) == [12] + [32] * 9
    assert server.auth_headers == [f"Bearer {KEY}"] * server.requests
    assert 1 < server.max_in_flight <= 3 and 1 < embedder.max_in_flight <= 3
    assert embedder.description == f"openai:multilingual-e5-small at {server.url}"
    assert KEY not in embedder.description and KEY not in repr(embedder)


async def test_rows_are_ordered_by_index_not_by_list_position(debian, mapping):
    texts, vectors = debian
    with EmbeddingServer(mapping, reverse=True) as server:
        out = await embed_once(openai(server, request_size=50), texts[:120])
    assert np.array_equal(out, vectors[:120])


@pytest.mark.parametrize("case", ["401", "400 unknown text", "404 wrong path"])
async def test_other_client_errors_fail_at_once_without_the_key(mapping, monkeypatch, case):
    monkeypatch.setenv(KEY_ENV, KEY)
    status = case.split()[0]
    with EmbeddingServer(mapping, fail_plan=[401] if status == "401" else []) as server:
        embedder = openai(server, max_retries=5)
        if status == "404":
            embedder = embedder_from_spec("openai:m", base_url=server.url.removesuffix("/v1"), api_key_env=KEY_ENV)
        texts = ["no such text"] if status == "400" else list(mapping)[:3]
        with pytest.raises(EmbedderError, match=f"HTTP {status}") as caught:
            await embed_once(embedder, texts)
    message = str(caught.value)
    assert server.requests == embedder.requests == 1 and embedder.retries == 0
    assert KEY not in message and "\n" not in message
    if status == "401":
        assert "Bearer ***" in message  # the server echoed the key back; the message has it masked
    if status == "400":
        assert "unknown input text" in message


async def test_retries_exhausted_name_the_last_status(mapping):
    with EmbeddingServer(mapping, fail_plan=[503] * 2 + [500] * 10) as server:
        embedder = openai(server, max_retries=3)
        with pytest.raises(EmbedderError, match=r"after 3 retries, last: HTTP 500$"):
            await embed_once(embedder, list(mapping)[:5])
    assert embedder.requests == server.requests == 3 + 1 and embedder.retries == 3


async def test_dropped_connections_are_retried(debian, mapping):
    texts, vectors = debian
    with EmbeddingServer(mapping, fail_plan=[DROP, DROP]) as server:
        embedder = openai(server, request_size=100, concurrency=1)
        out = await embed_once(embedder, texts)
    assert np.array_equal(out, vectors) and embedder.retries == 2 and server.requests == 3 + 2


async def test_refused_connection_exhausts_retries():
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    embedder = embedder_from_spec("openai:m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_s=0.001)
    assert embedder.description == f"openai:m at http://127.0.0.1:{port}/v1"
    with pytest.raises(EmbedderError, match="after 2 retries, last: ConnectError"):
        await embed_once(embedder, ["a"])
    assert embedder.requests == 3


@pytest.mark.parametrize(("url", "message"), [
    # httpx would send the URL's user and password as Basic auth in place of the Bearer key
    ("http://user:hunter2pw@127.0.0.1:8080/v1", "must not hold credentials"),
    ("http://127.0.0.1:99999/v1", "port 99999"),  # was a traceback (OverflowError from the socket)
])
def test_base_urls_that_cannot_work_are_refused(url, message):
    with pytest.raises(ConfigError, match=message) as caught:
        embedder_from_spec("openai:m", base_url=url)
    assert "hunter2pw" not in str(caught.value)


def test_a_callable_that_exits_is_an_embedder_error():
    embedder = embedder_from_spec("tests.lifecycle.embedding_server:fake_embed")
    embedder._func = lambda texts: sys.exit(3)  # a library that calls sys.exit() must not end memctl silently
    with pytest.raises(EmbedderError, match="SystemExit"):
        asyncio.run(embedder.embed(["a"]))


async def test_retry_after_is_obeyed_over_backoff(mapping):
    with EmbeddingServer(mapping, fail_plan=[429], retry_after="0") as server:
        embedder = openai(server, backoff_s=20.0)  # ignoring Retry-After: 0 would wait 20 s
        await asyncio.wait_for(embed_once(embedder, list(mapping)[:2]), timeout=5)
    assert embedder.retries == 1 and server.requests == 2


def test_retry_delay():
    assert 0.5 <= retry_delay(0, 0.5) <= 0.55 and 4.0 <= retry_delay(3, 0.5) <= 4.4
    assert retry_delay(30, 0.5) == MAX_BACKOFF_S
    assert retry_delay(0, 0.5, "2") == 2.0 and retry_delay(5, 0.5, " 0 ") == 0.0
    assert retry_delay(0, 0.5, "3600") == MAX_RETRY_AFTER_S and retry_delay(0, 0.5, "-3") == 0.0
    assert 0.5 <= retry_delay(0, 0.5, "soon") <= 0.55 and 0.5 <= retry_delay(0, 0.5, "nan") <= 0.55
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8.0 <= retry_delay(0, 0.5, when) <= 10.0


@pytest.mark.parametrize("mode", MALFORMED)
async def test_malformed_answers_are_errors_not_retried(mapping, mode):
    expected = {"not-json": "not JSON", "no-data": "without a data list", "wrong-count": "2 embeddings for 3 texts",
                "ragged": "different lengths", "nan": "NaN"}[mode]
    with EmbeddingServer(mapping, malformed=mode) as server:
        embedder = openai(server)
        with pytest.raises(EmbedderError, match=expected):
            await embed_once(embedder, list(mapping)[:3])
    assert server.requests == 1


@pytest.mark.parametrize("value", [None, ""])
async def test_no_key_no_authorization_header(mapping, monkeypatch, value):
    if value is not None:
        monkeypatch.setenv("OPENAI_API_KEY", value)
    with EmbeddingServer(mapping) as server:
        out = await embed_once(embedder_from_spec("openai:m", base_url=server.url, request_size=2), list(mapping)[:5])
    assert out.shape == (5, 384) and server.requests == 3 and server.auth_headers == [None] * 3


async def test_base_url_from_the_environment(mapping, monkeypatch):
    with EmbeddingServer(mapping) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
        embedder = embedder_from_spec("openai:m")
        out = await embed_once(embedder, list(mapping)[:1])
    assert embedder.description == f"openai:m at {server.url}" and out.shape == (1, 384)


async def test_no_texts_no_request(mapping):
    with EmbeddingServer(mapping) as server:
        out = await embed_once(openai(server), [])
    assert out.shape == (0, 0) and out.dtype == np.float32 and server.requests == 0


async def test_callable_embedder_is_deterministic():
    texts = ["alpha", "beta", "gamma", "alpha"]
    embedder = embedder_from_spec(f"{SERVER}:fake_embed")
    assert isinstance(embedder, CallableEmbedder) and isinstance(embedder, Embedder)
    first = await embed_once(embedder, texts)
    again = await embedder.embed(texts[1:3])
    assert first.shape == (4, 8) and first.dtype == np.float32 and first.flags.c_contiguous
    assert np.array_equal(first[0], first[3]) and not np.array_equal(first[0], first[1])
    assert np.array_equal(again, first[1:3]) and np.array_equal(first, fake_embed(texts))
    lists = await embed_once(embedder_from_spec(f"{SERVER}:fake_embed_lists"), texts)
    assert lists.dtype == np.float32 and np.array_equal(lists, first)


@pytest.mark.parametrize(("name", "expected"), [
    ("fake_embed_short", "returned 2 vectors for 3 texts"),
    ("fake_embed_nan", "NaN or infinity .* row 0"),
    ("fake_embed_raises", r"fake_embed_raises failed: ValueError: model weights not found$"),
])
async def test_broken_callables(name, expected):
    with pytest.raises(EmbedderError, match=expected) as caught:
        await embed_once(embedder_from_spec(f"{SERVER}:{name}"), ["a", "b", "c"])
    assert f"{SERVER}:{name}" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("spec", "expected"), [
    ("tests.lifecycle.no_such_module:embed", "cannot import tests.lifecycle.no_such_module .*PYTHONPATH"),
    (f"{SERVER}:no_such_callable", "has no attribute no_such_callable"),
    (f"{SERVER}:NOT_CALLABLE", "is a int, not a callable"),
])
def test_callables_that_cannot_be_loaded(spec, expected):
    with pytest.raises(EmbedderError, match=expected) as caught:
        embedder_from_spec(spec)
    assert spec in str(caught.value)


@pytest.mark.parametrize(("spec", "options", "expected"), [
    ("nocolon", {}, "not module:callable"),
    ("", {}, "not module:callable"),
    ("my module:f", {}, "not module:callable"),
    ("mod:", {}, "not module:callable"),
    ("openai:", {"base_url": "http://h/v1"}, "needs a model name"),
    ("openai:m", {}, "pass --base-url"),
    ("openai:m", {"base_url": "ftp://h/v1"}, "must be http"),
    ("openai:m", {"base_url": "http://h/v1", "request_size": 0}, "request size must be at least 1"),
    ("openai:m", {"base_url": "http://h/v1", "concurrency": 0}, "concurrency must be at least 1"),
    ("openai:m", {"base_url": "http://h/v1", "max_retries": -1}, "max retries must be at least 0"),
])
def test_bad_specs_are_config_errors(spec, options, expected):
    with pytest.raises(ConfigError, match=expected):
        embedder_from_spec(spec, **options)


def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-abc déf")
    with pytest.raises(ConfigError, match=KEY_ENV) as caught:
        embedder_from_spec("openai:m", base_url="http://h/v1", api_key_env=KEY_ENV)
    assert "déf" not in str(caught.value)


def test_checked_matrix_converts():
    out = checked_matrix(np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)), 2, "s")
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert checked_matrix([[1, 2]], 1, "s").dtype == np.float32


@pytest.mark.parametrize(("values", "expected"), [
    (np.ones(3), "shape \\(3,\\)"),
    (np.ones((2, 2, 2)), "shape \\(2, 2, 2\\)"),
    (np.ones((3, 4)), "3 vectors for 2 texts"),
    (np.ones((2, 0)), "dimension 0"),
    ([[1.0, 2.0], [3.0]], "ragged"),
    ([["a", "b"], ["c", "d"]], "<U1 values"),
    ([[1.0, None], [1.0, 2.0]], "non-numeric"),
    (np.array([[1.0, 2.0], [np.inf, 0.0]]), "NaN or infinity .* row 1"),
    (np.array([[1e300, 0.0], [0.0, 0.0]]), "beyond float32"),
    (np.ones((2, 2), dtype=complex), "complex128 values"),
])
def test_checked_matrix_refuses(values, expected):
    with pytest.raises(EmbedderError, match=f"^spec:x .*{expected}"):
        checked_matrix(values, 2, "spec:x")
