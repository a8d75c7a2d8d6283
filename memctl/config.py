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
SECRET_PARAMETERS = ("password", "sslpassword")  # libpq parameters whose value is a secret
_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}


def home_dir() -> Path:
    """memctl's data directory: ``$MEMCTL_HOME`` or the platform's user data dir (platformdirs)."""
    env = os.environ.get("MEMCTL_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("memctl"))


def cache_dir() -> Path:
    """memctl's cache (bench-hnsw's exact top-k): ``$MEMCTL_HOME/cache`` or the platform's user cache dir."""
    env = os.environ.get("MEMCTL_HOME")
    return Path(env).expanduser() / "cache" if env else Path(platformdirs.user_cache_dir("memctl"))


def _at_in_password_encoded(raw: str) -> str:
    """``raw`` with any ``@`` in its user:password part percent-encoded.

    ``postgresql://u:Pa@ss@host/db`` means the password ``Pa@ss``: the host follows the last
    ``@`` of the authority (RFC 3986; Python's urllib and asyncpg read it so), while SQLAlchemy's
    parser stops at the first and would take ``ss@host`` for the host, and print ``ss``.
    """
    scheme, sep, rest = raw.partition("://")
    ends = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    authority = rest[:min(ends)] if ends else rest
    if not sep or authority.count("@") < 2:
        return raw
    userinfo, _, host = authority.rpartition("@")
    return f"{scheme}://{userinfo.replace('@', '%40')}@{host}{rest[len(authority):]}"


def normalise_url(raw: str) -> URL:
    """Parse a PostgreSQL URL and return it with the asyncpg driver.

    Accepts ``postgresql://``, ``postgres://`` and ``postgresql+<driver>://``; an unencoded ``@``
    in the password is read as part of it. Raises :class:`ConfigError` (with no password in the
    message) on anything else.
    """
    try:
        url = make_url(_at_in_password_encoded(raw.strip()))
    except (ArgumentError, ValueError) as exc:
        raise ConfigError("database URL is not a valid URL (expected postgresql://...)") from exc
    if url.drivername not in _SCHEMES:
        raise ConfigError(f"unsupported database URL scheme {url.drivername!r}: expected postgresql://")
    return url.set(drivername="postgresql+asyncpg")


def mask_url(url: URL | str) -> str:
    """The URL as a string with its password replaced by ``***`` (safe for any output), in the
    user:password part and in the libpq parameters that carry one (``password``, ``sslpassword``)."""
    if isinstance(url, str):
        try:
            url = make_url(_at_in_password_encoded(url))
        except (ArgumentError, ValueError):
            return "<unparseable URL>"
    hidden = {k: "***" for k in SECRET_PARAMETERS if k in url.query}
    shown = url.update_query_dict(hidden) if hidden else url
    return shown.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")


def secrets_of(url: URL) -> list[str]:
    """Every secret ``url`` holds: its password and the values of its secret parameters."""
    values = [url.password] + [url.query.get(k) for k in SECRET_PARAMETERS]
    flat = [v for value in values for v in (value if isinstance(value, tuple) else [value]) if v]
    return [str(v) for v in flat]


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one run.

    ``database_url`` is None when the embedded server is to be used; ``home`` holds its data.
    ``connect_timeout`` (seconds): --connect-timeout; None leaves it to the URL's
    ``connect_timeout``, ``PGCONNECT_TIMEOUT`` or 10 s.
    """

    database_url: URL | None
    home: Path
    connect_timeout: float | None = None

    @classmethod
    def resolve(cls, database_url: str | None = None, connect_timeout: float | None = None) -> Settings:
        """Settings from the option values (may be None) and the environment."""
        raw = database_url or next((os.environ[v] for v in URL_ENV_VARS if os.environ.get(v)), None)
        return cls(database_url=normalise_url(raw) if raw else None, home=home_dir(), connect_timeout=connect_timeout)
