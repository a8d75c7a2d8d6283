"""``memctl migrate check``: the revision history is sound, proven on a scratch database.

The same checks as pytest-alembic's built-in tests (test_single_head_revision, test_upgrade,
test_up_down_consistency, test_model_definitions_match_ddl and the experimental
downgrade-leaves-no-trace), but comparing the full verify-schema catalog snapshot rather than
autogenerate's view, plus the squawk lint of :mod:`memctl.migration.lint`.
"""

from __future__ import annotations

import ast
import inspect
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.db import embedded
from memctl.db.engine import make_engine
from memctl.db.scratch import scratch_database
from memctl.migration import runner as migrate
from memctl.migration.guard import Guard
from memctl.migration.lint import lint
from memctl.migration.revisions import ordered, script_directory
from memctl.progress import Progress, no_progress
from memctl.schema.diff import diff
from memctl.schema.verify import live_snapshot, verify_schema

# Revisions run on a scratch database that nobody else uses: no waiting, no retries needed.
_SCRATCH_GUARD = Guard(wait_s=0, retries=0)


@dataclass(frozen=True)
class CheckItem:
    """One check: its name, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass
class MigrateCheckResult:
    """Every check of ``memctl migrate check`` in order; ``clean`` when all passed."""

    revisions: list[str]
    items: list[CheckItem] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every check passed."""
        return all(i.ok for i in self.items)


def _has_real_downgrade(script) -> bool:
    """True when the revision module's downgrade() does more than ``pass`` or a docstring."""
    fn = getattr(script.module, "downgrade", None)
    if fn is None:
        return False
    body = ast.parse(inspect.getsource(fn).strip()).body[0].body
    meaningful = [s for s in body if not isinstance(s, ast.Pass)
                  and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return bool(meaningful)


def _describe(findings) -> str:
    shown = "; ".join(f"{f.kind} {f.object}" for f in findings[:5])
    return shown + (f" (+{len(findings) - 5} more)" if len(findings) > 5 else "")


async def _round_trip(engine: AsyncEngine, url: URL, revs: list[str], script_location: Path | None,
                      progress: Progress) -> list[CheckItem]:
    items: list[CheckItem] = []
    total, done = 3 * len(revs) + 1, 0
    snapshots = {None: await live_snapshot(engine)}
    for rev in revs:  # upgrade one revision at a time
        await migrate.upgrade(engine, rev, _SCRATCH_GUARD, script_location)
        await engine.dispose()  # new connections see the vector type (codecs)
        snapshots[rev] = await live_snapshot(engine)
        done += 1
        progress("migrate check", done, total)
    items.append(CheckItem("upgrade base -> head", True, f"{len(revs)} revisions applied one at a time"))
    left: list[str] = []
    for prev, rev in reversed(list(zip([None, *revs[:-1]], revs, strict=True))):
        await migrate.downgrade(engine, prev or "base", _SCRATCH_GUARD, script_location)
        found = diff(snapshots[prev], await live_snapshot(engine))
        if found:
            left.append(f"{rev}: {_describe(found)}")
        done += 1
        progress("migrate check", done, total)
    items.append(CheckItem("downgrade head -> base leaves no trace", not left,
                           "; ".join(left) or "each downgrade restores the previous revision's catalog exactly"))
    await migrate.upgrade(engine, "head", _SCRATCH_GUARD, script_location)
    await engine.dispose()
    again = diff(snapshots[revs[-1]], await live_snapshot(engine))
    items.append(CheckItem("upgrade again: same catalog", not again,
                           _describe(again) or "identical snapshot after base -> head -> base -> head"))
    done += len(revs)
    progress("migrate check", done, total)
    verified = await verify_schema(engine, url)
    items.append(CheckItem("models match head DDL (verify-schema)", verified.clean,
                           _describe(verified.findings) or
                           f"clean: {sum(verified.checked.values())} objects compared"))
    progress("migrate check", total, total)
    return items


async def migrate_check_private(script_location: Path | None = None,
                                progress: Progress = no_progress) -> MigrateCheckResult:
    """:func:`migrate_check` on a private embedded server of its own (initialised in a temporary
    directory, stopped and removed afterwards): it checks the revision files, not the operator's
    database, so CI needs no credentials and no role needs CREATEDB anywhere. Raises
    DatabaseUnavailable when the server cannot start, LintFailed when squawk cannot run."""
    with tempfile.TemporaryDirectory(prefix="memctl-check-") as tmp:
        home = Path(tmp)
        url = embedded.start(home, database="postgres")
        try:
            engine = make_engine(url, pool_size=2)
            try:
                return await migrate_check(engine, url, script_location, progress)
            finally:
                await engine.dispose()
        finally:
            embedded.stop(home)


async def migrate_check(admin: AsyncEngine, url: URL, script_location: Path | None = None,
                        progress: Progress = no_progress) -> MigrateCheckResult:
    """Run every check; ``admin``/``url`` name the server where the scratch database is made.

    Raises :class:`~memctl.errors.DatabaseUnavailable` naming CREATEDB when the role may not create
    the scratch database, and
    :class:`~memctl.errors.LintFailed` when squawk cannot run.
    """
    script = script_directory(script_location)
    revs = ordered(script_location)
    result = MigrateCheckResult(revs)
    heads = script.get_heads()
    result.items.append(CheckItem("single head", len(heads) == 1, ", ".join(heads)))
    missing = [s.revision for s in script.walk_revisions() if not _has_real_downgrade(s)]
    result.items.append(CheckItem("every revision has a downgrade", not missing,
                                  ", ".join(missing) or f"{len(revs)} of {len(revs)}"))
    async with scratch_database(admin, url, "memctl_check", "migrate check") as scratch_url:
        engine = make_engine(scratch_url, pool_size=2)
        try:
            result.items += await _round_trip(engine, scratch_url, revs, script_location, progress)
        finally:
            await engine.dispose()
    linted = lint(script_location)
    result.items.append(CheckItem("squawk lint", linted.clean,
                                  "; ".join(f"{f.revision}:{f.line} {f.rule}" for f in linted.findings)
                                  or f"{len(linted.revisions)} revisions, no findings"))
    return result
