"""``memctl maintain``: retention, expiry, purge, stale consolidation jobs, VACUUM and REINDEX,
safe to run from cron (issue 5): one run at a time (exit 75 for the second), batched
tenant-scoped changes with ``FOR UPDATE SKIP LOCKED``, a runtime budget, and ``--dry-run``."""

from memctl.maintenance.batches import Batch, UnsafeStatement, ensure_scoped
from memctl.maintenance.run import LOCK_NAME, maintain
from memctl.maintenance.types import TASKS, MaintainOptions, MaintainResult, TaskResult

__all__ = ["LOCK_NAME", "TASKS", "Batch", "MaintainOptions", "MaintainResult", "TaskResult", "UnsafeStatement",
           "ensure_scoped", "maintain"]
