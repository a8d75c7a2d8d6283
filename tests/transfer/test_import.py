"""memctl import: a round trip on real data is row-for-row and bit-for-bit the source; --as-org makes a
second copy under new ids; a damaged or foreign export is refused with one line and nothing written
(issue 14)."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.bench.run import BenchOptions, bench_hnsw
from memctl.cli.app import app
from memctl.data.checks import check_constraints
from memctl.data.datasets import load_npz
from memctl.data.seed import seed
from memctl.schema.verify import verify_schema
from memctl.transfer.export import MANIFEST, export_org
from memctl.transfer.importer import import_org
from memctl.transfer.manifest import sha256_of
from tests.conftest import url_arg
from tests.tenant_rows import add_tenant_rows
from tests.transfer.rich import enrich, row_hashes

pytestmark = pytest.mark.asyncio(loop_scope="session")
runner = CliRunner()


async def _org(engine, slug):
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT id FROM agent_memory.organizations WHERE slug = :s"),
                                   {"s": slug})).scalar()


async def _recall(engine, slug, queries) -> float:
    result = await bench_hnsw(engine, BenchOptions(org=slug, queries=queries, ef_search=(40,), warm_cold_queries=0))
    return result.points[0].recall_mean


async def _total_rows(engine) -> int:
    async with engine.connect() as conn:
        tables = (await conn.execute(text("SELECT relname FROM pg_class WHERE relnamespace = "
                                          "'agent_memory'::regnamespace AND relkind = 'r'"))).scalars().all()
        return sum([(await conn.execute(text(f"SELECT count(*) FROM agent_memory.{t}"))).scalar() for t in tables])


async def test_round_trip_into_a_fresh_database_and_as_a_second_organisation(scratch_migrated, migrated, db_url,
                                                                             dataset_path, tmp_path):
    src, src_url = scratch_migrated
    ds = load_npz(dataset_path, limit=6000)
    await seed(src, ds, orgs=3, agents=2)
    async with src.begin() as conn:
        rich = await enrich(conn, "seed-org-01")
        await add_tenant_rows(conn, "every-table")  # a row in every tenant table
        await conn.execute(text(  # its second memory (an edge's target) gets an embedding too
            "INSERT INTO agent_memory.memory_embeddings (org_id, memory_id, model_id, dim, embedding) "
            "SELECT m.org_id, m.id, e.model_id, e.dim, e.embedding FROM agent_memory.memories m "
            "JOIN agent_memory.memory_embeddings e ON e.org_id = m.org_id "
            "WHERE NOT EXISTS (SELECT 1 FROM agent_memory.memory_embeddings x WHERE x.memory_id = m.id)"))
    assert (await check_constraints(src)).violations == []
    queries = ds.embeddings[:200]
    source_recall = await _recall(src, "seed-org-01", queries)
    for slug in ("seed-org-01", "every-table"):
        org = await _org(src, slug)
        before = await row_hashes(src, org)
        await export_org(src, slug, tmp_path / slug)
        result = await import_org(migrated, tmp_path / slug)
        assert result.organization == slug and result.rows == sum(len(v) for v in before.values())
        assert await row_hashes(migrated, org) == before  # every table, every row, updated_at included
        assert all(before.values()) or slug != "every-table"
    assert result.deferred == {"memories": ["merged_into", "superseded_by"], "task_contexts": ["current_stage_id"]}
    # embeddings bit-identical
    async with src.connect() as a, migrated.connect() as b:
        q = "SELECT memory_id, embedding FROM agent_memory.memory_embeddings WHERE org_id = :o ORDER BY memory_id"
        left = (await a.execute(text(q), {"o": rich.org})).all()
        right = (await b.execute(text(q), {"o": rich.org})).all()
    assert len(left) == len(right) > 1500
    assert all(x[0] == y[0] and np.array_equal(x[1].to_numpy(), y[1].to_numpy())
               for x, y in zip(left, right, strict=True))
    assert (await verify_schema(migrated, db_url)).clean and (await check_constraints(migrated)).clean
    target_recall = await _recall(migrated, "seed-org-01", queries)
    assert target_recall >= source_recall - 0.01, (source_recall, target_recall)

    # The same export again: refused (the organisation exists), nothing duplicated.
    rows = await _total_rows(migrated)
    out = await asyncio.to_thread(runner.invoke, app, ["import", str(tmp_path / "seed-org-01"),
                                                       "--database-url", url_arg(db_url)])
    assert out.exit_code == 2 and "'seed-org-01' exists" in out.stderr and await _total_rows(migrated) == rows

    # --as-org into the source: a second copy under new ids, the original untouched.
    original = await row_hashes(src, rich.org)
    out = await asyncio.to_thread(runner.invoke, app, ["import", str(tmp_path / "seed-org-01"), "--as-org",
                                                       "seed-copy", "--json", "--database-url", url_arg(src_url)])
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    copy = await _org(src, "seed-copy")
    assert doc["organization"] == "seed-copy" and doc["org_id"] == str(copy) and doc["source"] == "seed-org-01"
    assert await row_hashes(src, rich.org) == original
    assert await row_hashes(src, copy, without_ids=True) == await row_hashes(src, rich.org, without_ids=True)
    async with src.connect() as conn:
        old_ids = set((await conn.execute(text("SELECT id FROM agent_memory.memories WHERE org_id = :o"),
                                          {"o": rich.org})).scalars())
        new = (await conn.execute(text(
            "SELECT (SELECT array_agg(id) FROM agent_memory.memories WHERE org_id = :c), "
            "(SELECT array_agg(s) FROM agent_memory.consolidated_memories, unnest(source_memory_ids) s "
            " WHERE org_id = :c), "
            "(SELECT array_agg(r) FROM agent_memory.stage_memories, jsonb_array_elements_text(raw_memory_refs) r "
            " WHERE org_id = :c)"), {"c": copy})).one()
    new_ids = set(new[0])
    assert len(new_ids) == len(old_ids) and not new_ids & old_ids
    assert set(new[1]) <= new_ids and {uuid.UUID(r) for r in new[2]} <= new_ids
    assert (await check_constraints(src)).clean  # no dangling id in the copy's arrays or JSON
    assert await _recall(src, "seed-copy", queries) >= source_recall - 0.01


async def test_a_damaged_or_foreign_export_is_refused_and_nothing_written(scratch_migrated, tmp_path):
    engine, url = scratch_migrated
    async with engine.begin() as conn:
        await add_tenant_rows(conn, "damaged")
    good = tmp_path / "good"
    await export_org(engine, "damaged", good)
    rows = await _total_rows(engine)

    def variant(name, change):
        path = tmp_path / name
        shutil.copytree(good, path)
        change(path)
        return path

    def flip_byte(path):
        f = path / "memories.parquet"
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01
        f.write_bytes(bytes(data))

    def other_revision(path):
        doc = json.loads((path / MANIFEST).read_text())
        doc["revision"] = "0012"
        (path / MANIFEST).write_text(json.dumps(doc))

    def rewrite(path, name, change_table, change_entry=None):
        """Rewrite one Parquet file and its manifest entry (rows, SHA-256): damage no checksum catches."""
        doc = json.loads((path / MANIFEST).read_text())
        table = change_table(pq.read_table(path / name))
        pq.write_table(table, path / name)
        entry = doc["files"][name]
        entry["rows"], entry["sha256"] = table.num_rows, sha256_of(path / name)
        (change_entry or (lambda d: None))(doc)
        (path / MANIFEST).write_text(json.dumps(doc))

    def manifest(change):
        def apply(path):
            doc = json.loads((path / MANIFEST).read_text())
            change(doc)
            (path / MANIFEST).write_text(json.dumps(doc))
        return apply

    def other_org(path):
        rewrite(path, "projects.parquet", lambda t: t.set_column(
            t.column_names.index("org_id"), "org_id", pa.array([str(uuid.uuid4())] * t.num_rows)))

    def drop_embeddings(path):
        (path / "memory_embeddings.model-0.parquet").unlink()
        manifest(lambda d: d["files"].pop("memory_embeddings.model-0.parquet"))(path)

    cases = {
        "swapped-model-id": (manifest(lambda d: d["models"][0].update(id=7)),
                             "model_id 1 is not the id the manifest gives"),
        "other-organisation": (other_org, "projects.parquet: 1 rows belong to another organisation"),
        "column-missing": (lambda p: rewrite(p, "memories.parquet", lambda t: t.drop(["content"])),
                           "memories.parquet: column content is missing"),
        "embeddings-gone": (drop_embeddings, "no file of table memory_embeddings for model"),
        "rows-not-int": (manifest(lambda d: d["files"]["users.parquet"].update(rows="1")),
                         "rows of users.parquet must be an integer"),
        "corrupt": (flip_byte, "memories.parquet does not match its SHA-256"),
        "revision": (other_revision, "the export is of schema revision 0012"),
        "missing": (lambda p: (p / "memory_tags.parquet").unlink(), "memory_tags.parquet is missing"),
        "no-manifest": (lambda p: (p / MANIFEST).unlink(), "manifest.json is missing"),
    }
    for name, (change, message) in cases.items():
        out = await asyncio.to_thread(runner.invoke, app, ["import", str(variant(name, change)), "--as-org",
                                                           f"copy-{name}", "--database-url", url_arg(url)])
        assert out.exit_code == 2 and message in out.stderr, (name, out.stderr)
        assert len(out.stderr.strip().splitlines()) <= 2, out.stderr  # one line (and the database's)
        assert await _total_rows(engine) == rows, name
    out = await asyncio.to_thread(runner.invoke, app, ["import", str(good), "--as-org", "Bad Slug",
                                                       "--database-url", url_arg(url)])
    assert out.exit_code == 2 and "is not a slug" in out.stderr and await _total_rows(engine) == rows
    # a dry run does everything and keeps nothing
    out = await asyncio.to_thread(runner.invoke, app, ["import", str(good), "--as-org", "dry", "--dry-run", "--json",
                                                       "--database-url", url_arg(url)])
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["dry_run"] and doc["rows"] > 20 and await _total_rows(engine) == rows
    # a model of the same name with another dimension: refused
    manifest = json.loads((good / MANIFEST).read_text())
    assert manifest["models"][0]["dim"] == 384
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE agent_memory.embedding_models SET name = 'renamed' WHERE id = 1"))
        await conn.execute(text("INSERT INTO agent_memory.embedding_models (name, dim, distance) VALUES (:n, 768, "
                                "'cosine')"), {"n": manifest["models"][0]["name"]})
    rows = await _total_rows(engine)
    out = await asyncio.to_thread(runner.invoke, app, ["import", str(good), "--as-org", "dims",
                                                       "--database-url", url_arg(url)])
    assert out.exit_code == 2 and "with dim 768" in out.stderr and await _total_rows(engine) == rows
