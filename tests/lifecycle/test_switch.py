"""The whole model change with services searching throughout (issue 13, "Zero downtime, proven").

Real data: the first 5,000 Debian paragraphs seeded in MiniLM over two organisations, then moved to
multilingual-e5-small (the same texts in a second, unrelated space): add -> backfill (killed once
with SIGKILL, resumed) -> index -> set-default for org A -> set-default globally -> retire MiniLM.
Two service loops search all along as the application role (one per organisation), embedding each
query in the model the organisation uses at that moment; a third service adds memories with both
models' embeddings (dual-write) from the moment the e5 model is registered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli.app import app
from memctl.data.checks import check_constraints
from memctl.data.datasets import load_npz, load_queries
from memctl.data.seed import seed
from memctl.db.engine import make_engine
from memctl.lifecycle.backfill import backfill
from memctl.lifecycle.index import build_index
from memctl.lifecycle.sources import FileSource
from memctl.lifecycle.status import add, list_models
from memctl.lifecycle.switch import retire, set_default
from memctl.models import ModelSpec
from memctl.repositories import org_scope
from tests.conftest import url_arg

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
E5 = "intfloat/multilingual-e5-small"
E5_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "debian-e5-5k.npz"
K = 10


class Services:
    """Search loops for two organisations and a dual-writer, recording every search."""

    def __init__(self, url, orgs: dict[str, object], queries: dict[str, np.ndarray], adds: list[tuple]):
        self.engine = make_engine(url, pool_size=4)
        self.orgs, self.queries, self.adds = orgs, queries, adds
        self.searches: list[tuple[float, str, str, int, int | None]] = []  # (started, org, model, rows, available)
        self.errors: list[str] = []
        self.dual_write: list[str] = []  # the models a new memory is written in
        self.added = 0
        self.stop = asyncio.Event()

    async def search_loop(self, slug: str) -> None:
        i = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                async with org_scope(self.engine, self.orgs[slug]) as s:
                    model = await s.memories.current_model()
                    query = self.queries[model.name][i % len(self.queries[model.name])]
                    hits = await s.memories.search(query, K, model=model)
                    self.searches.append((started, slug, hits.model.name, len(hits), hits.available))
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                self.errors.append(f"{slug}: {type(exc).__name__}: {exc}")
            i += 1
            await asyncio.sleep(0.01)

    async def write_loop(self, agent: object) -> None:
        i = 0
        while not self.stop.is_set() and i < len(self.adds):
            if self.dual_write:
                content, vectors = self.adds[i]
                try:
                    async with org_scope(self.engine, self.orgs["a"]) as s:
                        await s.memories.add(agent, content, embeddings={m: vectors[m] for m in self.dual_write})
                    self.added += 1
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"add: {type(exc).__name__}: {exc}")
                i += 1
            await asyncio.sleep(0.05)


async def _kill_backfill_midway(url, engine, model: ModelSpec) -> int:
    """Run ``memctl models backfill`` in a subprocess and SIGKILL it once some rows are written."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memctl", "models", "backfill", E5, "--from", str(E5_FILE), "--batch-size", "250",
        "--database-url", url_arg(url), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
    written = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.returncode is None:
        async with engine.connect() as conn:
            written = (await conn.execute(text(
                "SELECT count(*) FROM agent_memory.memory_embeddings WHERE model_id = :m"), {"m": model.id})).scalar()
        if written >= 1000:
            break
        await asyncio.sleep(0.05)
    assert proc.returncode is None, (await proc.stderr.read()).decode()
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    return written


@pytest.mark.skipif(not E5_FILE.exists(), reason="shared/data/debian-e5-5k.npz is absent")
async def test_model_change_with_services_searching_throughout(scratch_migrated, dataset_path, tmp_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=5000), orgs=2, agents=1)
    async with engine.begin() as conn:
        orgs = dict((await conn.execute(text(
            "SELECT CASE slug WHEN 'seed-org-01' THEN 'a' ELSE 'b' END, id FROM agent_memory.organizations"))).all())
        agent = (await conn.execute(text("SELECT id FROM agent_memory.agents WHERE org_id = :o"),
                                    {"o": orgs["a"]})).scalar()
        await conn.execute(text("CREATE ROLE lifecycle_app LOGIN PASSWORD 'app-secret' IN ROLE memory_app"))
    queries = {MINILM: load_queries(dataset_path, limit=500), E5: load_queries(E5_FILE)}
    e5_data = np.load(E5_FILE, allow_pickle=False)
    adds = [(f"dual-written: {t}", {MINILM: queries[MINILM][i], E5: queries[E5][i]})
            for i, t in enumerate(e5_data["query_texts"][:60].tolist())]
    services = Services(url.set(username="lifecycle_app", password="app-secret"), orgs, queries, adds)
    loops = [asyncio.create_task(services.search_loop(s)) for s in ("a", "b")]
    loops.append(asyncio.create_task(services.write_loop(agent)))
    cutover: dict[str, float] = {}
    try:
        await asyncio.sleep(0.5)
        e5 = await add(engine, E5, 384, m=24, ef_construction=128)
        services.dual_write[:] = [MINILM, E5]
        killed_at = await _kill_backfill_midway(url, engine, e5)
        done = await backfill(engine, E5, FileSource.load(E5_FILE, e5), batch_size=500)
        assert done.clean and done.unmatched == 0, done
        assert 0 < done.written < 5000 and 1000 <= killed_at  # the resumed run wrote only what was missing
        built = await build_index(engine, E5)
        assert built.state == "ready" and [b.action for b in built.builds] == ["built", "built"]
        await asyncio.sleep(0.5)
        # a late catch-up backfill: what the dual-writer did not cover (nothing, if it wrote both)
        assert (await backfill(engine, E5, FileSource.load(E5_FILE, e5))).clean
        switched = await set_default(engine, E5, "seed-org-01")
        assert switched.ok and switched.changed and switched.coverage == 1.0 and switched.previous == MINILM
        cutover["a"] = time.monotonic()
        await asyncio.sleep(1.0)
        everyone = await set_default(engine, E5)
        # the canary's own choice is dropped: it follows the default, and the next change moves it too
        assert everyone.changed and everyone.previous == MINILM and everyone.unpinned == ["seed-org-01"]
        cutover["b"] = time.monotonic()
        await asyncio.sleep(1.0)
        services.dual_write[:] = [E5]
        retired = await retire(engine, MINILM, batch_size=1000)
        assert retired.removed and retired.deleted["memory_embeddings"] >= 5000
        await asyncio.sleep(1.0)
    finally:
        services.stop.set()
        await asyncio.gather(*loops)
        await services.engine.dispose()
    assert services.errors == []
    assert services.added >= 20
    assert len(services.searches) > 100
    short = [s for s in services.searches if s[3] < K]
    assert short == []
    for slug, at in cutover.items():
        after = {m for started, org, m, _n, _a in services.searches if org == slug and started > at + 0.05}
        before = {m for started, org, m, _n, _a in services.searches if org == slug and started < at - 0.05}
        assert after == {E5} and MINILM in before, (slug, before, after)
    # after the global cutover: recall@10 at ef_search 40 against the exact e5 top-10, by the bench
    bench = ["bench-hnsw", "--model", E5, "--queries", str(E5_FILE), "--ef-search", "40", "--num-queries", "500",
             "--database-url", url_arg(url), "--json"]
    out = await asyncio.to_thread(CliRunner().invoke, app, bench)
    assert out.exit_code == 0, out.stderr
    recall = json.loads(out.stdout)["points"][0]["recall_mean"]
    assert recall >= 0.95
    listed = {m.name: m for m in (await list_models(engine)).models}
    assert set(listed) == {E5} and listed[E5].coverage == 1.0 and listed[E5].default
    assert (await check_constraints(engine)).clean
