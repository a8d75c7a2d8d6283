"""maintain_runs: memctl maintain records each task's run, for memctl stats and monitoring.

``public.memctl_maintain_runs`` (memctl's own bookkeeping, beside ``memctl_revision_checksums``; not
part of the application's schema): per task run, when it started and finished, its outcome (ok,
failed, or stopped by --max-runtime), the rows it changed and its error. Dry runs are not recorded:
they change nothing. memctl_admin (the cron role) may read and append; the application may not.
``memctl stats --max-maintain-age`` alerts when a task's last successful run is too old (issue 15).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE public.memctl_maintain_runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        outcome text NOT NULL CONSTRAINT ck_memctl_maintain_runs_outcome CHECK (outcome IN ('ok', 'failed', 'stopped')),
        rows bigint DEFAULT 0 NOT NULL,
        error text,
        memctl_version text,
        CONSTRAINT ck_memctl_maintain_runs_finished_after_start CHECK (finished_at >= started_at)
    )""",
    "CREATE INDEX ix_memctl_maintain_runs_task_finished_at ON public.memctl_maintain_runs (task, finished_at DESC)",
    "REVOKE ALL ON public.memctl_maintain_runs FROM PUBLIC",
    "GRANT SELECT, INSERT ON public.memctl_maintain_runs TO memctl_admin",
]

DOWNGRADE = ["DROP TABLE public.memctl_maintain_runs"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
