"""memctl stats: the report matches the database, the Prometheus file parses back with
prometheus_client's own parser, thresholds exit 1 when crossed and 0 otherwise; maintain records its
runs (revision 0017) (issue 15)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli.app import app
from memctl.data.datasets import load_npz
from memctl.data.seed import seed
from tests.cli import only_database_line
from tests.conftest import url_arg

pytestmark = pytest.mark.asyncio(loop_scope="session")
runner = CliRunner()


def samples(path) -> dict[tuple, float]:
    """(metric, sorted label items) -> value, read with prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def _scalar(engine, sql, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def test_stats_report_prometheus_file_and_thresholds(scratch_migrated, dataset_path, tmp_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=1500), orgs=2, agents=1)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE agent_memory.memories SET deleted_at = now() WHERE id IN (SELECT id FROM "
                                "agent_memory.memories ORDER BY id LIMIT 10)"))
        await conn.execute(text("UPDATE agent_memory.memories SET status = 'archived' WHERE deleted_at IS NULL AND "
                                "id IN (SELECT id FROM agent_memory.memories WHERE deleted_at IS NULL ORDER BY id "
                                "LIMIT 5)"))
        await conn.execute(text("UPDATE agent_memory.memories SET content = content || ' (edited)' WHERE id = (SELECT "
                                "id FROM agent_memory.memories WHERE deleted_at IS NULL AND status = 'active' "
                                "ORDER BY id LIMIT 1)"))
    prom = tmp_path / "memctl.prom"
    args = ["stats", "--json", "--prometheus", str(prom), "--database-url", url_arg(url)]
    out = await asyncio.to_thread(runner.invoke, app, args)
    assert out.exit_code == 0 and only_database_line(out.stderr), out.stderr
    doc = json.loads(out.stdout)
    got = samples(prom)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memctl.prom"] and prom.stat().st_mode & 0o777 == 0o644
    for org in ("seed-org-01", "seed-org-02"):
        for tier in ("task", "project", "personal"):
            expected = await _scalar(engine, "SELECT count(*) FILTER (WHERE m.deleted_at IS NOT NULL) FROM "
                                     "agent_memory.memories m JOIN agent_memory.organizations o ON o.id = m.org_id "
                                     "WHERE o.slug = :o AND m.tier = :t", o=org, t=tier)
            assert got[("memctl_memories", (("org", org), ("state", "deleted"), ("tier", tier)))] == expected
    archived = [v for (name, labels), v in got.items() if name == "memctl_memories" and ("state", "archived") in labels]
    assert sum(archived) == 5
    model = "sentence-transformers/all-MiniLM-L6-v2"
    assert got[("memctl_embedding_stale_rows", (("model", model),))] == 1
    assert got[("memctl_stats_findings", ())] == 0 and doc["findings"] == []
    hnsw = [k for k in got if k[0] == "memctl_hnsw_index_fits_shared_buffers"]
    assert hnsw and all(got[k] == 1 for k in hnsw)
    assert not [k for k in got if k[0].startswith("memctl_maintain_")]  # maintain never ran
    assert {t["table"] for t in doc["tables"]} >= {"memories", "memory_embeddings"}

    async def cli(*extra):
        return await asyncio.to_thread(runner.invoke, app, ["stats", *extra, "--database-url", url_arg(url)])

    # thresholds: crossed -> exit 1 naming it; not crossed -> exit 0
    out = await cli("--max-stale", "0")
    assert out.exit_code == 1 and f"model {model}: 1 stale embeddings > 0" in out.stderr
    assert (await cli("--max-stale", "1")).exit_code == 0
    out = await cli("--max-maintain-age", "1h")
    assert out.exit_code == 1 and "memctl maintain has never run" in out.stderr
    out = await asyncio.to_thread(runner.invoke, app, ["maintain", "vacuum", "--json", "--database-url",
                                                       url_arg(url)])
    assert out.exit_code == 0, out.stderr
    assert (await cli("--max-maintain-age", "1h", "--prometheus", str(prom))).exit_code == 0
    got = samples(prom)
    assert abs(got[("memctl_maintain_last_success_timestamp_seconds", (("task", "vacuum"),))] - time.time()) < 120
    async with engine.begin() as conn:  # a run that failed an hour ago and never succeeded since
        await conn.execute(text("INSERT INTO public.memctl_maintain_runs (task, started_at, finished_at, outcome, "
                                "error) VALUES ('purge', now() - interval '2 hours', now() - interval '2 hours', "
                                "'failed', 'boom')"))
    out = await cli("--max-maintain-age", "1h")
    assert out.exit_code == 1 and "maintain task purge has never succeeded (last: failed)" in out.stderr
    # dead tuples (250 memories deleted now: maintain vacuum above cleaned the earlier ones), once the
    # statistics reach pg_stat_user_tables
    async with engine.begin() as conn:  # autovacuum could clear the dead tuples between the wait and the read
        await conn.execute(text("ALTER TABLE agent_memory.memories SET (autovacuum_enabled = off)"))
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM agent_memory.memories WHERE id IN (SELECT id FROM agent_memory.memories "
                                "WHERE deleted_at IS NULL AND status = 'active' ORDER BY id DESC LIMIT 250)"))
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))  # else an idle session waits 10 s to report
    for _ in range(150):
        if (await _scalar(engine, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'memories' "
                                  "AND schemaname = 'agent_memory'") or 0) >= 250:
            break
        await asyncio.sleep(0.2)
    out = await cli("--max-dead-share", "0.1", "--json")
    assert out.exit_code == 1 and "table memories: dead share" in out.stderr and "> 10.0%" in out.stderr
    assert json.loads(out.stdout)["findings"]
    assert (await cli("--max-dead-share", "1")).exit_code == 0
    out = await cli("--max-dead-share", "2")
    assert out.exit_code == 2 and "--max-dead-share is a share between 0 and 1" in out.stderr
