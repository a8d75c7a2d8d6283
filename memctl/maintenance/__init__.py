"""``memctl maintain``: retention, expiry, purge, stale consolidation jobs, VACUUM and REINDEX,
safe to run from cron: one run at a time (exit 75 for the second), batched tenant-scoped changes
with ``FOR UPDATE SKIP LOCKED``, a runtime budget, and ``--dry-run``.
:func:`memctl.maintenance.run.maintain` runs it.

Import from the modules: this package imports nothing itself, so the CLI can read the defaults
in :mod:`memctl.maintenance.types` without loading SQLAlchemy.
"""
