"""models backfill: killed at random points and resumed, stale rows after update_content, an
OpenAI-compatible endpoint that answers 429 and 500 (issue 13's acceptance)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli.app import app
from memctl.data.checks import check_constraints
from memctl.data.datasets import load_npz
from memctl.data.seed import seed
from memctl.db.engine import asyncpg_dsn
from memctl.lifecycle.backfill import backfill_model
from memctl.lifecycle.status import add, list_models
from memctl.repositories import org_scope
from tests.conftest import url_arg
from tests.lifecycle import synthetic
from tests.lifecycle.embedding_server import EmbeddingServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
E5 = "intfloat/multilingual-e5-small"
E5_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "debian-e5-5k.npz"
ROOT = Path(__file__).resolve().parents[2]
needs_e5 = pytest.mark.skipif(not E5_FILE.exists(), reason="shared/data/debian-e5-5k.npz is absent")


def cli(*args: str):
    """Run memctl in this process (CliRunner); for async tests, through :func:`asyncio.to_thread`."""
    return asyncio.to_thread(CliRunner().invoke, app, list(args))


async def scalar(engine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


@needs_e5
async def test_backfill_killed_five_times_then_resumed(scratch_migrated, dataset_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=5000), orgs=2, agents=1)
    e5 = await add(engine, E5, 384)
    rng = random.Random(13)
    seen = []
    for _ in range(5):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "memctl", "models", "backfill", E5, "--from", str(E5_FILE), "--batch-size", "200",
            "--database-url", url_arg(url), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        before = seen[-1] if seen else 0
        deadline = time.monotonic() + 60  # on a busy machine start-up takes longer: kill once it has written
        while proc.returncode is None and time.monotonic() < deadline and await scalar(
                engine, "SELECT count(*) FROM agent_memory.memory_embeddings WHERE model_id = :m", m=e5.id) == before:
            await asyncio.sleep(0.05)
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        seen.append(await scalar(engine, "SELECT count(*) FROM agent_memory.memory_embeddings WHERE model_id = :m",
                                 m=e5.id))
    assert any(0 < n < 5000 for n in seen), seen  # at least one kill landed mid-way
    out = await cli("models", "backfill", E5, "--from", str(E5_FILE), "--database-url", url_arg(url), "--json")
    assert out.exit_code == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["remaining"] == 0 and result["written"] == 5000 - seen[-1] and result["unmatched"] == 0
    rows = await scalar(engine, "SELECT count(*) FROM agent_memory.memory_embeddings WHERE model_id = :m", m=e5.id)
    pairs = await scalar(engine, "SELECT count(DISTINCT (org_id, memory_id)) FROM agent_memory.memory_embeddings "
                                 "WHERE model_id = :m", m=e5.id)
    assert rows == pairs == 5000
    # every vector is the file's vector of the memory's text (matched by content hash)
    data = np.load(E5_FILE, allow_pickle=False)
    async with engine.connect() as conn:
        stored = (await conn.execute(text(
            "SELECT m.content, e.embedding FROM agent_memory.memory_embeddings e JOIN agent_memory.memories m "
            "ON m.org_id = e.org_id AND m.id = e.memory_id WHERE e.model_id = :m"), {"m": e5.id})).all()
    by_text = dict(zip(data["texts"].tolist(), data["embeddings"], strict=True))
    assert all(np.array_equal(v.to_numpy(), by_text[t]) for t, v in stored)
    listed = {m.name: m for m in (await list_models(engine)).models}
    assert listed[E5].coverage == 1.0 and listed[E5].state == "registered"
    assert (await check_constraints(engine)).clean
    # a second run finds nothing to do
    again = await cli("models", "backfill", E5, "--from", str(E5_FILE), "--database-url", url_arg(url), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["written"] == 0


async def test_update_content_leaves_a_stale_row_that_backfill_stale_fixes(scratch_migrated, dataset_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=300), orgs=1, agents=1)
    async with engine.connect() as conn:
        org, memory, other = (await conn.execute(text(
            "SELECT m.org_id, m.id, (SELECT max(id::text)::uuid FROM agent_memory.memories) "
            "FROM agent_memory.memories m ORDER BY m.id LIMIT 1"))).one()
    async with org_scope(engine, org) as s:
        assert await s.memories.update_content(memory, "the content changed after it was embedded")
        new_vec = synthetic.embed_384(["rewritten and re-embedded in one call"])[0]
        assert await s.memories.update_content(other, "rewritten and re-embedded in one call",
                                               embeddings={MINILM: new_vec})
    found = {v.rule: v for v in (await check_constraints(engine)).violations}
    assert set(found) == {"stale_embedding"} and found["stale_embedding"].count == 1
    assert found["stale_embedding"].sample == [f"model 1 {org}/{memory}"]

    out = await cli("models", "backfill", MINILM, "--stale", "--embedder", "tests.lifecycle.synthetic:embed_384",
                    "--database-url", url_arg(url), "--json")
    assert out.exit_code == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["refreshed"], result["written"], result["remaining"]) == (1, 0, 0)
    assert (await check_constraints(engine)).clean
    async with engine.connect() as conn:
        vec, fresh = (await conn.execute(text(
            "SELECT e.embedding, e.content_hash = m.content_hash FROM agent_memory.memory_embeddings e "
            "JOIN agent_memory.memories m ON m.org_id = e.org_id AND m.id = e.memory_id WHERE m.id = :id"),
            {"id": memory})).one()
    assert fresh and np.allclose(vec.to_numpy(), synthetic.embed_384(["the content changed after it was embedded"])[0])


@needs_e5
async def test_openai_compatible_endpoint_with_a_429_and_a_500(scratch_migrated, dataset_path, monkeypatch):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=300), orgs=2, agents=1)
    await add(engine, E5, 384)
    data = np.load(E5_FILE, allow_pickle=False)
    vectors = dict(zip(data["texts"][:300].tolist(), data["embeddings"][:300], strict=True))
    monkeypatch.setenv("MEMCTL_TEST_EMBED_KEY", "sk-test-secret-key")
    with EmbeddingServer(vectors, model=E5, fail_plan=[429, 500]) as server:
        out = await cli("models", "backfill", E5, "--embedder", f"openai:{E5}", "--base-url", server.url,
                        "--api-key-env", "MEMCTL_TEST_EMBED_KEY", "--request-size", "25", "--concurrency", "3",
                        "--batch-size", "100", "--database-url", url_arg(url), "--json")
    assert out.exit_code == 0, out.stderr
    assert "sk-test-secret-key" not in out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["written"] == 300 and result["remaining"] == 0
    assert server.requests == 300 // 25 + 2  # 12 batches of texts, 2 of them retried once
    assert set(server.auth_headers) == {"Bearer sk-test-secret-key"}
    async with engine.connect() as conn:
        stored = (await conn.execute(text(
            "SELECT m.content, e.embedding FROM agent_memory.memory_embeddings e JOIN agent_memory.memories m "
            "ON m.org_id = e.org_id AND m.id = e.memory_id JOIN agent_memory.embedding_models x ON x.id = e.model_id "
            "WHERE x.name = :n"), {"n": E5})).all()
    assert len(stored) == 300 and all(np.array_equal(v.to_numpy(), vectors[t]) for t, v in stored)


async def test_backfill_refuses_what_it_cannot_do(scratch_migrated, dataset_path, tmp_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=50), orgs=1, agents=1)
    await add(engine, "synth-768", 768)
    db = ("--database-url", url_arg(url))
    both = await cli("models", "backfill", "synth-768", "--from", str(dataset_path), "--embedder", "x:y", *db)
    assert both.exit_code == 2 and "one of them" in both.stderr
    # the MiniLM file names another model: two spaces must never mix silently
    wrong = await cli("models", "backfill", "synth-768", "--from", str(dataset_path), *db)
    assert wrong.exit_code == 2 and "not 'synth-768'" in wrong.stderr.splitlines()[-1]
    short = await cli("models", "backfill", "synth-768", "--embedder", "tests.lifecycle.synthetic:embed_384", *db)
    assert short.exit_code == 2 and "needs (50, 768)" in short.stderr
    missing = await cli("models", "backfill", "no/such-model", "--embedder", "tests.lifecycle.synthetic:embed_768", *db)
    assert missing.exit_code == 2 and "no embedding model named" in missing.stderr
    assert await scalar(engine, "SELECT count(*) FROM agent_memory.memory_embeddings e JOIN "
                                "agent_memory.embedding_models m ON m.id = e.model_id WHERE m.name = 'synth-768'") == 0
    # a file with only some of the texts: the rest stays unmatched, and the run says so (exit 1)
    ds = load_npz(dataset_path, limit=50)
    part = tmp_path / "part.npz"
    np.savez(part, texts=np.array(ds.texts[:20]), embeddings=synthetic.embed_768(ds.texts[:20]),
             model=np.array("synth-768"))
    partial = await cli("models", "backfill", "synth-768", "--from", str(part), *db, "--json")
    assert partial.exit_code == 1
    assert (json.loads(partial.stdout)["written"], json.loads(partial.stdout)["unmatched"]) == (20, 30)


async def test_backfill_waits_for_a_delete_and_status_changes_in_flight(scratch_migrated, dataset_path, server_url):
    """A memory deleted, one archived and one re-activated by a transaction still open while the batch is
    written: the batch waits for it, skips the deleted one (was: a foreign-key error that ended the run) and
    flags the others from their committed status (was: an active memory left unsearchable)."""
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=50), orgs=1, agents=1)
    await add(engine, "synth-384", 384)
    async with engine.begin() as conn:
        a, b, c = (await conn.execute(text("SELECT id FROM agent_memory.memories ORDER BY id LIMIT 3"))).scalars()
        await conn.execute(text("UPDATE agent_memory.memories SET status = 'archived' WHERE id = :c"), {"c": c})
    writer = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tx = writer.transaction()
        await tx.start()
        await writer.execute("DELETE FROM agent_memory.memories WHERE id = $1", a)
        await writer.execute("UPDATE agent_memory.memories SET status = 'archived' WHERE id = $1", b)
        await writer.execute("UPDATE agent_memory.memories SET status = 'active' WHERE id = $1", c)
        run = asyncio.create_task(backfill_model(engine, "synth-384", embedder="tests.lifecycle.synthetic:embed_384"))
        await asyncio.sleep(1.5)
        assert not run.done()  # the batch waits for the open transaction's row locks
        await tx.commit()
        result = await run
    finally:
        await writer.close()
    assert result.clean and result.changed == 1 and result.written == 49
    async with engine.connect() as conn:
        flags = dict((await conn.execute(text(
            "SELECT e.memory_id, e.searchable FROM agent_memory.memory_embeddings e JOIN agent_memory.embedding_models "
            "x ON x.id = e.model_id WHERE x.name = 'synth-384' AND e.memory_id = ANY(:ids)"),
            {"ids": [a, b, c]})).all())
    assert flags == {b: False, c: True}
    assert (await check_constraints(engine)).clean
