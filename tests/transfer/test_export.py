"""memctl export: every tenant table (from the catalog), one organisation's rows only, vectors exact,
checksums in the manifest, nothing overwritten (issue 14)."""

from __future__ import annotations

import asyncio
import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli.app import app
from memctl.data.datasets import load_npz
from memctl.data.seed import seed
from memctl.transfer.export import MANIFEST, export_org
from tests.conftest import url_arg
from tests.tenant_rows import add_tenant_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_export_holds_every_tenant_table_and_only_the_organisation(scratch_migrated, dataset_path, tmp_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=400), orgs=2, agents=1)
    async with engine.begin() as conn:
        await add_tenant_rows(conn, "export-a")
        await add_tenant_rows(conn, "export-b")
        # a tenant table the models do not know: the catalog drives the export, so it is in it
        await conn.execute(text("CREATE TABLE agent_memory.added_later (org_id uuid NOT NULL, note text)"))
        await conn.execute(text("INSERT INTO agent_memory.added_later SELECT id, slug FROM agent_memory.organizations"))
        org = (await conn.execute(text("SELECT id FROM agent_memory.organizations WHERE slug = 'export-a'"))).scalar()
        tables = (await conn.execute(text(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'agent_memory'::regnamespace AND c.relkind = 'r' "
            "AND (c.relname = 'organizations' OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
            "AND a.attname = 'org_id'))"))).scalars().all()
    out = tmp_path / "export"
    result = await export_org(engine, "export-a", out)  # a row in every tenant table (tests.tenant_rows)
    manifest = json.loads((out / MANIFEST).read_text())
    assert {f["table"] for f in manifest["files"].values()} == set(tables) and "added_later" in tables
    assert [m["name"] for m in manifest["models"]] == ["sentence-transformers/all-MiniLM-L6-v2"]
    async with engine.connect() as conn:
        for name, f in manifest["files"].items():
            path = out / name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
            data = pq.read_table(path)
            key = f["key"]
            expected = (await conn.execute(text(f"SELECT count(*) FROM agent_memory.{f['table']} WHERE {key} = :o"
                                                + (" AND model_id = 1" if f["model"] else "")), {"o": org})).scalar()
            assert data.num_rows == f["rows"] == expected >= 1, name
            assert set(data.column(key).to_pylist()) == {str(org)}, name  # no other organisation's row
    assert result.rows == sum(f["rows"] for f in manifest["files"].values())
    # vectors are bit-identical to the database's: a seeded organisation, in many small batches
    async with engine.connect() as conn:
        org = (await conn.execute(text("SELECT id FROM agent_memory.organizations WHERE slug = :s"),
                                  {"s": "seed-org-01"})).scalar()
    seeded = await export_org(engine, "seed-org-01", tmp_path / "seeded", batch_rows=37)
    assert seeded.rows > 200
    data = pq.read_table(tmp_path / "seeded" / "memory_embeddings.model-0.parquet")
    exported = dict(zip(data.column("memory_id").to_pylist(),
                        np.asarray(data.column("embedding").combine_chunks().flatten()).reshape(-1, 384), strict=True))
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT memory_id::text, embedding FROM agent_memory.memory_embeddings "
                                          "WHERE org_id = :o"), {"o": org})).all()
    assert len(stored) == len(exported) and all(np.array_equal(v.to_numpy(), exported[m]) for m, v in stored)
    # text-form columns carry PostgreSQL's own output: jsonb, arrays, numeric come back by casting
    memories = pq.read_table(tmp_path / "seeded" / "memories.parquet")
    assert memories.schema.field("metadata").type == "string" and "content_hash" not in memories.column_names


async def test_export_refuses_and_leaves_nothing_behind(scratch_migrated, tmp_path):
    engine, url = scratch_migrated
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    runner = CliRunner()
    out = await asyncio.to_thread(runner.invoke, app, ["export", "--org", "nobody", "--output", str(tmp_path / "x"),
                                                       "--database-url", url_arg(url)])
    assert out.exit_code == 2 and "no organisation with slug 'nobody'" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no scratch directory left
    async with engine.begin() as conn:
        await add_tenant_rows(conn, "refused")
    out = await asyncio.to_thread(runner.invoke, app, ["export", "--org", "refused", "--output", str(taken),
                                                       "--database-url", url_arg(url)])
    assert out.exit_code == 2 and "never overwrites" in out.stderr and (taken / "keep.txt").read_text() == "mine"
    ok = await asyncio.to_thread(runner.invoke, app, ["export", "--org", "refused", "--output", str(tmp_path / "ok"),
                                                      "--database-url", url_arg(url), "--json"])
    assert ok.exit_code == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["organization"] == "refused" and doc["run"]["command"] == "export" and doc["rows"] > 20
