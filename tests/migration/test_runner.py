"""Migrations: upgrade to head, downgrade to base (nothing of agent_memory left), upgrade again."""

from sqlalchemy import text

from memctl.migration import runner as migrate
from memctl.migration.offline import upgrade_sql
from memctl.migration.revisions import ordered
from memctl.schema.verify import live_snapshot, verify_schema


async def _schema_objects(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(
            "SELECT count(*) FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
            "WHERE n.nspname = 'agent_memory'"))).scalar()


async def test_upgrade_downgrade_upgrade_round_trip(engine, db_url):
    first = await migrate.upgrade(engine)
    assert first.before is None and first.after == migrate.head_revision()
    assert first.revisions == ordered() and len(first.revisions) == 18
    await engine.dispose()
    snap_first = await live_snapshot(engine)
    assert (await verify_schema(engine, db_url)).clean

    down = await migrate.downgrade(engine, "base")
    assert down.after is None and down.revisions[0] == migrate.head_revision() and down.revisions[-1] == "0001"
    assert await _schema_objects(engine) == 0
    assert await migrate.current_revision(engine) is None

    again = await migrate.upgrade(engine)
    assert again.after == migrate.head_revision()
    assert (await live_snapshot(engine)).objects == snap_first.objects
    result = await verify_schema(engine, db_url)
    assert result.clean, result.findings
    assert result.checked["table"] == 27


async def test_upgrade_is_idempotent_and_partial_targets(engine):
    await migrate.downgrade(engine, "0003")
    assert await migrate.current_revision(engine) == "0003"
    hist = await migrate.history(engine)
    assert [h.applied for h in hist] == [True] * 3 + [False] * (len(hist) - 3)
    res = await migrate.upgrade(engine, "0005")
    assert res.revisions == ["0004", "0005"]
    await migrate.upgrade(engine)
    assert (await migrate.upgrade(engine)).revisions == []


def test_upgrade_sql_renders_without_database():
    sql = upgrade_sql()
    assert "CREATE SCHEMA agent_memory" in sql
    assert sql.count("CREATE TABLE agent_memory.") == 27
    assert "ENABLE ROW LEVEL SECURITY" in sql and "USING hnsw" in sql
