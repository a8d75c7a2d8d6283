"""The CLI through Typer's CliRunner: exit codes, JSON on stdout, one clean line on stderr."""

import json

import pytest
import typer
from typer.testing import CliRunner

from memctl.cli import app
from memctl.migration.revisions import head_revision
from tests.cli import command_paths, one_error_line, only_database_line
from tests.conftest import url_arg

runner = CliRunner()
CANARY = "Canary-Pw-7f3a"

# Every command path from the app (groups included), so a new command cannot go without --help.
COMMANDS = [[], *sorted({path for path, _ in command_paths(typer.main.get_group(app))}
                        | {path[:1] for path, _ in command_paths(typer.main.get_group(app))})]


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "memctl")
def test_help_everywhere(cmd):
    result = invoke(*cmd, "--help")
    assert result.exit_code == 0 and result.stdout.startswith(f"Usage: memctl {' '.join(cmd)}".rstrip())


def test_help_lists_every_command_including_maintain():
    assert {"maintain", "demo", "migrate check", "db start"} <= {" ".join(c) for c in COMMANDS}


def test_migrate_sql_needs_no_database():
    result = invoke("migrate", "--sql", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 0
    assert result.stdout.count("CREATE TABLE agent_memory.") == 27 and result.stderr == ""


def test_connection_failure_is_one_line_exit_2_without_password():
    result = invoke("current", "--database-url", f"postgresql://alice:{CANARY}@127.0.0.1:1/none")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memctl: error: cannot connect to")
    assert CANARY not in result.stderr + result.stdout


def test_bad_url_scheme_is_exit_2():
    result = invoke("verify-schema", "--database-url", "mysql://u:p@h/db")
    assert result.exit_code == 2 and "unsupported database URL scheme" in result.stderr


def test_seed_needs_a_source():
    result = invoke("seed", "--database-url", "postgresql://u@h/db")
    assert result.exit_code == 2 and "--dataset PATH.npz or --synthetic N" in result.stderr


def test_bad_ef_search_is_exit_2():
    result = invoke("bench-hnsw", "--ef-search", "10,abc", "--database-url", "postgresql://u@h/db")
    assert result.exit_code == 2 and "--ef-search" in result.stderr


def test_main_job_through_the_cli(db_url, dataset_path):
    url = db_url.set(password=CANARY)  # the test server trusts local connections: the password is ignored
    u = url_arg(url)
    out = invoke("migrate", "--json", "--database-url", u)
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["after"] == head_revision() and only_database_line(out.stderr)

    out = invoke("current", "--json", "--database-url", u)
    assert out.exit_code == 0 and json.loads(out.stdout)["revisions"][0]["is_current"]

    out = invoke("verify-schema", "--json", "--database-url", u)
    assert out.exit_code == 0, out.stdout
    doc = json.loads(out.stdout)
    assert doc["clean"] is True and doc["findings"] == [] and only_database_line(out.stderr)
    assert CANARY not in out.stdout and "***" in doc["database"]

    out = invoke("seed", "--dataset", dataset_path, "--limit", 1500, "--orgs", 5, "--skew", "--json",
                 "--database-url", u)
    assert out.exit_code == 0, out.stderr
    seeded = json.loads(out.stdout)
    assert seeded["memories_inserted"] == 1500 and seeded["rows_per_second"] > 0
    # What a downgrade would destroy, before it does: in --dry-run, in the question, in the result.
    out = invoke("downgrade", "0002", "--dry-run", "--json", "--database-url", u)
    plan = json.loads(out.stdout)
    assert out.exit_code == 0 and plan["rows_lost"]["memories"] == plan["rows_lost"]["memory_embeddings"] == 1500
    assert plan["after"] == head_revision() and plan["revisions"][-1] == "0003"
    out = invoke("downgrade", "0002", "--database-url", u, input="n\n")
    assert out.exit_code == 1 and "memories (1,500 rows)" in out.stderr
    assert json.loads(invoke("current", "--json", "--database-url", u).stdout)["revisions"][0]["is_current"]

    out = invoke("bench-hnsw", "--queries", dataset_path, "-q", 50, "--ef-search", "20,40", "--json",
                 "--database-url", u)
    assert out.exit_code == 0, out.stdout + out.stderr
    bench = json.loads(out.stdout)
    assert bench["valid"] and [p["ef_search"] for p in bench["points"]] == [20, 40]
    assert bench["points"][1]["recall_mean"] >= 0.9

    out = invoke("bench-hnsw", "--org", "no-such-org", "--database-url", u)
    assert out.exit_code == 2 and "no organisation with slug 'no-such-org'" in out.stderr

    out = invoke("check-constraints", "--json", "--database-url", u)
    assert out.exit_code == 0 and json.loads(out.stdout)["violations"] == []

    out = invoke("history", "--database-url", u)
    assert out.exit_code == 0 and head_revision() in out.stdout and "head" in out.stdout

    for cmd in (["verify-schema"], ["check-constraints"], ["bench-hnsw", "-q", "5", "--ef-search", "40"]):
        out = invoke(*cmd, "--database-url", u)
        assert CANARY not in out.stdout + out.stderr

    # Drift: exit 1 and the findings in JSON.
    out = invoke("downgrade", "0007", "--database-url", u, input="n\n")
    assert out.exit_code == 1 and "aborted" in out.stderr
    out = invoke("downgrade", "0007", "--yes", "--json", "--database-url", u)
    undone = ["0018", "0017", "0016", "0015", "0014", "0013", "0012", "0011", "0010", "0009", "0008"]
    assert out.exit_code == 0 and json.loads(out.stdout)["revisions"] == undone
    out = invoke("verify-schema", "--json", "--database-url", u)
    assert out.exit_code == 1, out.stderr
    kinds = {f["kind"] for f in json.loads(out.stdout)["findings"]}
    assert {"revision", "policy", "table.rls_enabled"} <= kinds

    out = invoke("downgrade", "base", "--yes", "--database-url", u)
    assert out.exit_code == 0
    out = invoke("verify-schema", "--json", "--database-url", u)
    assert out.exit_code == 1 and {"kind": "schema", "object": "pg_namespace.agent_memory", "expected": "present",
                                   "actual": None} in json.loads(out.stdout)["findings"]


def test_demo_end_to_end(db_url):
    # On a database named by URL (not the embedded one) demo asks first; no answer means no.
    out = invoke("demo", "--synthetic", 1500, "--database-url", url_arg(db_url))
    prompt, error = out.stderr.splitlines()
    assert out.exit_code == 1 and out.stdout == "" and prompt.endswith("Go on? [y/N]: ")
    assert error.startswith("memctl: error: aborted: nothing written")
    assert "not migrated" in invoke("current", "--database-url", url_arg(db_url)).stderr
    out = invoke("demo", "--synthetic", 1500, "-q", 50, "--yes", "--json", "--database-url", url_arg(db_url))
    assert out.exit_code == 0, out.stdout[-2000:] + out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"migrate", "seed", "verify-schema", "check-constraints", "bench-hnsw", "run"}
    assert doc["run"]["command"] == "demo" and doc["run"]["exit_code"] == 0 and "/t_test_cli?" in doc["run"]["database"]
    assert doc["verify-schema"]["clean"] and doc["check-constraints"]["clean"] and doc["bench-hnsw"]["valid"]
    assert doc["seed"]["rows"] == 1500


def test_db_start_status_url_stop(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMCTL_HOME", str(tmp_path / "home"))
    out = invoke("db", "status", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["initialised"] is False
    assert json.loads(out.stdout)["run"]["command"] == "db status"  # a group's record names the subcommand
    out = invoke("db", "start", "--json")
    assert out.exit_code == 0, out.stderr
    started = json.loads(out.stdout)
    assert started["running"] is True and started["pid"] > 0 and "/memctl?" in started["url"]
    out = invoke("db", "url")
    assert out.exit_code == 0 and out.stdout.strip() == started["url"]
    out = invoke("db", "stop", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["running"] is False
    out = invoke("db", "stop")
    assert out.exit_code == 0 and "was not running" in out.stderr


def test_migrate_check_lint_and_citus_target(db_url):
    u = url_arg(db_url)
    out = invoke("migrate", "--database-url", u, "check", "--json")  # given before the subcommand: it applies
    assert out.exit_code == 0, out.stdout + out.stderr
    checks = json.loads(out.stdout)
    assert f"/{db_url.database}?" in checks["run"]["database"]  # that server, not a private one
    assert checks["clean"] and only_database_line(out.stderr)
    assert [i["name"] for i in checks["items"]] == [
        "single head", "every revision has a downgrade", "upgrade base -> head",
        "downgrade head -> base leaves no trace", "upgrade again: same catalog",
        "models match head DDL (verify-schema)", "squawk lint"]

    out = invoke("migrate", "lint", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["findings"] == [] and out.stderr == ""

    assert invoke("migrate", "--json", "--database-url", u).exit_code == 0
    out = invoke("verify-schema", "--target", "citus", "--json", "--database-url", u)
    assert out.exit_code == 0 and json.loads(out.stdout)["target"] == "citus" and only_database_line(out.stderr)
    out = invoke("verify-schema", "--target", "oracle", "--database-url", u)
    assert out.exit_code == 2 and "unknown target 'oracle'" in one_error_line(out.stderr)
    out = invoke("verify-schema", "--allow-grants-to", "postgres,no_such_role", "--database-url", u)
    assert out.exit_code == 2 and "no role named 'no_such_role'" in one_error_line(out.stderr)


def test_options_before_a_subcommand_apply_or_are_refused(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMCTL_HOME", str(tmp_path / "no-embedded"))  # an ignored URL would start this server
    u = url_arg(db_url)
    out = invoke("migrate", "--json", "heads")
    assert out.exit_code == 0 and json.loads(out.stdout)["items"] == [head_revision()]
    for misplaced in (["--to", "0005"], ["--sql"], ["--wait", "1"]):
        out = invoke("migrate", *misplaced, "check", "--database-url", u)
        assert out.exit_code == 2 and out.stdout == "", misplaced
        assert f"{misplaced[0]} apply to memctl migrate itself, not to migrate check" in one_error_line(out.stderr)
    out = invoke("migrate", "--database-url", u, "lint")  # lint reads no database: the URL would be ignored
    assert out.exit_code == 2 and "--database-url apply to memctl migrate itself" in one_error_line(out.stderr)
    assert not (tmp_path / "no-embedded").exists()
