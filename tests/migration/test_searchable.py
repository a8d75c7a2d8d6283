"""Revision 0012: memory_embeddings.searchable, backfilled and kept by triggers, as a plain owner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memctl.cli.app import app
from memctl.migration.revisions import head_revision
from tests.conftest import url_arg
from tests.db.test_privileges import admin_step, plain_owner, run_sql  # noqa: F401, F811 (a fixture)

runner = CliRunner()
S = "agent_memory"


def _flags(superuser) -> dict:
    rows = run_sql(superuser, scalar=f"SELECT json_object_agg(m.content, e.searchable) FROM {S}.memory_embeddings e "
                                     f"JOIN {S}.memories m ON m.org_id = e.org_id AND m.id = e.memory_id")
    return json.loads(rows) if isinstance(rows, str) else rows


def test_backfill_as_a_plain_owner_under_forced_rls_then_triggers_keep_it(plain_owner):  # noqa: F811
    owner_url, superuser, role = plain_owner
    run_sql(superuser, *admin_step(role)[:-1])  # not a member of memctl_admin: RLS hides every row from it
    u = url_arg(owner_url)
    out = runner.invoke(app, ["migrate", "--to", "0011", "--json", "--database-url", u])
    assert out.exit_code == 0, out.stderr
    vec = "array_fill(0.1, ARRAY[384])::vector"
    run_sql(superuser,
            f"INSERT INTO {S}.organizations (slug, name) VALUES ('sa', 'sa')",
            f"INSERT INTO {S}.agents (org_id, name) SELECT id, 'a' FROM {S}.organizations",
            f"INSERT INTO {S}.memories (org_id, agent_id, category, content, status, deleted_at) "
            f"SELECT org_id, id, 'factual', c, s, d FROM {S}.agents, (VALUES ('active', 'active', NULL::timestamptz), "
            f"('archived', 'archived', NULL), ('deleted', 'active', now())) AS v(c, s, d)",
            f"INSERT INTO {S}.memory_embeddings (org_id, memory_id, model_id, dim, embedding) "
            f"SELECT org_id, id, 1, 384, {vec} FROM {S}.memories")
    out = runner.invoke(app, ["migrate", "--json", "--database-url", u])
    assert out.exit_code == 0 and json.loads(out.stdout)["after"] == head_revision(), out.stderr
    assert _flags(superuser) == {"active": True, "archived": False, "deleted": False}
    assert run_sql(superuser, scalar=f"SELECT relforcerowsecurity FROM pg_class WHERE oid = '{S}.memories'::regclass")

    run_sql(superuser,  # the triggers: a status change, an undelete, a new embedding of an archived memory
            f"UPDATE {S}.memories SET status = 'archived' WHERE content = 'active'",
            f"UPDATE {S}.memories SET deleted_at = NULL WHERE content = 'deleted'",
            f"INSERT INTO {S}.embedding_models (name, dim) VALUES ('test/other-384', 384)",
            f"INSERT INTO {S}.memory_embeddings (org_id, memory_id, model_id, dim, embedding) "
            f"SELECT org_id, id, 2, 384, {vec} FROM {S}.memories WHERE content = 'archived'")
    flags = run_sql(superuser, scalar=f"SELECT json_agg(json_build_array(m.content, e.model_id, e.searchable) "
                                      f"ORDER BY m.content, e.model_id) FROM {S}.memory_embeddings e "
                                      f"JOIN {S}.memories m ON m.org_id = e.org_id AND m.id = e.memory_id")
    flags = json.loads(flags) if isinstance(flags, str) else flags
    assert flags == [["active", 1, False], ["archived", 1, False], ["archived", 2, False], ["deleted", 1, True]]
