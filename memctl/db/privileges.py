"""What the connected role may do, checked before a command writes anything.

memctl's reads and writes must never be filtered by row-level security without saying so: RLS
is FORCEd on every tenant table, so a table owner sees no row unless it is a superuser, has
BYPASSRLS, or is a member of ``memctl_admin`` (whose permissive policy, revision 0010, lets it
through). Managed PostgreSQL rarely grants the first two; the third is one GRANT. Each check
raises :class:`~memctl.errors.PrivilegeMissing` (exit 2) naming the privilege and the SQL an
administrator runs (README, "Least privilege").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from memctl.errors import PrivilegeMissing
from memctl.models import SCHEMA
from memctl.models.ddl import ADMIN_ROLE, APP_ROLE

_ROLE = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, current_database() AS database,
       coalesce(pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = :admin), 'MEMBER'), false) AS admin,
       has_database_privilege(current_database(), 'CREATE') AS can_create,
       EXISTS (SELECT FROM pg_extension WHERE extname = 'vector') AS has_vector,
       EXISTS (SELECT FROM pg_namespace WHERE nspname = :schema) AS has_schema,
       ARRAY(SELECT name FROM unnest(CAST(:roles AS text[])) AS name
              WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)) AS missing_roles
  FROM pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class RoleFacts:
    """The connected role and what it may do in the current database."""

    name: str
    database: str
    superuser: bool
    bypassrls: bool
    createrole: bool
    admin_member: bool
    can_create: bool
    has_vector: bool
    has_schema: bool
    missing_roles: list[str]

    @property
    def sees_every_row(self) -> bool:
        """True when row-level security cannot hide rows from this role."""
        return self.superuser or self.bypassrls or self.admin_member


async def role_facts(conn: AsyncConnection) -> RoleFacts:
    """The connected role's attributes, memberships and privileges (catalog reads only)."""
    r = (await conn.execute(text(_ROLE), {"admin": ADMIN_ROLE, "schema": SCHEMA,
                                          "roles": [APP_ROLE, ADMIN_ROLE]})).mappings().one()
    return RoleFacts(r["rolname"], r["database"], r["rolsuper"], r["rolbypassrls"], r["rolcreaterole"], r["admin"],
                     r["can_create"], r["has_vector"], r["has_schema"], list(r["missing_roles"]))


async def require_all_rows(engine: AsyncEngine, command: str) -> RoleFacts:
    """Raise PrivilegeMissing unless the role sees every row of the schema (superuser, BYPASSRLS
    or a member of memctl_admin): ``command`` would otherwise work on a filtered view."""
    async with engine.connect() as conn:
        facts = await role_facts(conn)
    if not facts.sees_every_row:
        raise PrivilegeMissing(
            f"{command} needs every row, but row-level security hides rows from role {facts.name} (not a "
            f"superuser, no BYPASSRLS, not a member of {ADMIN_ROLE}); an administrator runs: "
            f'GRANT {ADMIN_ROLE} TO "{facts.name}"')
    return facts


def migration_needs(facts: RoleFacts) -> list[str]:
    """The SQL an administrator must run once before ``facts``'s role can migrate (empty: nothing)."""
    needs = []
    if not facts.has_vector and not facts.superuser:
        needs.append(f'CREATE EXTENSION vector; -- in database "{facts.database}", as a superuser')
    if facts.missing_roles and not (facts.superuser or facts.createrole):
        needs += [f"CREATE ROLE {role} NOLOGIN;" for role in facts.missing_roles]
    if not facts.has_schema and not facts.can_create and not facts.superuser:
        needs.append(f'GRANT CREATE ON DATABASE "{facts.database}" TO "{facts.name}";')
    if needs and not facts.sees_every_row:
        needs.append(f'GRANT {ADMIN_ROLE} TO "{facts.name}";')
    return needs


async def require_migration_privileges(engine: AsyncEngine) -> RoleFacts:
    """Raise PrivilegeMissing listing every statement an administrator must run first when the role
    could not create the extension, the roles or the schema (before any revision starts)."""
    async with engine.connect() as conn:
        facts = await role_facts(conn)
    needs = migration_needs(facts)
    if needs:
        raise PrivilegeMissing(f"role {facts.name} cannot migrate database {facts.database} on its own; an "
                               f"administrator runs once: {' '.join(needs)}")
    return facts
