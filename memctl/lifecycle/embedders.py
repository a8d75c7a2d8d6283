"""Embedders: texts to vectors, for ``memctl models backfill --embedder SPEC``.

A spec names one of two kinds (:func:`embedder_from_spec`):

- ``module:callable``: a Python import path (``pkg.mod:func``, the attribute may be dotted). The
  callable takes ``list[str]`` and returns something array-like of shape (n, d); it runs in a worker
  thread (``asyncio.to_thread``) so the event loop keeps serving the database.
- ``openai:MODEL``: an OpenAI-compatible embeddings endpoint, ``POST {base_url}/embeddings`` with
  ``{"model": MODEL, "input": [texts]}``, answered by ``{"data": [{"embedding": [...], "index": i}]}``
  (OpenAI API reference, "Create embeddings"; also served by vLLM, Ollama, llama.cpp, TEI).

Every embedder returns a (len(texts), d) float32 C-contiguous matrix of finite values
(:func:`checked_matrix`), or raises :class:`EmbedderError` with one line. An API key is sent only
in the ``Authorization`` header: it is never part of a description, a repr or a message.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np

from memctl.errors import ConfigError, EmbedderError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses retried with backoff: rate limited, or a server or gateway failing for a while."""
MAX_BACKOFF_S = 30.0
"""Longest exponential-backoff wait between two attempts, jitter included (seconds)."""
MAX_RETRY_AFTER_S = 60.0
"""Longest wait a ``Retry-After`` header can ask for (seconds); longer asks are cut to it."""
BODY_EXCERPT_CHARS = 200
"""How much of an unexpected response body a message quotes (characters)."""

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@runtime_checkable
class Embedder(Protocol):
    """What backfill needs of an embedder.

    ``description`` names it in messages (never a key). ``embed(texts)`` returns (len(texts), d)
    float32, C-contiguous and finite, row i the vector of texts[i]; for no texts a (0, 0) matrix.
    ``aclose()`` releases connections.
    """

    description: str

    async def embed(self, texts: list[str]) -> np.ndarray: ...

    async def aclose(self) -> None: ...


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:BODY_EXCERPT_CHARS] if lines else ""


def checked_matrix(values: Any, n: int, spec: str) -> np.ndarray:
    """``values`` as an (n, d) float32 C-contiguous matrix, d >= 1, every value finite.

    ``spec`` names the embedder in the message of the :class:`EmbedderError` raised for anything
    else: not numbers, not 2-D (a ragged list of rows is not), another row count than ``n``, NaN or
    infinity (also a value beyond float32's range, which becomes infinity).
    """
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise EmbedderError(f"{spec} returned something that is not an (n, d) array (ragged rows?): "
                            f"{_first_line(exc)}") from None
    if array.dtype.kind not in "fiu":
        what = "ragged or non-numeric rows" if array.dtype.kind == "O" else f"{array.dtype} values"
        raise EmbedderError(f"{spec} returned {what}, expected an (n, d) array of numbers")
    if array.ndim != 2:
        raise EmbedderError(f"{spec} returned an array of shape {array.shape}, expected 2-D (n, d)")
    if array.shape[0] != n:
        raise EmbedderError(f"{spec} returned {array.shape[0]} vectors for {n} texts")
    if array.shape[1] == 0:
        raise EmbedderError(f"{spec} returned vectors of dimension 0")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32's range becomes inf, refused below
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(matrix).all():
        bad = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise EmbedderError(f"{spec} returned NaN or infinity (or a value beyond float32's range), first in row {bad}")
    return matrix


def _empty() -> np.ndarray:
    return np.zeros((0, 0), dtype=np.float32)


def load_callable(spec: str) -> Callable[[list[str]], Any]:
    """The callable named by ``module:attr`` (attr may be dotted), imported with importlib.

    Raises :class:`EmbedderError` when the module cannot be imported (any error while importing it),
    the attribute is missing or is not callable; :class:`ConfigError` when ``spec`` is not of that form.
    """
    module_name, _, attr = spec.partition(":")
    if not (_IMPORT_PATH.match(module_name) and _IMPORT_PATH.match(attr)):
        raise ConfigError(f"--embedder {spec!r:.80} is not module:callable (e.g. mypkg.embed:encode) or openai:MODEL")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # a module's own code may raise anything while it is imported
        hint = " (is it on PYTHONPATH?)" if isinstance(exc, ModuleNotFoundError) else ""
        raise EmbedderError(f"cannot import {module_name} for embedder {spec}: "
                            f"{type(exc).__name__}: {_first_line(exc)}{hint}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise EmbedderError(f"embedder {spec}: {module_name} has no attribute {attr}") from None
    if not callable(target):
        raise EmbedderError(f"embedder {spec}: {attr} is a {type(target).__name__}, not a callable")
    return target


class CallableEmbedder:
    """An embedder backed by a Python callable ``list[str] -> array-like (n, d)``, run in a thread."""

    def __init__(self, spec: str, func: Callable[[list[str]], Any] | None = None) -> None:
        """``func`` is the callable itself; when None it is imported from ``spec`` (:func:`load_callable`)."""
        self.spec = spec
        self.description = spec
        self._func = func if func is not None else load_callable(spec)

    async def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), d) float32; the callable's own exception becomes one EmbedderError line."""
        texts = list(texts)
        if not texts:
            return _empty()
        try:
            values = await asyncio.to_thread(self._func, texts)
        except (Exception, SystemExit) as exc:  # a callable's sys.exit() must not end memctl silently
            detail = _first_line(exc)
            raise EmbedderError(f"{self.spec} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")) \
                from None
        return checked_matrix(values, len(texts), self.spec)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"CallableEmbedder({self.spec!r})"


def retry_delay(attempt: int, backoff_s: float, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    A ``Retry-After`` header (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) is obeyed,
    cut to :data:`MAX_RETRY_AFTER_S`; without one (or an unreadable one) the wait is
    ``backoff_s * 2**attempt`` plus up to 10 % jitter, at most :data:`MAX_BACKOFF_S`.
    """
    if retry_after is not None:
        wait: float | None
        try:
            wait = float(retry_after.strip())
        except ValueError:
            try:
                wait = (parsedate_to_datetime(retry_after) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError, IndexError):
                wait = None
        if wait is not None and wait == wait:  # not NaN
            return min(max(wait, 0.0), MAX_RETRY_AFTER_S)
    base = backoff_s * 2.0 ** min(attempt, 60)
    return min(base * (1.0 + 0.1 * random.random()), MAX_BACKOFF_S)


def _positive(name: str, value: float, minimum: float) -> None:
    if not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {value!r}")


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings endpoint (``POST {base_url}/embeddings``).

    ``embed(texts)`` sends requests of at most ``request_size`` texts, at most ``concurrency`` in
    flight, and puts the vectors back in the order of ``texts`` (each answer ordered by ``index``).
    HTTP 429/500/502/503/504 and transport errors (refused connection, timeout) are retried up to
    ``max_retries`` times (:func:`retry_delay`); other statuses fail at once. ``timeout_s`` bounds
    each phase of a request (connect, write, read; seconds).

    Counters for tests and reports: ``requests`` (HTTP requests sent, retries included),
    ``retries`` (attempts repeated), ``max_in_flight`` (most requests in flight at once).
    """

    def __init__(self, model: str, base_url: str, api_key: str | None = None, request_size: int = 64,
                 concurrency: int = 4, max_retries: int = 6, timeout_s: float = 60.0,
                 backoff_s: float = 0.5) -> None:
        """Raises :class:`ConfigError` for an empty model, a base URL that is not http(s) or an
        option out of range."""
        if not model.strip():
            raise ConfigError("openai:MODEL needs a model name, e.g. openai:text-embedding-3-small")
        for name, value, minimum in (("request size", request_size, 1), ("concurrency", concurrency, 1),
                                     ("max retries", max_retries, 0), ("timeout", timeout_s, 0.001),
                                     ("backoff", backoff_s, 0)):
            _positive(name, value, minimum)
        try:
            url = httpx.URL(base_url.strip())
        except (httpx.InvalidURL, TypeError, ValueError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise ConfigError("the embeddings base URL must be http(s)://host[:port]/path, e.g. https://api.openai.com/v1")
        if url.port is not None and not 0 < url.port < 65536:
            raise ConfigError(f"the embeddings base URL's port {url.port} is not 1 to 65535")
        if url.username or url.password:  # httpx would send them as Basic auth in place of the key
            raise ConfigError("the embeddings base URL must not hold credentials: put the key in the environment "
                              "variable named by --api-key-env")
        if api_key is not None and not all(32 < ord(c) < 127 for c in api_key):
            raise ConfigError("the API key holds characters an HTTP header cannot carry (spaces, newlines, non-ASCII)")
        self.model = model
        self.request_size = int(request_size)
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self._endpoint = url.copy_with(path=url.path.rstrip("/") + "/embeddings")
        shown = url.copy_with(username=None, password=None, query=None, fragment=None)
        self.description = f"openai:{model} at {str(shown).rstrip('/')}"
        self._secrets = [s for s in (api_key, url.password) if s]
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s),
                                         limits=httpx.Limits(max_connections=self.concurrency))
        self._slots = asyncio.Semaphore(self.concurrency)
        self._in_flight = 0
        self.requests = 0
        self.retries = 0
        self.max_in_flight = 0

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self.description!r})"

    async def __aenter__(self) -> OpenAIEmbedder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _excerpt(self, response: httpx.Response) -> str:
        body = " ".join(response.text[: BODY_EXCERPT_CHARS * 2].split())
        return self._scrub(body)[:BODY_EXCERPT_CHARS] or "(empty body)"

    async def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), d) float32 in the order of ``texts``; EmbedderError when any request fails
        (the requests still running are cancelled)."""
        texts = list(texts)
        if not texts:
            return _empty()
        size = self.request_size
        tasks = [asyncio.ensure_future(self._embed_batch(texts[i:i + size])) for i in range(0, len(texts), size)]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        dims = {part.shape[1] for part in parts}
        if len(dims) > 1:
            raise EmbedderError(f"{self.description} answered vectors of different dimensions {sorted(dims)}")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """One request's vectors (len(texts), d), retried as the class says; holds a slot throughout,
        backoff waits included, so a rate-limited endpoint is not sent more while it recovers."""
        payload = {"model": self.model, "input": texts}
        last = ""
        async with self._slots:
            for attempt in range(self.max_retries + 1):
                retry_after = None
                self.requests += 1
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
                try:
                    response = await self._client.post(self._endpoint, json=payload, headers=self._headers)
                except httpx.TransportError as exc:
                    detail = self._scrub(_first_line(exc))
                    last = type(exc).__name__ + (f": {detail}" if detail else "")
                except (httpx.HTTPError, OSError, ValueError, OverflowError) as exc:  # what a socket may raise
                    raise EmbedderError(f"{self.description} request failed: {type(exc).__name__}: "
                                        f"{self._scrub(_first_line(exc))}") from None
                else:
                    status = response.status_code
                    if 200 <= status < 300:
                        return self._vectors(response, len(texts))
                    if status not in RETRY_STATUSES:
                        raise EmbedderError(f"{self.description} answered HTTP {status}: {self._excerpt(response)}")
                    last = f"HTTP {status}"
                    retry_after = response.headers.get("retry-after")
                finally:
                    self._in_flight -= 1
                if attempt < self.max_retries:
                    self.retries += 1
                    await asyncio.sleep(retry_delay(attempt, self.backoff_s, retry_after))
        raise EmbedderError(f"{self.description} still failing after {self.max_retries} retries, last: {last}")

    def _vectors(self, response: httpx.Response, n: int) -> np.ndarray:
        """The (n, d) matrix of a 2xx answer, rows ordered by each item's ``index`` (list order when
        no item has one); EmbedderError for a body of another shape."""
        where = f"{self.description} answered HTTP {response.status_code}"
        try:
            body = response.json()
        except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise EmbedderError(f"{where} with a body that is not JSON: {self._excerpt(response)}") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbedderError(f"{where} without a data list: {self._excerpt(response)}")
        if len(data) != n:
            raise EmbedderError(f"{where} with {len(data)} embeddings for {n} texts")
        rows: list[Any] = [None] * n
        for position, item in enumerate(data):
            index = item.get("index", position) if isinstance(item, dict) else None
            embedding = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n or rows[index] is not None:
                raise EmbedderError(f"{where} with data[{position}] of a missing, repeated or out-of-range index")
            if not isinstance(embedding, list):
                raise EmbedderError(f"{where} with data[{position}] lacking an embedding list of numbers")
            rows[index] = embedding
        if len({len(row) for row in rows}) != 1:
            raise EmbedderError(f"{where} with embeddings of different lengths")
        return checked_matrix(rows, n, self.description)


def embedder_from_spec(spec: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                       request_size: int = 64, concurrency: int = 4, max_retries: int = 6,
                       timeout_s: float = 60.0, backoff_s: float = 0.5) -> Embedder:
    """The embedder ``spec`` names: ``openai:MODEL`` or ``module:callable`` (see the module docstring).

    For ``openai:`` the base URL is ``base_url``, else ``$OPENAI_BASE_URL``; the key is
    ``$<api_key_env>`` when set and not empty (no ``Authorization`` header otherwise). The other
    options apply to ``openai:`` only. Raises :class:`ConfigError` for a spec of neither form or a
    missing base URL, :class:`EmbedderError` for a callable that cannot be loaded.
    """
    spec = spec.strip()
    if spec.startswith("openai:"):
        url = base_url or os.environ.get("OPENAI_BASE_URL", "").strip()
        if not url:
            raise ConfigError(f"--embedder {spec} needs the endpoint's base URL: pass --base-url "
                              "(e.g. https://api.openai.com/v1) or set OPENAI_BASE_URL")
        key = os.environ.get(api_key_env, "").strip() or None
        if key is not None and not all(32 < ord(c) < 127 for c in key):
            raise ConfigError(f"${api_key_env} holds characters an HTTP header cannot carry (spaces, non-ASCII)")
        return OpenAIEmbedder(spec.removeprefix("openai:").strip(), url, key, request_size, concurrency,
                              max_retries, timeout_s, backoff_s)
    return CallableEmbedder(spec)
