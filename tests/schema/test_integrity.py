"""verify-schema: revision file checksums and --target citus."""

from __future__ import annotations

import shutil

from sqlalchemy import text

from memctl.db.engine import make_engine
from memctl.migration import runner as migrate
from memctl.migration.revisions import CHECKSUM_TABLE, MIGRATIONS_DIR, file_checksum, ordered, stored_checksums
from memctl.schema.integrity import checksum_findings
from memctl.schema.verify import verify_schema


async def test_checksums_recorded_on_upgrade_and_forgotten_on_downgrade(fresh_url):
    engine = make_engine(fresh_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            stored = await stored_checksums(conn)
        assert stored == {rev: file_checksum(rev) for rev in ordered()}
        await migrate.downgrade(engine, "0007")
        async with engine.connect() as conn:
            assert set(await stored_checksums(conn)) == set(ordered()[:7])
    finally:
        await engine.dispose()


async def test_revision_file_edited_after_apply_is_reported(fresh_url, tmp_path):
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    engine = make_engine(fresh_url)
    try:
        await migrate.upgrade(engine, "0004", script_location=location)
        async with engine.connect() as conn:
            assert await checksum_findings(conn, "0004", location) == []
        edited = next((location / "versions").glob("0003_*.py"))
        edited.write_text(edited.read_text() + "\n# edited after it was applied\n")
        async with engine.connect() as conn:
            found = await checksum_findings(conn, "0004", location)
        assert [(f.kind, f.object) for f in found] == [("revision_edited", "public.memctl_revision_checksums.0003")]
        assert found[0].expected != found[0].actual
    finally:
        await engine.dispose()


async def test_revision_applied_without_checksum_is_reported(migrated, db_url):
    assert (await verify_schema(migrated, db_url)).clean
    async with migrated.begin() as conn:
        await conn.execute(text(f"DELETE FROM {CHECKSUM_TABLE} WHERE revision = '0005'"))
    result = await verify_schema(migrated, db_url)
    assert [(f.kind, f.object) for f in result.findings] == [
        ("revision_unrecorded", "public.memctl_revision_checksums.0005")]
    async with migrated.begin() as conn:
        await conn.execute(text(f"INSERT INTO {CHECKSUM_TABLE} (revision, sha256) VALUES ('0005', :s)"),
                           {"s": file_checksum("0005")})
    assert (await verify_schema(migrated, db_url)).clean


async def test_citus_target_clean_on_the_project_and_reports_planted_blockers(migrated, db_url):
    result = await verify_schema(migrated, db_url, target="citus")
    assert result.clean, result.findings
    plants = [
        "CREATE TABLE agent_memory.no_tenant (id uuid PRIMARY KEY)",
        "ALTER TABLE agent_memory.api_tokens ADD CONSTRAINT uq_api_tokens_token_prefix UNIQUE (token_prefix)",
        "CREATE UNIQUE INDEX uq_memories_id ON agent_memory.memories (id)",
        "ALTER TABLE agent_memory.agents ADD CONSTRAINT uq_agents_id UNIQUE (id)",
        "ALTER TABLE agent_memory.sessions ADD CONSTRAINT fk_sessions_agent_only "
        "FOREIGN KEY (agent_id) REFERENCES agent_memory.agents (id)",
        "ALTER TABLE agent_memory.embedding_models ADD COLUMN owner_org uuid, ADD COLUMN owner_agent uuid",
        "ALTER TABLE agent_memory.embedding_models ADD CONSTRAINT fk_embedding_models_agent "
        "FOREIGN KEY (owner_org, owner_agent) REFERENCES agent_memory.agents (org_id, id)",
    ]
    async with migrated.begin() as conn:
        for sql in plants:
            await conn.execute(text(sql))
    try:
        found = {(f.kind, f.object) for f in (await verify_schema(migrated, db_url, target="citus")).findings}
        assert {
            ("citus_not_distributable", "agent_memory.no_tenant"),
            ("citus_key_without_org_id", "agent_memory.api_tokens.uq_api_tokens_token_prefix"),
            ("citus_key_without_org_id", "agent_memory.memories.uq_memories_id"),
            ("citus_key_without_org_id", "agent_memory.agents.uq_agents_id"),
            ("citus_fk_without_org_id", "agent_memory.sessions.fk_sessions_agent_only"),
            ("citus_reference_to_distributed", "agent_memory.embedding_models.fk_embedding_models_agent"),
        } <= found
        plain = {f.kind for f in (await verify_schema(migrated, db_url)).findings}
        assert not any(kind.startswith("citus_") for kind in plain)
    finally:
        async with migrated.begin() as conn:
            await conn.execute(text("DROP TABLE agent_memory.no_tenant"))
            await conn.execute(text("ALTER TABLE agent_memory.embedding_models DROP COLUMN owner_org, "
                                    "DROP COLUMN owner_agent"))
            await conn.execute(text("ALTER TABLE agent_memory.sessions DROP CONSTRAINT fk_sessions_agent_only"))
            await conn.execute(text("ALTER TABLE agent_memory.agents DROP CONSTRAINT uq_agents_id"))
            await conn.execute(text("DROP INDEX agent_memory.uq_memories_id"))
            await conn.execute(text("ALTER TABLE agent_memory.api_tokens DROP CONSTRAINT uq_api_tokens_token_prefix"))
