"""For the embedder tests: a local stand-in for an OpenAI-compatible embeddings endpoint, and small
Python callables to name in ``module:callable`` specs.

:class:`EmbeddingServer` answers ``POST {url}/embeddings`` (``{"model": ..., "input": [texts]}``)
the way the OpenAI API does (``{"object": "list", "data": [{"object": "embedding", "index": i,
"embedding": [...]}], "model": ...}``) from a fixed mapping text -> vector, on 127.0.0.1 in a
background thread (stdlib ``ThreadingHTTPServer``, one thread per request).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DROP = 0
"""A ``fail_plan`` entry that closes the connection without answering (a transport error)."""
MALFORMED = ("not-json", "no-data", "wrong-count", "ragged", "nan")
"""The ``malformed`` modes: a 200 answer whose body is not JSON, has no ``data``, one embedding
fewer than texts, rows of different lengths, or a NaN value."""


class EmbeddingServer:
    """An embeddings endpoint for tests; use as a context manager (``with EmbeddingServer(v) as s``).

    ``vectors`` maps each known text to its vector (d,); an unknown text gets HTTP 400 with an
    error JSON. ``fail_plan`` lists statuses given to the next requests first, in arrival order
    (429 comes with ``Retry-After: retry_after`` unless that is None; 401 echoes the Authorization
    value received in its body, as a careless server might; :data:`DROP` closes the connection).
    ``delay_s`` (seconds) holds each request before it is answered, so concurrency shows.
    ``reverse`` lists ``data`` in reverse order (the indices still say which text is which);
    ``malformed`` (one of :data:`MALFORMED`) spoils every 200 answer.

    Seen so far: ``requests`` (POSTs received), ``max_in_flight`` (most handled at once),
    ``auth_headers`` (the Authorization value of each request, None when absent) and
    ``batch_sizes`` (the input count of each request answered 200).
    """

    def __init__(self, vectors: Mapping[str, np.ndarray], *, model: str = "test-model",
                 fail_plan: list[int] | None = None, delay_s: float = 0.0, reverse: bool = False,
                 malformed: str | None = None, retry_after: str | None = "0") -> None:
        if malformed is not None and malformed not in MALFORMED:
            raise ValueError(f"malformed must be one of {MALFORMED}")
        self.vectors = {text: np.asarray(v, dtype=np.float32).tolist() for text, v in vectors.items()}
        self.model = model
        self.fail_plan = list(fail_plan or [])
        self.delay_s = delay_s
        self.reverse = reverse
        self.malformed = malformed
        self.retry_after = retry_after
        self.requests = 0
        self.max_in_flight = 0
        self.auth_headers: list[str | None] = []
        self.batch_sizes: list[int] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def __enter__(self) -> EmbeddingServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="embedding-server", daemon=True)  # a quick shutdown
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _begin(self, auth: str | None) -> int | None:
        """Count a request in; the status it is to fail with, if the plan says so."""
        with self._lock:
            self.requests += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self.auth_headers.append(auth)
            return self.fail_plan.pop(0) if self.fail_plan else None

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def answer(self, path: str, body: bytes, auth: str | None) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) for one POST; None to drop the connection."""
        planned = self._begin(auth)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if path != "/v1/embeddings":
                return 404, {}, _error(f"no route {path}; POST /v1/embeddings")
            if planned == DROP:
                return None
            if planned is not None:
                headers = {"Retry-After": self.retry_after} if planned == 429 and self.retry_after is not None else {}
                message = f"Incorrect API key provided: {auth}" if planned == 401 else f"planned failure {planned}"
                return planned, headers, _error(message)
            return self._embeddings(body)
        finally:
            self._end()

    def _embeddings(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            request = json.loads(body)
            texts = request["input"]
        except (ValueError, KeyError, TypeError):
            return 400, {}, _error("the body must be JSON with an input list")
        texts = [texts] if isinstance(texts, str) else texts
        unknown = [t for t in texts if t not in self.vectors]
        if unknown:
            return 400, {}, _error(f"unknown input text: {str(unknown[0])[:40]!r}")
        with self._lock:
            self.batch_sizes.append(len(texts))
        data = [{"object": "embedding", "index": i, "embedding": self.vectors[t]} for i, t in enumerate(texts)]
        if self.reverse:
            data.reverse()
        if self.malformed == "not-json":
            return 200, {}, b"<html>upstream gateway says hello</html>"
        if self.malformed == "no-data":
            return 200, {}, json.dumps({"object": "list", "model": self.model}).encode()
        if self.malformed == "wrong-count":
            data = data[:-1]
        elif self.malformed == "ragged":
            data[-1]["embedding"] = data[-1]["embedding"][:-1]
        elif self.malformed == "nan":
            data[0]["embedding"] = [float("nan")] + data[0]["embedding"][1:]  # json.dumps writes NaN
        answer = {"object": "list", "data": data, "model": self.model,
                  "usage": {"prompt_tokens": 0, "total_tokens": 0}}
        return 200, {}, json.dumps(answer).encode()


def _error(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()


def _handler_for(server: EmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = server.answer(self.path, body, self.headers.get("Authorization"))
            if answer is None:
                self.close_connection = True
                return
            self._send(*answer)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest's output clean

    return Handler


FAKE_DIM = 8
"""Dimension of :func:`fake_embed`'s vectors."""


def fake_embed(texts: list[str]) -> np.ndarray:
    """Deterministic (n, 8) float32 vectors in [0, 1): each row the BLAKE2b digest of the text's UTF-8
    bytes read as 8 little-endian uint32, divided by 2**32 (no model, same text -> same row)."""
    rows = [np.frombuffer(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=4 * FAKE_DIM).digest(),
                          dtype="<u4") for t in texts]
    if not rows:
        return np.zeros((0, FAKE_DIM), dtype=np.float32)
    return (np.stack(rows).astype(np.float64) / 2**32).astype(np.float32)


def fake_embed_lists(texts: list[str]) -> list[list[float]]:
    """:func:`fake_embed` as nested Python lists (array-like, float64)."""
    return fake_embed(texts).tolist()


def fake_embed_short(texts: list[str]) -> np.ndarray:
    """One row fewer than texts: a broken embedder."""
    return fake_embed(texts)[:-1]


def fake_embed_nan(texts: list[str]) -> np.ndarray:
    """A NaN in the first row: a broken embedder."""
    out = fake_embed(texts)
    out[0, 0] = np.nan
    return out


def fake_embed_raises(texts: list[str]) -> np.ndarray:
    """Raises ValueError with a two-line message: a failing embedder."""
    raise ValueError("model weights not found\nTraceback-like second line that must not show")


NOT_CALLABLE = 42
"""Not a callable: a spec naming it is refused."""
