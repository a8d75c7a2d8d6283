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
from memctl.models.ddl import ADMIN_POLICY, ADMIN_ROLE, APP_ROLE

_ROLE = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, current_database() AS database,
       coalesce(pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = :admin), 'USAGE'), false) AS admin,
       (SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
         WHERE p.polname = :policy AND c.relnamespace = to_regnamespace(:schema)) AS admin_policies,
       (SELECT count(*) FROM pg_class c WHERE c.relnamespace = to_regnamespace(:schema) AND c.relrowsecurity)
           AS rls_tables,
       pg_has_role(r.oid, coalesce((SELECT nspowner FROM pg_namespace WHERE nspname = :schema), r.oid), 'USAGE')
           AS acts_as_owner,
       coalesce(has_table_privilege(to_regclass('public.alembic_version'), 'SELECT'), true) AS reads_version,
       has_database_privilege(current_database(), 'CREATE') AS can_create,
       EXISTS (SELECT FROM pg_extension WHERE extname = 'vector') AS has_vector,
       EXISTS (SELECT FROM pg_namespace WHERE nspname = :schema) AS has_schema,
       ARRAY(SELECT name FROM unnest(CAST(:roles AS text[])) AS name
              WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)) AS missing_roles
  FROM pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class RoleFacts:
    """The connected role and what it may do in the current database. ``admin_member``: it has the
    privileges of memctl_admin (USAGE: a membership WITH INHERIT FALSE gives none) and every RLS
    table has memctl_admin's policy (revision 0010 applied); ``admin_granted``: the first alone."""

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
    acts_as_owner: bool = True
    reads_version: bool = True
    admin_granted: bool = False

    @property
    def sees_every_row(self) -> bool:
        """True when row-level security cannot hide rows from this role."""
        return self.superuser or self.bypassrls or self.admin_member


async def role_facts(conn: AsyncConnection) -> RoleFacts:
    """The connected role's attributes, memberships and privileges (catalog reads only)."""
    r = (await conn.execute(text(_ROLE), {"admin": ADMIN_ROLE, "schema": SCHEMA, "policy": ADMIN_POLICY,
                                          "roles": [APP_ROLE, ADMIN_ROLE]})).mappings().one()
    return RoleFacts(r["rolname"], r["database"], r["rolsuper"], r["rolbypassrls"], r["rolcreaterole"],
                     r["admin"] and r["admin_policies"] >= r["rls_tables"], r["can_create"], r["has_vector"],
                     r["has_schema"], list(r["missing_roles"]), r["acts_as_owner"], r["reads_version"],
                     r["admin"])


async def require_all_rows(engine: AsyncEngine, command: str) -> RoleFacts:
    """Raise PrivilegeMissing unless the role sees every row of the schema (superuser, BYPASSRLS
    or a member of memctl_admin): ``command`` would otherwise work on a filtered view."""
    async with engine.connect() as conn:
        facts = await role_facts(conn)
    if not facts.sees_every_row and facts.admin_granted:
        raise PrivilegeMissing(
            f"{command} needs every row, but the tables of {facts.database} lack {ADMIN_ROLE}'s policy "
            f"(the database is below revision 0010): run memctl migrate")
    if not facts.sees_every_row:
        raise PrivilegeMissing(
            f"{command} needs every row, but row-level security hides rows from role {facts.name} (not a "
            f"superuser, no BYPASSRLS, not a member of {ADMIN_ROLE} with its privileges); an administrator "
            f'runs: GRANT {ADMIN_ROLE} TO "{facts.name}"')
    return facts


async def require_catalog_reads(engine: AsyncEngine, command: str) -> RoleFacts:
    """Raise PrivilegeMissing when the role may not read the revision table (every memctl command
    starts there): memctl runs as the owner or a member of memctl_admin, never as the application."""
    async with engine.connect() as conn:
        facts = await role_facts(conn)
    if not facts.reads_version:
        raise PrivilegeMissing(
            f"{command} cannot read public.alembic_version as role {facts.name}: memctl runs as the schema's owner "
            f"or a member of {ADMIN_ROLE} (never as the application's role); an administrator runs: "
            f'GRANT {ADMIN_ROLE} TO "{facts.name}"')
    return facts


def require_create(facts: RoleFacts, what: str) -> None:
    """Raise PrivilegeMissing unless the role may create schemas in the database (``what`` needs one)."""
    if not (facts.can_create or facts.superuser):
        raise PrivilegeMissing(f"{what}: role {facts.name} needs CREATE on database {facts.database}; an "
                               f'administrator runs: GRANT CREATE ON DATABASE "{facts.database}" TO "{facts.name}"')


def migration_needs(facts: RoleFacts) -> list[str]:
    """The SQL an administrator must run once before ``facts``'s role can migrate (empty: nothing)."""
    needs = []
    if not facts.has_vector and not facts.superuser:
        needs.append("CREATE EXTENSION vector;")
    if facts.missing_roles and not (facts.superuser or facts.createrole):
        needs += [f"CREATE ROLE {role} NOLOGIN;" for role in facts.missing_roles]
    if not facts.has_schema and not facts.can_create and not facts.superuser:
        needs.append(f'GRANT CREATE ON DATABASE "{facts.database}" TO "{facts.name}";')
    if needs and not facts.sees_every_row:
        needs.append(f'GRANT {ADMIN_ROLE} TO "{facts.name}";')
    return needs


async def require_migration_privileges(engine: AsyncEngine, command: str = "memctl migrate") -> RoleFacts:
    """Raise PrivilegeMissing before any revision starts: when the role is not (a member of) the
    owner of the schema, or listing every statement an administrator must run first when it could
    not create the extension, the roles or the schema. The statements are safe to paste into psql."""
    async with engine.connect() as conn:
        facts = await role_facts(conn)
        owner = (await conn.execute(text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s"),
                                    {"s": SCHEMA})).scalar()
    if facts.has_schema and not (facts.acts_as_owner or facts.superuser):
        raise PrivilegeMissing(f"{command} changes the schema: it runs as {SCHEMA}'s owner ({owner}), and role "
                               f"{facts.name} is neither it nor a member of it")
    needs = migration_needs(facts)
    if needs:
        raise PrivilegeMissing(f"role {facts.name} cannot migrate database {facts.database} on its own; as a "
                               f"superuser in that database an administrator runs once: {' '.join(needs)}")
    return facts
