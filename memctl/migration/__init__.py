"""The schema's revisions: the runner over ``alembic.command`` (advisory lock, timeouts, retries),
the revision directory and its checksums, the squawk lint and ``memctl migrate check``.

Import from the modules (``memctl.migration.runner`` ...): this package imports nothing itself.
"""
