"""What ``memctl stats`` reports: plain dataclasses (times are UTC, sizes bytes, shares 0..1)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from memctl.maintenance.history import LastRun


@dataclass(frozen=True)
class Thresholds:
    """Limits a cron line alerts on (exit 1 when crossed); None: not checked.

    ``max_dead_share``: dead tuples / (live + dead) of any table; ``max_stale``: stale embedding rows
    of any model; ``max_maintain_age_s``: seconds since a maintain task's last successful run (a task
    never run, or none run at all, crosses it); ``min_coverage``: a ready model's coverage;
    ``max_failed_jobs``: consolidation jobs in state failed."""

    max_dead_share: float | None = None
    max_stale: int | None = None
    max_maintain_age_s: float | None = None
    min_coverage: float | None = None
    max_failed_jobs: int | None = None


@dataclass(frozen=True)
class MemoryCounts:
    """An organisation's memories of one tier: active, archived, and soft-deleted awaiting purge."""

    org: str
    tier: str
    active: int
    archived: int
    deleted: int


@dataclass(frozen=True)
class ModelHealth:
    """A model's state, rows, coverage (0..1 of active and consolidated memories) and stale rows."""

    model: str
    state: str
    default: bool
    embedded_rows: int
    coverage: float
    stale_rows: int


@dataclass(frozen=True)
class TableHealth:
    """pg_stat_user_tables for one table: live and dead tuples, dead share, total size (bytes, with
    indexes and TOAST), and the last (auto)vacuum and (auto)analyze (None: never)."""

    table: str
    live_tuples: int
    dead_tuples: int
    dead_share: float
    size_bytes: int
    last_vacuum: dt.datetime | None
    last_analyze: dt.datetime | None


@dataclass(frozen=True)
class IndexHealth:
    """One index: table, size (bytes), validity, access method, and for HNSW whether it fits in
    shared_buffers (pgvector README: an index that fits in memory is searched much faster)."""

    index: str
    table: str
    size_bytes: int
    valid: bool
    method: str
    fits_shared_buffers: bool | None


@dataclass(frozen=True)
class JobHealth:
    """consolidation_jobs by status, and the oldest running job's start and age (seconds)."""

    pending: int
    running: int
    failed: int
    oldest_running_started_at: dt.datetime | None
    oldest_running_age_s: float | None


@dataclass
class StatsResult:
    """The whole report, when it was taken, the thresholds and what crossed them (``findings``)."""

    taken_at: dt.datetime
    shared_buffers_bytes: int
    memories: list[MemoryCounts]
    models: list[ModelHealth]
    tables: list[TableHealth]
    indexes: list[IndexHealth]
    jobs: JobHealth
    maintain: list[LastRun]
    thresholds: Thresholds
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no threshold was crossed."""
        return not self.findings
