"""pytest-alembic's built-in tests on memctl's revisions, against a scratch database.

Imported by name (pytest collects them here): one head, upgrade base->head one revision at a
time, every revision's downgrade runs (up/down consistency), autogenerate finds nothing between
the models and head (model definitions match DDL), and the experimental downgrade-leaves-no-trace.
"""

import pytest
from pytest_alembic.tests import (  # noqa: F401  (collected by pytest)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from pytest_alembic.tests.experimental import test_downgrade_leaves_no_trace  # noqa: F401
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from memctl.migration.revisions import MIGRATIONS_DIR

# Revisions that build indexes CONCURRENTLY (autocommit blocks). pytest-alembic's experimental
# downgrade-leaves-no-trace runs every cycle inside one rolled-back transaction, where
# CONCURRENTLY cannot run; memctl's own round trip (test_migrate_check) covers them instead.
CONCURRENT_REVISIONS = ["0009", "0018"]
# 0017 creates public.memctl_maintain_runs, outside agent_memory: the experimental test compares whole
# databases without env.py's include_object (agent_memory only), so it reports the table its own
# downgrade drops. test_up_down_consistency and memctl's round trips (test_runner) run 0017 both ways.
OUTSIDE_SCHEMA_REVISIONS = ["0017"]


@pytest.fixture
def alembic_config(request):
    """memctl's revision directory, as pytest-alembic's config."""
    config = {"script_location": str(MIGRATIONS_DIR)}
    if request.node.name == "test_downgrade_leaves_no_trace":
        config["skip_revisions"] = CONCURRENT_REVISIONS + OUTSIDE_SCHEMA_REVISIONS
    return config


@pytest.fixture
def alembic_engine(db_url):
    """An AsyncEngine on the module's scratch database (NullPool: each asyncio.run gets its own)."""
    return create_async_engine(db_url, poolclass=NullPool)
