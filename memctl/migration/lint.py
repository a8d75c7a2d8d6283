"""``memctl migrate lint``: squawk over the SQL each revision emits in ``--sql`` mode.

squawk (the ``squawk-cli`` package, https://squawkhq.com) is a maintained PostgreSQL migration
linter; memctl renders every revision offline (``upgrade_sql(prev:rev)``, which starts with the
guard's ``SET lock_timeout`` / ``SET statement_timeout``), strips Alembic's own bookkeeping DDL
(the ``alembic_version`` table, Alembic's to lint, not ours) and lints each revision as one file.

The project's choice of rules (README "Migration lint"): every squawk default rule is on,
including require-concurrent-index-creation, constraint-missing-not-valid,
adding-not-nullable-field, adding-required-field, changing-column-type,
adding-field-with-default, ban-drop-column, prefer-robust-stmts (non-transactional statements),
require-lock-timeout and require-statement-timeout, except :data:`EXCLUDED`. squawk skips the
lock rules for a table created earlier in the same revision (checked by a test). A reviewed
exception for one statement is a ``-- squawk-ignore <rule>`` comment, with its reason, in the
revision's SQL.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from memctl.errors import LintFailed
from memctl.migration.offline import upgrade_sql
from memctl.migration.revisions import ordered

MIN_PG_VERSION = "15.0"  # schema.md "Minimum server": squawk judges locks for this version and later

EXCLUDED = {
    "prefer-bigint-over-int": "schema.md chose INTEGER for counters bounded by CHECKs (counts, orders)",
    "prefer-bigint-over-smallint": "schema.md chose SMALLINT for embedding model ids, dims and HNSW settings",
}

_VERSION_TABLE = re.compile(r"CREATE TABLE [\w.]*alembic_version \(.*?\n\);\n", re.DOTALL)


@dataclass(frozen=True)
class LintFinding:
    """One squawk warning: revision, rule, 1-based line in that revision's SQL, message and help."""

    revision: str
    rule: str
    line: int
    message: str
    help: str | None = None


@dataclass
class LintResult:
    """Findings over ``revisions`` (oldest first); ``excluded`` maps each disabled rule to its reason."""

    revisions: list[str]
    findings: list[LintFinding] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=lambda: dict(EXCLUDED))

    @property
    def clean(self) -> bool:
        """True when squawk found nothing."""
        return not self.findings


def squawk_path() -> str:
    """The squawk executable: beside this Python's (the squawk-cli wheel), else on PATH.

    Raises :class:`LintFailed` when it is not installed.
    """
    beside = Path(sys.executable).with_name("squawk")
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if not found:
        raise LintFailed("squawk not found: pip install squawk-cli (it is in memctl's dependencies)")
    return found


def revision_sql(script_location: Path | None = None) -> dict[str, str]:
    """revision -> the SQL its upgrade emits offline, without Alembic's version-table DDL."""
    revs = ordered(script_location)
    out: dict[str, str] = {}
    for prev, rev in zip([None, *revs[:-1]], revs, strict=True):
        out[rev] = _VERSION_TABLE.sub("", upgrade_sql(rev, start=prev, script_location=script_location))
    return out


def run_squawk(files: list[Path], excluded: dict[str, str]) -> list[dict]:
    """squawk's JSON findings for ``files`` (each a dict with file, line (0-based), rule_name, message).

    Raises :class:`LintFailed` when squawk cannot run or its output is not JSON.
    """
    cmd = [squawk_path(), "--reporter", "json", "--pg-version", MIN_PG_VERSION]
    if excluded:
        cmd += ["--exclude", ",".join(sorted(excluded))]
    proc = subprocess.run([*cmd, *map(str, files)], capture_output=True, text=True, check=False)
    try:
        return json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LintFailed(f"squawk failed (exit {proc.returncode}): {detail[0] if detail else 'no output'}") from None


def lint(script_location: Path | None = None, excluded: dict[str, str] | None = None) -> LintResult:
    """Lint every revision's offline SQL with squawk. Raises :class:`LintFailed` if squawk cannot run."""
    excluded = dict(EXCLUDED if excluded is None else excluded)
    sql = revision_sql(script_location)
    result = LintResult(list(sql), excluded=excluded)
    with tempfile.TemporaryDirectory(prefix="memctl-lint-") as tmp:
        files = []
        for rev, text in sql.items():
            path = Path(tmp) / f"{rev}.sql"
            path.write_text(text)
            files.append(path)
        for item in run_squawk(files, excluded):
            result.findings.append(LintFinding(
                revision=Path(item["file"]).stem, rule=item["rule_name"], line=int(item["line"]) + 1,
                message=item["message"], help=item.get("help")))
    result.findings.sort(key=lambda f: (result.revisions.index(f.revision), f.line, f.rule))
    return result
