"""What ``memctl maintain`` is asked to do and what it did (plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("retention", "expire", "purge", "consolidation", "vacuum", "reindex")  # run in this order
DEFAULT_BATCH_SIZE = 1000
DEFAULT_GRACE_S = 7 * 86400  # purge: soft-deleted for longer than 7 days (a recovery window)
DEFAULT_STALE_S = 3600  # consolidation: running for longer than an hour
DEFAULT_REINDEX_DEAD_SHARE = 0.2  # reindex an HNSW index when 20 % of its table's tuples are dead


@dataclass(frozen=True)
class MaintainOptions:
    """Options of a run. Times in seconds; ``orgs`` are organisation slugs (None: every one).

    ``max_runtime_s``: no batch starts after this budget (None: no limit). ``tables`` limits
    ``vacuum`` when it runs alone (names checked against the catalog).
    """

    tasks: tuple[str, ...] = TASKS
    dry_run: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    max_runtime_s: float | None = None
    grace_s: float = DEFAULT_GRACE_S
    stale_s: float = DEFAULT_STALE_S
    reindex_dead_share: float = DEFAULT_REINDEX_DEAD_SHARE
    orgs: tuple[str, ...] | None = None
    tables: tuple[str, ...] = ()


@dataclass
class TaskResult:
    """One task: ``rows`` changed (or that would change, with --dry-run) by a data task, batches
    (transactions), the largest batch, ``elapsed_s`` seconds, the ``tables`` it touched (vacuumed
    by vacuum), the ``indexes`` rebuilt by reindex, and the error that stopped it, if any."""

    task: str
    rows: int = 0
    batches: int = 0
    max_batch_rows: int = 0
    elapsed_s: float = 0.0
    stopped_by_budget: bool = False
    details: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def changed(self) -> str:
        """What the task changed, in its own unit: 'N rows', 'N tables' (vacuum), 'N indexes' (reindex)."""
        if self.task == "vacuum":
            return f"{len(self.tables)} tables"
        if self.task == "reindex":
            return f"{len(self.indexes)} indexes"
        return f"{self.rows} rows"


@dataclass
class MaintainResult:
    """A run: its tasks in order. ``ok`` when no task failed (exit 0), else exit 1."""

    dry_run: bool
    batch_size: int
    tasks: list[TaskResult] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no task failed."""
        return all(t.error is None for t in self.tasks)
