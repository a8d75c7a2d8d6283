"""memctl: schema and data administration for an agent-memory database on PostgreSQL + pgvector.

The public Python API, for a cron job or a service (each function is async and takes an
``AsyncEngine``; open one with :func:`engine_for`)::

    from memctl import Settings, engine_for, upgrade, verify_schema
    async with engine_for(Settings.resolve()) as engine:
        await upgrade(engine)

The names are loaded on first use (PEP 562 ``__getattr__``): ``import memctl``, and so
``memctl --help``, loads neither numpy nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from memctl.errors import (
    ConfigError,
    DatabaseUnavailable,
    DatasetError,
    ExitCode,
    LockHeld,
    LockTimeout,
    MemctlError,
    MigrationFailed,
    NotFound,
    SchemaNotReady,
)

# public name -> the module that defines it
_LAZY = {
    **dict.fromkeys(("BenchOptions", "bench_hnsw"), "memctl.bench.run"),
    "BenchResult": "memctl.bench.types",
    **dict.fromkeys(("CheckResult", "Violation", "check_constraints"), "memctl.data.checks"),
    **dict.fromkeys(("Settings", "mask_url"), "memctl.config"),
    **dict.fromkeys(("engine_for", "make_engine", "resolve_url"), "memctl.db.engine"),
    **dict.fromkeys(("Dataset", "load_npz", "load_queries", "synthetic"), "memctl.data.datasets"),
    **dict.fromkeys(("MaintainOptions", "MaintainResult"), "memctl.maintenance.types"),
    "maintain": "memctl.maintenance.run",
    **dict.fromkeys(("Guard", "MigrationResult", "current_revision", "downgrade", "history", "rows_lost", "stamp",
                     "upgrade"),
                    "memctl.migration.runner"),
    **dict.fromkeys(("downgrade_sql", "upgrade_sql"), "memctl.migration.offline"),
    "head_revision": "memctl.migration.revisions",
    "Finding": "memctl.schema.diff",
    **dict.fromkeys(("VerifyResult", "verify_schema"), "memctl.schema.verify"),
    **dict.fromkeys(("SeedResult", "seed"), "memctl.data.seed"),
}

__all__ = [
    "BenchOptions", "BenchResult", "CheckResult", "ConfigError", "DatabaseUnavailable", "Dataset",
    "DatasetError", "ExitCode", "Finding", "Guard", "LockHeld", "LockTimeout", "MaintainOptions",
    "MaintainResult", "MemctlError", "MigrationFailed", "MigrationResult", "NotFound", "SchemaNotReady",
    "SeedResult", "Settings", "VerifyResult", "Violation", "bench_hnsw", "check_constraints",
    "current_revision", "downgrade", "downgrade_sql", "engine_for", "head_revision", "history", "installed_version",
    "load_npz",
    "load_queries", "maintain", "make_engine", "mask_url", "resolve_url", "rows_lost", "seed", "stamp", "synthetic",
    "upgrade",
    "upgrade_sql", "verify_schema",
]


def installed_version() -> str:
    """memctl's version from its package metadata; 'unknown' in a source tree never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("memctl")
    except PackageNotFoundError:
        return "unknown"


def __getattr__(name: str) -> Any:
    """Import the module defining ``name`` on first access (PEP 562). Raises AttributeError otherwise."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from memctl.bench.run import BenchOptions, bench_hnsw
    from memctl.bench.types import BenchResult
    from memctl.config import Settings, mask_url
    from memctl.data.checks import CheckResult, Violation, check_constraints
    from memctl.data.datasets import Dataset, load_npz, load_queries, synthetic
    from memctl.data.seed import SeedResult, seed
    from memctl.db.engine import engine_for, make_engine, resolve_url
    from memctl.maintenance.run import maintain
    from memctl.maintenance.types import MaintainOptions, MaintainResult
    from memctl.migration.offline import downgrade_sql, upgrade_sql
    from memctl.migration.revisions import head_revision
    from memctl.migration.runner import (
        Guard,
        MigrationResult,
        current_revision,
        downgrade,
        history,
        rows_lost,
        stamp,
        upgrade,
    )
    from memctl.schema.diff import Finding
    from memctl.schema.verify import VerifyResult, verify_schema
