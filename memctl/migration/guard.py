"""How a migration protects a live database: the options of ``migrate`` and ``downgrade``.

A plain dataclass with no imports, so the CLI reads its defaults without loading Alembic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Guard:
    """How a run protects a live database. Times in seconds.

    ``wait_s``: how long to wait for another migrator's advisory lock (default 60).
    ``lock_timeout_s``: the longest any revision statement waits for a table lock, so the longest
    it can make other sessions queue behind it (default 5; PostgreSQL's ``lock_timeout``).
    ``statement_timeout_s``: the longest a statement may run (default 1800; 0 = no limit).
    ``retries``: extra attempts of a revision that hit ``lock_timeout_s`` (default 3), after
    ``backoff_s``, 2 x ``backoff_s``, 4 x ``backoff_s`` ... seconds.
    """

    wait_s: float = 60.0
    lock_timeout_s: float = 5.0
    statement_timeout_s: float = 1800.0
    retries: int = 3
    backoff_s: float = 1.0
