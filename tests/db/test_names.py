"""Names from the command line are resolved against the data or the catalog, never run as SQL.

Hypothesis feeds organisation slugs, model names and table names made of quotes, semicolons,
comment markers, backslashes, NUL and other unicode; each must end in NotFound with a one-line
message, and nothing in the database may change (catalog snapshot and tuple counters).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.bench.run import BenchOptions, bench_hnsw
from memctl.cli import app
from memctl.db.engine import make_engine
from memctl.errors import NotFound
from memctl.maintenance.run import maintain
from memctl.maintenance.types import MaintainOptions
from memctl.models import metadata
from memctl.models.embeddings import DEFAULT_MODEL_NAME
from memctl.schema.verify import live_snapshot
from tests.cli import one_error_line
from tests.conftest import url_arg

PAYLOADS = ["'; DROP TABLE agent_memory.memories; --", "' OR '1'='1", 'memories"; DROP TABLE x; --', "x\x00y"]
NASTY = st.one_of(st.sampled_from(PAYLOADS),
                  st.text(alphabet=st.sampled_from(list("'\";-\\/*%_$(){}[]\x00\n\t aZ9é中🙂")),
                          min_size=1, max_size=40),
                  st.text(min_size=1, max_size=300))
# Names that do name something (hypothesis also draws string constants found in the code, such as
# table names): only the others must be NotFound.
KNOWN = {"seed-org-01", DEFAULT_MODEL_NAME, *(t.name for t in metadata.sorted_tables)}


async def _state(engine) -> tuple:
    snap = await live_snapshot(engine)
    async with engine.connect() as conn:
        counts = (await conn.execute(text(
            "SELECT string_agg(relname || ':' || n_live_tup, ',' ORDER BY relname) FROM pg_stat_user_tables "
            "WHERE schemaname = 'agent_memory'"))).scalar()
        rows = (await conn.execute(text("SELECT count(*) FROM agent_memory.memories"))).scalar()
    return snap.objects, counts, rows


async def _probe(engine, name: str) -> list[str]:
    """Every way ``name`` can reach the database; the error messages (each must be NotFound)."""
    messages = []
    for call in (lambda: bench_hnsw(engine, BenchOptions(org=name, num_queries=1)),
                 lambda: bench_hnsw(engine, BenchOptions(model_name=name, num_queries=1)),
                 lambda: maintain(engine, MaintainOptions(orgs=(name,), dry_run=True)),
                 lambda: maintain(engine, MaintainOptions(tasks=("vacuum",), tables=(name,), dry_run=True))):
        with pytest.raises(NotFound) as err:
            await call()
        messages.append(str(err.value))
    return messages


def test_fuzzed_names_are_not_found_in_one_line_and_change_nothing(migrated, db_url):
    # One event loop and one pooled engine for every example (hypothesis drives a sync test).
    loop = asyncio.new_event_loop()
    engine = make_engine(db_url)
    try:
        before = loop.run_until_complete(_state(engine))

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(NASTY)
        def check(name: str) -> None:
            if name in KNOWN:
                return
            for message in loop.run_until_complete(_probe(engine, name)):
                assert "\n" not in message and message.startswith("no ")

        check()
        assert loop.run_until_complete(_state(engine)) == before
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NASTY)
def test_fuzzed_names_through_the_cli_exit_2_with_one_line(migrated, db_url, name):
    assume(name not in KNOWN)
    runner = CliRunner()
    for args in (["bench-hnsw", "--org", name], ["bench-hnsw", "--model", name], ["maintain", "--org", name],
                 ["maintain", "vacuum", "--table", name]):
        out = runner.invoke(app, [*args, "--database-url", url_arg(db_url)])
        assert out.exit_code == 2, (args, out.stdout, out.stderr)
        assert out.stdout == "" and one_error_line(out.stderr).startswith("memctl: error: no ")
