"""Settings: where the database and memctl's data live. Reads the environment; no other I/O.

The database URL comes from, in order (architecture.md, "Where the database comes from"):
``--database-url``, ``MEMCTL_DATABASE_URL``, ``DATABASE_URL``; otherwise the embedded server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from memctl.errors import ConfigError

URL_ENV_VARS = ("MEMCTL_DATABASE_URL", "DATABASE_URL")
_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}


def home_dir() -> Path:
    """memctl's data directory: ``$MEMCTL_HOME`` or the platform's user data dir (platformdirs)."""
    env = os.environ.get("MEMCTL_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("memctl"))


def cache_dir() -> Path:
    """memctl's cache (bench-hnsw's exact top-k): ``$MEMCTL_HOME/cache`` or the platform's user cache dir."""
    env = os.environ.get("MEMCTL_HOME")
    return Path(env).expanduser() / "cache" if env else Path(platformdirs.user_cache_dir("memctl"))


def normalise_url(raw: str) -> URL:
    """Parse a PostgreSQL URL and return it with the asyncpg driver.

    Accepts ``postgresql://``, ``postgres://`` and ``postgresql+<driver>://``.
    Raises :class:`ConfigError` (with no password in the message) on anything else.
    """
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        raise ConfigError("database URL is not a valid URL (expected postgresql://...)") from exc
    if url.drivername not in _SCHEMES:
        raise ConfigError(f"unsupported database URL scheme {url.drivername!r}: expected postgresql://")
    return url.set(drivername="postgresql+asyncpg")


def mask_url(url: URL | str) -> str:
    """The URL as a string with its password replaced by ``***`` (safe for any output)."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            return "<unparseable URL>"
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one run.

    ``database_url`` is None when the embedded server is to be used; ``home`` holds its data.
    """

    database_url: URL | None
    home: Path

    @classmethod
    def resolve(cls, database_url: str | None = None) -> Settings:
        """Settings from the option value (may be None) and the environment."""
        raw = database_url or next((os.environ[v] for v in URL_ENV_VARS if os.environ.get(v)), None)
        return cls(database_url=normalise_url(raw) if raw else None, home=home_dir())
