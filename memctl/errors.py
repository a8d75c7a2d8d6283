"""Typed errors of the memctl library.

Every error the library raises on purpose is a :class:`MemctlError`. The CLI maps each class to
an exit code (``exit_code``, an :class:`ExitCode`) and prints ``str(error)`` as one line on
stderr; messages never hold a password (URLs in them are rendered with ``hide_password=True``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """memctl's exit statuses, the one source of them (architecture.md, "Habits").

    ``CLEAN`` 0: done, nothing found. ``FINDINGS`` 1: the command worked and found something
    (drift, violations, an INVALID or regressed bench, a failed maintain task); ``ABORTED`` is the
    same status for a confirmation the user declined. ``USAGE`` 2: usage, configuration or
    connection error. ``LOCKED`` 75 (sysexits' EX_TEMPFAIL): another run holds the lock, try later.
    """

    CLEAN = 0
    FINDINGS = 1
    ABORTED = 1  # an alias of FINDINGS: nothing was done because the user said no
    USAGE = 2
    LOCKED = 75


class MemctlError(Exception):
    """Base class of memctl's errors. ``exit_code`` is the CLI's exit status for it."""

    exit_code = ExitCode.USAGE


class ConfigError(MemctlError):
    """Bad configuration or usage: an unusable URL, a missing file, an option out of range."""


class DatabaseUnavailable(MemctlError):
    """The database cannot be reached, or the embedded server cannot be started."""


class NotFound(MemctlError):
    """A name given on the command line (organisation slug, model, revision) names nothing."""


class DatasetError(MemctlError):
    """A dataset file is unreadable, or its shape does not fit the target (e.g. wrong dimension)."""


class SchemaNotReady(MemctlError):
    """The database is not migrated far enough for the command (run ``memctl migrate``)."""


class LockHeld(MemctlError):
    """Another memctl run holds the advisory lock; cron should try later (exit 75, EX_TEMPFAIL)."""

    exit_code = ExitCode.LOCKED


class LockTimeout(MemctlError):
    """A revision could not get a table lock within ``lock_timeout`` on any attempt (exit 75).

    The message names the table and the blocking session; nothing of the revision was applied.
    """

    exit_code = ExitCode.LOCKED


class MigrationFailed(MemctlError):
    """A revision failed (an error in its SQL, a statement timeout, a lost connection) and was rolled
    back; the message names it and the revision the database is at."""


class LintFailed(MemctlError):
    """The migration linter could not run (squawk missing or failing); findings are not errors."""


class PrivilegeMissing(MemctlError):
    """The role lacks a privilege the command needs; checked before anything is written. The message
    names the privilege and the SQL an administrator runs once to grant it (exit 2)."""


class EmbedderError(MemctlError):
    """An embedder failed: a ``module:callable`` that cannot be loaded or returns the wrong shape, an
    embeddings endpoint that keeps answering 429/5xx past the retries, or answers something else."""


class ModelUnavailable(MemctlError):
    """A search or a switch names a model that is unknown, not ready (no valid HNSW index yet) or
    retiring, or a query vector of another dimension than the model's."""
