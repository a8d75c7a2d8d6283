"""Compare two :class:`Snapshot` objects into :class:`Finding` records (drift)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from memctl.schema.snapshot import SCHEMA_ITSELF, Snapshot


@dataclass(frozen=True)
class Finding:
    """One difference between what the models say and what the database holds.

    ``kind`` is the object category (``table``, ``foreign_key``, ``index`` ...) for a missing or
    extra object, or ``category.attribute`` (``index.with_params``, ``column.type``) for a changed
    one. ``expected``/``actual`` are None when absent.

    ``object`` has one shape for every kind, ``<namespace>.<name>[.<member>]``: the schema-qualified
    object (``agent_memory.memories``, ``agent_memory.memories.ix_memories_org_id_expires_at``,
    ``agent_memory.current_org_id()``); for a server-wide object, the system catalog that lists it
    (``pg_roles.memory_app``, ``pg_extension.vector``, ``pg_namespace.agent_memory``); for a
    revision, the table that records it (``public.alembic_version``,
    ``public.memctl_revision_checksums.0009``). Use :func:`qualified` to build it.
    """

    kind: str
    object: str
    expected: str | None
    actual: str | None


def qualified(namespace: str, name: str, member: str | None = None) -> str:
    """``namespace.name[.member]``: the one shape of :attr:`Finding.object`."""
    return f"{namespace}.{name}" + (f".{member}" if member else "")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _summary(category: str, attrs: dict[str, Any]) -> str:
    if "definition" in attrs:
        return attrs["definition"]
    if category == "index":
        keys = ", ".join(f"{k} {o}".strip() for k, o in zip(attrs["keys"], attrs["opclasses"], strict=True))
        out = f"{'UNIQUE ' if attrs['unique'] else ''}USING {attrs['method']} ({keys})"
        if attrs["with_params"]:
            out += " WITH (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs["with_params"].items())) + ")"
        return out + (f" WHERE {attrs['predicate']}" if attrs["predicate"] else "")
    if category == "column":
        return f"{attrs['type']}{' NOT NULL' if attrs['not_null'] else ''}"
    if category == "policy":
        roles = ",".join(attrs["roles"])
        return f"{attrs['command']} TO {roles} USING ({attrs['using']}) WITH CHECK ({attrs['with_check']})"
    if category == "function":
        return f"RETURNS {attrs['result']} {attrs['volatility']}"
    if category in ("privileges", "other_role_privileges"):
        return "; ".join(f"{grantee}: {privileges}" for grantee, privileges in sorted(attrs.items()))
    if category == "type":
        detail = attrs["base"] or ", ".join(attrs["labels"] or attrs["attributes"]) or attrs["subtype"] or ""
        return f"{attrs['kind']} {detail}".strip()
    if category == "sequence":
        return f"{attrs['type']} INCREMENT {attrs['increment']}{' CYCLE' if attrs['cycle'] else ''}"
    return "present"


# Categories whose missing/extra objects would only repeat a finding on their table (view, type ...).
_TABLE_SCOPED = ("column", "primary_key", "foreign_key", "unique", "check", "exclusion", "index",
                 "policy", "trigger", "rule", "privileges", "other_role_privileges")
# Categories whose objects own scoped ones (a table's columns, a type's or function's privileges).
_OWNING = ("table", "view", "materialized_view", "foreign_table", "sequence", "type", "function")


def _object(schema: str, name: str) -> str:
    return qualified("pg_namespace", schema) if name == SCHEMA_ITSELF else qualified(schema, name)


def diff(expected: Snapshot, actual: Snapshot) -> list[Finding]:
    """Findings that turn ``actual`` into ``expected``; empty when they agree.

    Objects of a missing or extra table (view, sequence ...) are reported once, as the relation.
    """
    findings: list[Finding] = []
    schema = expected.schema
    only_one_side = set()
    for category in _OWNING:
        only_one_side |= set(expected.get(category)) ^ set(actual.get(category))
    categories = sorted(set(expected.objects) | set(actual.objects))
    for category in categories:
        exp, act = expected.get(category), actual.get(category)
        for name in sorted(set(exp) | set(act)):
            if category in _TABLE_SCOPED and (name in only_one_side or name.split(".", 1)[0] in only_one_side):
                continue
            obj = _object(schema, name)
            if name not in act:
                findings.append(Finding(category, obj, _summary(category, exp[name]), None))
            elif name not in exp:
                findings.append(Finding(category, obj, None, _summary(category, act[name])))
            else:
                for attr in sorted(set(exp[name]) | set(act[name])):
                    e, a = exp[name].get(attr), act[name].get(attr)
                    if e != a:
                        findings.append(Finding(f"{category}.{attr}", obj,
                                                None if e is None else _show(e),
                                                None if a is None else _show(a)))
    return findings
