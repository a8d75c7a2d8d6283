"""bench-hnsw through the CLI: --output / --baseline (exit 1 with the regression table), --csv, --plot."""

import csv
import io
import json

from typer.testing import CliRunner

from memctl.cli import app
from tests.cli import only_database_line
from tests.conftest import url_arg

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_output_baseline_csv_and_plot(db_url, dataset_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMCTL_HOME", str(tmp_path / "home"))  # truth cache goes there
    u = url_arg(db_url)
    assert invoke("migrate", "--database-url", u).exit_code == 0
    assert invoke("seed", "--dataset", dataset_path, "--limit", "1000", "--skew", "--orgs", "5",
                  "--database-url", u).exit_code == 0
    common = ["bench-hnsw", "--queries", dataset_path, "-q", "30", "--ef-search", "20,40", "--database-url", u]

    saved = tmp_path / "base.json"
    plot = tmp_path / "curve.png"
    out = invoke(*common, "--output", saved, "--plot", plot, "--json")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert only_database_line(out.stderr)
    run = json.loads(out.stdout)
    assert json.loads(saved.read_text())["points"] == run["points"] and run["schema_version"] == 5
    assert run["fingerprint"]["index"] == "ix_memory_embeddings_hnsw_1" and run["valid"] and run["ok"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    out = invoke(*common, "--csv")
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert out.exit_code == 0 and rows[0][:2] == ["ef_search", "recall mean"]
    assert [r[0] for r in rows[1:]] == ["20", "40"]

    # A baseline with better recall at ef_search 40: exit 1 and the regression listed.
    base = json.loads(saved.read_text())
    base["points"][1]["recall_mean"] = min(1.0, base["points"][1]["recall_mean"] + 0.05) + 0.01
    better = tmp_path / "better.json"
    better.write_text(json.dumps(base))
    out = invoke(*common, "--baseline", better, "--max-latency-growth", "100", "--json")
    assert out.exit_code == 1, out.stdout + out.stderr
    regressions = json.loads(out.stdout)["regressions"]
    assert [(r["metric"], r["ef_search"]) for r in regressions] == [("recall_mean", 40)]
    out = invoke(*common, "--baseline", better, "--max-latency-growth", "100")
    assert out.exit_code == 1 and "Regressions against" in out.stdout and "recall_mean" in out.stdout

    out = invoke(*common, "--baseline", saved, "--max-latency-growth", "100", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["regressions"] == []

    bogus = tmp_path / "bogus.json"
    bogus.write_text("{}")
    out = invoke(*common, "--baseline", bogus)
    assert out.exit_code == 2 and out.stderr.count("\n") == 1 and "schema_version" in out.stderr
    for field, value in (("p50_vs_reference", "1.2"), ("p50_vs_reference", 0), ("p95_ms", "3"), ("ef_search", "x"),
                         ("p95_runs", [1, None])):
        broken = json.loads(saved.read_text())
        broken["points"][0][field] = value
        bogus.write_text(json.dumps(broken))
        out = invoke(*common, "--baseline", bogus)
        assert out.exit_code == 2 and out.stderr.count("\n") == 1 and "finite number" in out.stderr, (field, out.stderr)
