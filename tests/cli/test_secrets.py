"""No secret leaks: a canary password in the database URL appears nowhere.

The test server is switched to scram-sha-256 for a dedicated LOGIN role (pg_hba.conf, reloaded),
so the password is really checked. Every command of the CLI (listed from the Typer app itself: a
new command without an entry here fails the test) runs with the URL in MEMCTL_DATABASE_URL, and
each that takes --database-url with the right password and with a wrong one; stdout, stderr,
--json output, any traceback and the server's log must not contain the password, plain or
URL-encoded. On a DATABASE_URL server the pg_hba switch is skipped.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli import app
from memctl.db.engine import make_engine
from memctl.migration.revisions import head_revision
from tests.cli import command_paths

CANARY = "Can@ry:p/w%3F#s3cr3t&x"  # characters that URL encoding changes
ROLE = f"memctl_canary_{secrets.token_hex(4)}"

# Arguments per command path; commands without --database-url get the URL from MEMCTL_DATABASE_URL.
_EXPORT = Path(tempfile.mkdtemp()) / "export"
RUNS: dict[tuple[str, ...], list[str]] = {
    ("migrate",): ["--json"],
    ("migrate", "check"): ["--json"],
    ("migrate", "lint"): ["--json"],
    ("migrate", "heads"): ["--json"],
    ("migrate", "show"): ["head", "--json"],
    ("stamp",): [head_revision(), "--json"],
    ("downgrade",): [head_revision(), "--yes", "--json"],
    ("current",): ["--json"],
    ("history",): ["--json"],
    ("verify-schema",): ["--json"],
    ("seed",): ["--synthetic", "200", "--json"],
    ("bench-hnsw",): ["-q", "5", "--ef-search", "40", "--json"],
    ("check-constraints",): ["--json"],
    ("maintain",): ["--dry-run", "--json"],
    ("models", "list"): ["--by-org", "--json"],
    ("models", "add"): ["canary-model", "--dim", "384", "--json"],
    ("models", "backfill"): ["canary-model", "--embedder", "tests.lifecycle.synthetic:embed_384", "--json"],
    ("models", "index"): ["canary-model", "--json"],
    ("models", "set-default"): ["canary-model", "--org", "seed-org-01", "--json"],
    ("models", "retire"): ["canary-model", "--yes", "--json"],
    ("demo",): ["--synthetic", "300", "--yes", "--json"],
    ("export",): ["--org", "seed-org-01", "--output", str(_EXPORT), "--json"],
    ("import",): [str(_EXPORT), "--as-org", "canary-copy", "--dry-run", "--json"],
    ("erase",): ["--org", "seed-org-02", "--dry-run", "--json"],
    ("stats",): ["--json"],
    ("db", "start"): ["--json"],
    ("db", "status"): ["--json"],
    ("db", "url"): [],
    ("db", "stop"): ["--json"],
}


def _forms() -> set[str]:
    return {CANARY, quote(CANARY, safe=""), quote_plus(CANARY), quote(CANARY)}


@pytest.fixture(scope="module")
async def canary_url(db_url, server_home):
    """A URL for a superuser LOGIN role whose password is CANARY and is checked by the server."""
    admin = make_engine(db_url)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE ROLE \"{ROLE}\" LOGIN SUPERUSER PASSWORD '{CANARY}'"))
    hba = server_home / "pgdata" / "pg_hba.conf" if server_home is not None else None
    original = hba.read_text() if hba else None
    if hba:
        hba.write_text(f"local all {ROLE} scram-sha-256\n" + original)
        async with admin.begin() as conn:
            await conn.execute(text("SELECT pg_reload_conf()"))
    yield db_url.set(username=ROLE, password=CANARY)
    if hba:
        hba.write_text(original)
    async with admin.begin() as conn:
        await conn.execute(text("SELECT pg_reload_conf()"))
        await conn.execute(text(f'DROP OWNED BY "{ROLE}"'))
        await conn.execute(text(f'DROP ROLE "{ROLE}"'))
    await admin.dispose()


def _check(out, label: str) -> None:
    haystack = out.stdout + out.stderr
    if out.exception is not None and not isinstance(out.exception, SystemExit):
        import traceback

        haystack += "".join(traceback.format_exception(out.exception))
        pytest.fail(f"{label}: raised {out.exception!r}")
    leaked = [f for f in _forms() if f in haystack]
    assert not leaked, f"{label}: password leaked as {leaked}: {haystack[:500]}"
    assert "Traceback" not in haystack, label


def test_canary_password_never_printed_by_any_command(canary_url, server_log, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMCTL_HOME", str(tmp_path / "home"))  # db start/stop use their own embedded server
    group = typer.main.get_command(app)
    order = list(RUNS)  # migrate first
    paths = sorted(command_paths(group), key=lambda pc: order.index(pc[0]) if pc[0] in RUNS else -1)
    aliases = {("upgrade", *p[1:]) for p in RUNS if p[0] == "migrate"}  # upgrade is migrate under Alembic's name
    paths = [(p, c) for p, c in paths if p not in aliases]
    missing = [p for p, _ in paths if p not in RUNS]
    assert not missing, f"add these commands to the canary test: {missing}"
    log_offset = server_log.stat().st_size if server_log else 0
    good = canary_url.render_as_string(hide_password=False)
    bad = canary_url.set(password=CANARY + "-wrong").render_as_string(hide_password=False)
    runner = CliRunner()
    auth_checked = False
    for path, cmd in paths:
        takes_url = any(getattr(p, "name", "") == "database_url" for p in cmd.params)
        # A command without --database-url (db ..., migrate lint) never reads the URL: it runs once.
        for label, url in (("right password", good), ("wrong password", bad))[:2 if takes_url else 1]:
            args = [*path, *RUNS[path]] + (["--database-url", url] if takes_url else [])
            out = runner.invoke(app, args, env={"MEMCTL_DATABASE_URL": url})
            _check(out, f"{' '.join(path)} ({label})")
            if takes_url and label == "right password":
                assert out.exit_code in (0, 1), f"{' '.join(path)}: {out.stderr}"
            if takes_url and label == "wrong password":
                assert out.exit_code == 2 and out.stderr.count("\n") == 1, f"{' '.join(path)}: {out.stderr}"
                auth_checked |= "password authentication failed" in out.stderr
    if server_log is not None:
        assert auth_checked, "the server never checked the password"
        log = server_log.read_text(errors="replace")[log_offset:]
        assert not [f for f in _forms() if f in log]


def test_unreachable_server_and_url_forms(tmp_path):
    runner = CliRunner()
    for url in (f"postgresql://alice:{quote(CANARY, safe='')}@127.0.0.1:1/none",
                f"postgres://alice:{quote_plus(CANARY)}@127.0.0.1:1/none"):
        out = runner.invoke(app, ["verify-schema", "--json", "--database-url", url])
        assert out.exit_code == 2 and out.stderr.count("\n") == 1
        assert json.loads(out.stdout)["run"]["exit_code"] == 2  # under --json a failure is a document too
        _check(out, "unreachable")
