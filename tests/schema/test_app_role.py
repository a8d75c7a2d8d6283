"""verify-schema: the application's role (memory_app and its members) cannot get around RLS."""

from __future__ import annotations

import secrets

from sqlalchemy import text

from memctl.schema.verify import verify_schema


async def test_app_role_owning_bypassing_or_a_definer_view_are_findings(migrated, db_url):
    assert (await verify_schema(migrated, db_url)).clean
    member = f"memctl_svc_{secrets.token_hex(4)}"
    plants = [
        f'CREATE ROLE "{member}" LOGIN BYPASSRLS IN ROLE memory_app',
        f'GRANT memctl_admin TO "{member}"',  # the admin policy would show it every organisation
        "ALTER TABLE agent_memory.memory_tags OWNER TO memory_app",
        "CREATE VIEW agent_memory.active_memories AS SELECT id, content FROM agent_memory.memories",
        "CREATE VIEW agent_memory.safe_memories WITH (security_invoker = true) AS SELECT id FROM agent_memory.memories",
    ]
    async with migrated.begin() as conn:
        for sql in plants:
            await conn.execute(text(sql))
    try:
        found = {(f.kind, f.object) for f in (await verify_schema(migrated, db_url)).findings}
        assert {("app_role_bypasses_rls", f"pg_roles.{member}"), ("app_role_is_admin", f"pg_roles.{member}"),
                ("app_role_owns", "agent_memory.memory_tags"),
                ("view_not_security_invoker", "agent_memory.active_memories")} <= found
        assert not any(obj == "agent_memory.safe_memories" for kind, obj in found
                       if kind == "view_not_security_invoker")
        missing = await verify_schema(migrated, db_url, app_role="no_such_role")
        assert ("app_role_missing", "pg_roles.no_such_role") in {(f.kind, f.object) for f in missing.findings}
    finally:
        async with migrated.begin() as conn:
            await conn.execute(text("DROP VIEW agent_memory.active_memories, agent_memory.safe_memories"))
            await conn.execute(text("ALTER TABLE agent_memory.memory_tags OWNER TO CURRENT_USER"))
            # the round trip of ownership took memory_app's grants with it (aclnewowner): put them back
            await conn.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON agent_memory.memory_tags TO memory_app"))
            await conn.execute(text(f'DROP ROLE "{member}"'))
    assert (await verify_schema(migrated, db_url)).clean
