"""migrate lint: each project rule fires on a bad revision and not on its good counterpart."""

from __future__ import annotations

import shutil

import pytest

from memctl.migration.lint import EXCLUDED, lint, run_squawk
from memctl.migration.revisions import MIGRATIONS_DIR

BASE = "CREATE TABLE agent_memory.t (id bigint PRIMARY KEY, a text, n integer)"

# rule: (bad revision's statements, good revision's statements); ("concurrently", sql) runs in an
# autocommit block, as a revision building an index CONCURRENTLY must.
CASES = {
    "require-concurrent-index-creation": (
        ["CREATE INDEX ix_t_a ON agent_memory.t (a)"],
        [("concurrently", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_t_a ON agent_memory.t (a)")]),
    "constraint-missing-not-valid": (
        ["ALTER TABLE agent_memory.t ADD CONSTRAINT ck_t_a CHECK (a <> '')"],
        ["ALTER TABLE agent_memory.t ADD CONSTRAINT ck_t_a CHECK (a <> '') NOT VALID"]),
    "adding-not-nullable-field": (
        ["ALTER TABLE agent_memory.t ALTER COLUMN a SET NOT NULL"],
        ["ALTER TABLE agent_memory.t ADD CONSTRAINT ck_t_a_not_null CHECK (a IS NOT NULL) NOT VALID"]),
    "adding-required-field": (
        ["ALTER TABLE agent_memory.t ADD COLUMN b text NOT NULL"],
        ["ALTER TABLE agent_memory.t ADD COLUMN b text"]),
    "changing-column-type": (
        ["ALTER TABLE agent_memory.t ALTER COLUMN n TYPE bigint"],
        ["ALTER TABLE agent_memory.t ADD COLUMN n_big bigint"]),
    "adding-field-with-default": (
        ["ALTER TABLE agent_memory.t ADD COLUMN u uuid DEFAULT gen_random_uuid()"],
        ["ALTER TABLE agent_memory.t ADD COLUMN c text DEFAULT 'x'"]),
    "ban-drop-column": (
        ["ALTER TABLE agent_memory.t DROP COLUMN a"],
        ["COMMENT ON COLUMN agent_memory.t.a IS 'deprecated: no longer written'"]),
    "prefer-robust-stmts": (
        [("concurrently", "CREATE INDEX CONCURRENTLY ix_t_a ON agent_memory.t (a)")],
        [("concurrently", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_t_a ON agent_memory.t (a)")]),
}

REVISION = '''"""{doc}

Revision ID: {rev}
Revises: {down}
"""
from alembic import op

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
'''


def _body(statements) -> str:
    lines = []
    for s in statements:
        if isinstance(s, tuple):
            lines += ["    with op.get_context().autocommit_block():", f"        op.execute({s[1]!r})"]
        else:
            lines.append(f"    op.execute({s!r})")
    return "\n".join(lines)


def make_history(tmp_path, *revisions) -> object:
    """A scratch revision directory: memctl's env.py and the given revisions, chained in order."""
    (tmp_path / "versions").mkdir(parents=True)
    shutil.copy(MIGRATIONS_DIR / "env.py", tmp_path / "env.py")
    down = None
    for i, statements in enumerate(revisions, start=1):
        rev = f"r{i:03d}"
        (tmp_path / "versions" / f"{rev}.py").write_text(
            REVISION.format(doc=f"test revision {rev}", rev=rev, down=down, body=_body(statements)))
        down = rev
    return tmp_path


def _rules(result, revision: str) -> set[str]:
    return {f.rule for f in result.findings if f.revision == revision}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_bad_revision_only(tmp_path, rule):
    bad, good = CASES[rule]
    result = lint(make_history(tmp_path / "bad", [BASE], bad))
    assert rule in _rules(result, "r002"), result.findings
    result = lint(make_history(tmp_path / "good", [BASE], good))
    assert _rules(result, "r002") == set(), result.findings


def test_lock_rules_skip_a_table_created_in_the_same_revision(tmp_path):
    same = [BASE, "CREATE INDEX ix_t_a ON agent_memory.t (a)",
            "ALTER TABLE agent_memory.t ADD CONSTRAINT ck_t_a CHECK (a <> '')"]
    assert lint(make_history(tmp_path / "same", same)).clean
    later = lint(make_history(tmp_path / "later", [BASE], same[1:]))
    assert {"require-concurrent-index-creation", "constraint-missing-not-valid"} <= _rules(later, "r002")


def test_timeouts_are_required_and_emitted_by_memctl(tmp_path):
    bare = tmp_path / "bare.sql"
    bare.write_text("BEGIN;\nALTER TABLE agent_memory.t ADD COLUMN b text;\nCOMMIT;\n")
    rules = {f["rule_name"] for f in run_squawk([bare], EXCLUDED)}
    assert {"require-lock-timeout", "require-statement-timeout"} <= rules
    # memctl's --sql output starts with SET lock_timeout / statement_timeout, so the rules hold.
    assert lint(make_history(tmp_path / "h", [BASE], ["ALTER TABLE agent_memory.t ADD COLUMN b text"])).clean


def test_project_revisions_pass_with_documented_exceptions():
    result = lint()
    assert result.clean, result.findings
    assert result.revisions[0] == "0001" and len(result.revisions) >= 9
    assert set(result.excluded) == {"prefer-bigint-over-int", "prefer-bigint-over-smallint"}
    assert all(reason for reason in result.excluded.values())
