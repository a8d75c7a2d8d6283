"""memctl: schema and data administration for an agent-memory database on PostgreSQL + pgvector.

The public Python API, for a cron job or a service (each function is async and takes an
``AsyncEngine``; open one with :func:`engine_for`)::

    from memctl import Settings, engine_for, upgrade, verify_schema
    async with engine_for(Settings.resolve()) as engine:
        await upgrade(engine)
"""

from memctl.bench import BenchOptions, BenchResult, bench_hnsw
from memctl.checks import CheckResult, Violation, check_constraints
from memctl.config import Settings, mask_url
from memctl.database import engine_for, make_engine, resolve_url
from memctl.datasets import Dataset, load_npz, load_queries, synthetic
from memctl.errors import (
    ConfigError,
    DatabaseUnavailable,
    DatasetError,
    LockHeld,
    MemctlError,
    NotFound,
    SchemaNotReady,
)
from memctl.maintenance import MaintainOptions, MaintainResult, maintain
from memctl.migrate import Guard, current_revision, downgrade, head_revision, history, upgrade, upgrade_sql
from memctl.schema import Finding, VerifyResult, verify_schema
from memctl.seed import SeedResult, seed

__all__ = [
    "BenchOptions", "BenchResult", "CheckResult", "ConfigError", "DatabaseUnavailable", "Dataset", "DatasetError",
    "Finding", "Guard", "MaintainOptions", "MaintainResult", "maintain",
    "LockHeld", "MemctlError", "NotFound", "SchemaNotReady", "SeedResult", "Settings", "VerifyResult",
    "Violation", "bench_hnsw", "check_constraints", "current_revision", "downgrade", "engine_for",
    "head_revision", "history", "load_npz", "load_queries", "make_engine", "mask_url", "resolve_url", "seed",
    "synthetic", "upgrade", "upgrade_sql", "verify_schema",
]
