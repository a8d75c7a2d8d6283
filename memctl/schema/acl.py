"""Privileges (ACLs) of everything in one schema, for :class:`~memctl.schema.snapshot.Snapshot`.

Every table, view, sequence, column with column-level grants, function, standalone type and the
schema itself is read with ``aclexplode`` (an object whose ACL was never changed gets
``acldefault``, as the server applies it: PostgreSQL docs, "Privileges", table 5.2). The grantor is
ignored and a grantee's privileges are merged into one sorted text (``SELECT, UPDATE``; ``*`` marks
WITH GRANT OPTION). The object's owner is named ``(owner)``: who the owner is, is the ``owner``
attribute of the object itself.

Grants to memctl's own roles (``memory_app``, ``memctl_admin``), to PUBLIC and to the owner are the
``privileges`` category: they are compared with the reference and every difference is drift (issue
12: ``GRANT TRUNCATE ... TO memory_app`` lets one tenant erase another's rows, since TRUNCATE
ignores RLS). Grants to any other role are the ``other_role_privileges`` category, so an operator
can see, and allow, grants to their own roles without hiding one to memory_app.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from memctl.models.ddl import ADMIN_ROLE, APP_ROLE
from memctl.schema.snapshot import SCHEMA_ITSELF, STANDALONE_TYPE_SQL, Snapshot

OWNER = "(owner)"
PUBLIC = "PUBLIC"
MEMCTL_GRANTEES = (APP_ROLE, ADMIN_ROLE, PUBLIC, OWNER)

_ACLS = f"""
WITH nsp AS (SELECT oid, nspowner, nspacl FROM pg_namespace WHERE nspname = :schema),
objs(name, owner, acl) AS (
    SELECT :itself, nspowner, coalesce(nspacl, acldefault('n'::"char", nspowner)) FROM nsp
    UNION ALL
    SELECT c.relname::text, c.relowner,
           coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))
      FROM pg_class c JOIN nsp ON nsp.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
    UNION ALL
    SELECT c.relname || '.' || a.attname, c.relowner, a.attacl
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN nsp ON nsp.oid = c.relnamespace
     WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proowner,
           coalesce(p.proacl, acldefault('f'::"char", p.proowner))
      FROM pg_proc p JOIN nsp ON nsp.oid = p.pronamespace
    UNION ALL
    SELECT t.typname::text, t.typowner, coalesce(t.typacl, acldefault('T'::"char", t.typowner))
      FROM pg_type t JOIN nsp ON nsp.oid = t.typnamespace
     WHERE {STANDALONE_TYPE_SQL}
)
SELECT o.name,
       CASE WHEN e.grantee = 0 THEN 'PUBLIC' WHEN e.grantee = o.owner THEN :owner
            ELSE pg_get_userbyid(e.grantee) END AS grantee,
       string_agg(DISTINCT e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END, ', '
                  ORDER BY e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END) AS privileges
  FROM objs o CROSS JOIN LATERAL aclexplode(o.acl) e
 GROUP BY 1, 2
"""


async def read_privileges(conn: AsyncConnection, snap: Snapshot) -> None:
    """Add the ``privileges`` and ``other_role_privileges`` of ``snap.schema`` to ``snap``:
    ``{object name: {grantee: 'PRIV, PRIV*'}}``."""
    params = {"schema": snap.schema, "itself": SCHEMA_ITSELF, "owner": OWNER}
    rows = (await conn.execute(text(_ACLS), params)).all()
    grants: dict[str, dict[str, dict[str, str]]] = {"privileges": {}, "other_role_privileges": {}}
    for name, grantee, privileges in rows:
        category = "privileges" if grantee in MEMCTL_GRANTEES else "other_role_privileges"
        grants[category].setdefault(name, {})[grantee] = privileges
    for category, objects in grants.items():
        for name, by_grantee in objects.items():
            snap.add(category, name, **by_grantee)
