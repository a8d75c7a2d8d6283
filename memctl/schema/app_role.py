"""verify-schema: the application's role cannot get around row-level security.

A table's owner is exempt from its policies unless FORCE is set, and a BYPASSRLS or superuser
role ignores them altogether; a view runs with its owner's rights unless it is
``security_invoker`` (PostgreSQL docs, "Row Security Policies", CREATE VIEW). So the role the
application uses (``memory_app`` and every role that is a member of it) must own nothing in the
schema and be neither BYPASSRLS nor superuser, and every view must be security_invoker.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.models.ddl import ADMIN_ROLE
from memctl.schema.diff import Finding, qualified

_ROLES = """
WITH RECURSIVE app(oid) AS (
    SELECT oid FROM pg_roles WHERE rolname = :role
    UNION SELECT m.member FROM pg_auth_members m JOIN app ON m.roleid = app.oid)
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       coalesce(pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = :admin), 'MEMBER'), false) AS admin
  FROM pg_roles r JOIN app USING (oid) ORDER BY r.rolname
"""

_OWNED = """
SELECT kind, name, owner FROM (
    SELECT 'schema' AS kind, n.nspname::text AS name, n.nspowner AS owner_oid FROM pg_namespace n
     WHERE n.nspname = :schema
    UNION ALL
    SELECT 'relation', c.relname::text, c.relowner FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proowner
      FROM pg_proc p WHERE p.pronamespace = CAST(:schema AS regnamespace)
) o JOIN LATERAL (SELECT rolname AS owner FROM pg_roles WHERE oid = o.owner_oid) r ON true
WHERE owner = ANY(:roles) ORDER BY kind, name
"""

_VIEWS = """
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind = 'v'
   AND NOT coalesce(c.reloptions @> ARRAY['security_invoker=true'] OR c.reloptions @> ARRAY['security_invoker=on'],
                    false)
 ORDER BY 1
"""


async def app_role_findings(conn: AsyncConnection, schema: str, role: str) -> list[Finding]:
    """Findings: ``app_role_missing``, ``app_role_bypasses_rls`` (BYPASSRLS or superuser, per role),
    ``app_role_is_admin`` (a member of memctl_admin, whose policy sees every organisation),
    ``app_role_owns`` (an object of the schema owned by the role or a member), and
    ``view_not_security_invoker``."""
    roles = (await conn.execute(text(_ROLES), {"role": role, "admin": ADMIN_ROLE})).all()
    if not roles:
        return [Finding("app_role_missing", qualified("pg_roles", role), "present", None)]
    findings = [Finding("app_role_bypasses_rls", qualified("pg_roles", r.rolname), "NOSUPERUSER NOBYPASSRLS",
                        " ".join(x for x, on in (("SUPERUSER", r.rolsuper), ("BYPASSRLS", r.rolbypassrls)) if on))
                for r in roles if r.rolsuper or r.rolbypassrls]
    findings += [Finding("app_role_is_admin", qualified("pg_roles", r.rolname), f"not a member of {ADMIN_ROLE}",
                         f"member of {ADMIN_ROLE}") for r in roles if r.admin]
    names = [r.rolname for r in roles]
    for o in (await conn.execute(text(_OWNED), {"schema": schema, "roles": names})).all():
        obj = qualified("pg_namespace", o.name) if o.kind == "schema" else qualified(schema, o.name)
        findings.append(Finding("app_role_owns", obj, "owned by the migrating role", o.owner))
    for view in (await conn.execute(text(_VIEWS), {"schema": schema})).scalars():
        findings.append(Finding("view_not_security_invoker", qualified(schema, view), "security_invoker=true", None))
    return findings
