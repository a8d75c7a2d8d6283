"""The :class:`Snapshot`: one schema's catalog as plain, comparable data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# category -> {object name -> {attribute -> value}}
Objects = dict[str, dict[str, Any]]

# The name under which the schema itself is recorded (its privileges): reported as pg_namespace.<schema>.
SCHEMA_ITSELF = ""
# The owner of an object, when it is the schema's owner (the reference is built by whoever runs verify).
SCHEMA_OWNER = "(schema owner)"
# Types made by CREATE TYPE / CREATE DOMAIN (not a table's row type, an array type, or the multirange a
# range type brings along); needs ``t`` = pg_type.
STANDALONE_TYPE_SQL = ("(t.typtype IN ('d', 'e', 'r') OR "
                       "(t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))")


def owner_sql(column: str) -> str:
    """SQL for the owner in ``column`` (an oid): SCHEMA_OWNER (bound as ``:schema_owner``) when it owns
    the schema too, else the role's name; needs ``n`` = pg_namespace in the query."""
    return f"CASE WHEN {column} = n.nspowner THEN :schema_owner ELSE pg_get_userbyid({column}) END"


@dataclass
class Snapshot:
    """The catalog of one schema: ``objects[category][name] = {attribute: value}``.

    Categories: table, column, primary_key, foreign_key, unique, check, exclusion, index, policy,
    trigger, function, rule (:mod:`~memctl.schema.catalog`); sequence, view, materialized_view,
    foreign_table, type (:mod:`~memctl.schema.relations`); privileges, other_role_privileges
    (:mod:`~memctl.schema.acl`). Names are ``table``, ``table.member`` or ``function(args)`` within the
    schema; :data:`SCHEMA_ITSELF` names the schema.
    """

    schema: str
    objects: dict[str, Objects] = field(default_factory=dict)

    def add(self, category: str, name: str, **attrs: Any) -> None:
        """Record one object."""
        self.objects.setdefault(category, {})[name] = attrs

    def get(self, category: str) -> Objects:
        """All objects of a category (empty if none)."""
        return self.objects.get(category, {})
