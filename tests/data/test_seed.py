"""seed on a 2,000-row slice of the real dataset, synthetic data, registration and refusal."""

import asyncio

import asyncpg
import numpy as np
import pytest
from pgvector.asyncpg import register_vector
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli import app
from memctl.data.datasets import Dataset, load_npz, synthetic
from memctl.data.seed import seed
from memctl.db.engine import asyncpg_dsn
from memctl.errors import DatasetError
from memctl.models.embeddings import DEFAULT_MODEL_NAME
from tests.cli import one_error_line
from tests.conftest import url_arg
from tests.data.test_datasets import bad_datasets
from tests.db.test_privileges import run_sql

SLICE = 2000


async def _count(engine, sql):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


async def test_seed_real_slice_then_again_adds_nothing(migrated, dataset_path):
    ds = load_npz(dataset_path, limit=SLICE)
    seen = []
    first = await seed(migrated, ds, orgs=5, agents=2, skew=True, batch_size=700,
                       progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert first.rows == SLICE and first.memories_inserted == SLICE and first.duplicates_skipped == 0
    assert first.rows_per_second > 0 and not first.model_registered
    assert ("load", SLICE, SLICE) in seen and seen[0] == ("load", 700, SLICE)
    assert await _count(migrated, "SELECT count(*) FROM agent_memory.memories") == SLICE
    assert await _count(migrated, "SELECT count(*) FROM agent_memory.memory_embeddings WHERE model_id = 1") == SLICE
    # Real texts, with the generated SHA-256 content hash.
    assert await _count(migrated, "SELECT count(*) FROM agent_memory.memories "
                                  "WHERE content_hash = encode(sha256(convert_to(content, 'UTF8')), 'hex')") == SLICE
    # The mix of tiers and the skew over organisations.
    tiers = await _count(migrated, "SELECT count(DISTINCT tier) FROM agent_memory.memories")
    assert tiers == 3
    shares = await _count(migrated, "SELECT max(n)::float / min(n) FROM (SELECT count(*) n FROM "
                                    "agent_memory.memories GROUP BY org_id) s")
    assert shares > 20  # ~50 % vs ~1 %
    again = await seed(migrated, ds, orgs=5, agents=2, skew=True)
    assert again.memories_inserted == 0 and again.duplicates_skipped == SLICE
    assert await _count(migrated, "SELECT count(*) FROM agent_memory.memories") == SLICE
    # The HNSW index was rebuilt and is valid.
    assert await _count(migrated, "SELECT count(*) FROM pg_index WHERE indisvalid AND "
                                  "indexrelid = 'agent_memory.ix_memory_embeddings_hnsw_1'::regclass") == 1


async def test_dimension_mismatch_writes_nothing(migrated):
    before = await _count(migrated, "SELECT count(*) FROM agent_memory.memories")
    orgs_before = await _count(migrated, "SELECT count(*) FROM agent_memory.organizations")
    bad = synthetic(50, dim=16)  # named like the default model (384-d)
    with pytest.raises(DatasetError, match="dimension 384"):
        await seed(migrated, bad, orgs=7)
    assert await _count(migrated, "SELECT count(*) FROM agent_memory.memories") == before
    assert await _count(migrated, "SELECT count(*) FROM agent_memory.organizations") == orgs_before


async def test_unknown_model_is_registered_with_its_hnsw_indexes(migrated):
    ds = synthetic(300, dim=16, model="test/tiny-16")
    result = await seed(migrated, ds, orgs=2)
    assert result.model_registered and result.memories_inserted == 300
    async with migrated.connect() as conn:
        names = set((await conn.execute(text(
            f"SELECT indexname FROM pg_indexes WHERE indexname LIKE '%hnsw_{result.model_id}'"))).scalars())
    assert names == {f"ix_memory_embeddings_hnsw_{result.model_id}",
                     f"ix_consolidated_memory_embeddings_hnsw_{result.model_id}"}


def test_dataset_validation(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, texts=np.array(["a", "b"]), embeddings=np.zeros((3, 4), dtype=np.float32), model="m")
    with pytest.raises(DatasetError, match="n, d"):
        load_npz(path)
    np.savez(path, texts=np.array(["a"]), model="m")
    with pytest.raises(DatasetError, match="lacks embeddings"):
        load_npz(path)
    with pytest.raises(DatasetError, match="not found"):
        load_npz(tmp_path / "absent.npz")
    ds = Dataset(["x"], np.array([[np.nan, 1.0]], dtype=np.float32), "m", "mem")
    from memctl.data.datasets import _checked
    with pytest.raises(DatasetError, match="NaN"):
        _checked(ds)


def test_synthetic_vectors_are_as_crowded_as_real_ones(dataset_path):
    """Sampled from the mixture fitted to real MiniLM vectors: unit length, deterministic, any dimension,
    and the distance to the nearest neighbours close to the real data's (the old clustered noise had a
    nearest neighbour at 0.09 against the real 0.44 at this size)."""

    def neighbours(x):
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        top = -np.sort(-sims, axis=1)[:, :10]
        return 1 - top[:, 0].mean(), 1 - top[:, 9].mean()

    ds = synthetic(2000, seed=1)
    assert np.allclose(np.linalg.norm(ds.embeddings, axis=1), 1.0, atol=1e-5) and len(set(ds.texts)) == 2000
    assert np.array_equal(ds.embeddings, synthetic(2000, seed=1).embeddings)
    real = load_npz(dataset_path, limit=2000).embeddings
    (s1, s10), (r1, r10) = neighbours(ds.embeddings), neighbours(real)
    assert abs(s1 - r1) < 0.1 and abs(s10 - r10) < 0.06, ((s1, s10), (r1, r10))
    for dim in (32, 1536):  # other models' dimensions: unit vectors; above 384 every inner product is kept
        other = synthetic(300, dim=dim, seed=1).embeddings
        assert other.shape == (300, dim) and np.allclose(np.linalg.norm(other, axis=1), 1.0, atol=1e-5)
    wide, narrow = synthetic(300, dim=1536, seed=1).embeddings, synthetic(300, seed=1).embeddings
    assert np.allclose(wide @ wide.T, narrow @ narrow.T, atol=1e-4)


def test_bad_inputs_exit_2_in_one_line_and_write_nothing(migrated, db_url, tmp_path):
    files = bad_datasets(tmp_path)
    zero = tmp_path / "zero.npz"  # valid as a file; but the default model is cosine
    np.savez(zero, texts=np.array(["zero one", "zero two"]), embeddings=np.zeros((2, 384), np.float32),
             model=np.array(DEFAULT_MODEL_NAME))
    files["zero vector under cosine"] = zero
    count = "SELECT (SELECT count(*) FROM agent_memory.memories) + (SELECT count(*) FROM agent_memory.embedding_models)"
    before = run_sql(db_url, scalar=count)
    for name, path in files.items():
        out = CliRunner().invoke(app, ["seed", "--dataset", str(path), "--database-url", url_arg(db_url)])
        assert out.exit_code == 2 and out.stdout == "", (name, out.stderr)
        assert str(path) in one_error_line(out.stderr), name
    assert run_sql(db_url, scalar=count) == before


async def test_seed_into_a_live_database_never_blocks_a_search(scratch_migrated, dataset_path):
    """A probe search polled while seed loads 20,000 rows is never waiting on seed's backend
    (pg_blocking_pids, read from the server), and seed was seen running while it polled."""
    engine, url = scratch_migrated
    await seed(engine, synthetic(500, 384, seed=5), orgs=2, agents=1)  # rows and a live index
    ds = load_npz(dataset_path)
    assert len(ds.texts) == 20000
    probe = await asyncpg.connect(asyncpg_dsn(url))
    monitor = await asyncpg.connect(asyncpg_dsn(url))
    await register_vector(probe)
    query = ds.embeddings[0]
    blocked_by_seed, seed_seen, probes = [], 0, 0
    try:
        probe_pid = await probe.fetchval("SELECT pg_backend_pid()")
        load = asyncio.create_task(seed(engine, ds, orgs=3, agents=2))

        async def poll_probe():
            nonlocal probes
            while not load.done():
                await probe.fetch("SELECT memory_id FROM agent_memory.memory_embeddings WHERE model_id = 1 "
                                  "ORDER BY embedding::vector(384) <=> $1 LIMIT 5", query)
                probes += 1
                await asyncio.sleep(0.01)

        async def watch():
            nonlocal seed_seen
            while not load.done():
                seeders = set(await monitor.fetchval(
                    "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND pid <> $1 AND datname = current_database() AND state <> 'idle'", probe_pid))
                seed_seen += bool(seeders)
                blockers = set(await monitor.fetchval("SELECT pg_blocking_pids($1)", probe_pid))
                if blockers & seeders:
                    blocked_by_seed.append(blockers)
                await asyncio.sleep(0.02)

        await asyncio.gather(poll_probe(), watch(), load)
        result = load.result()
    finally:
        await probe.close()
        await monitor.close()
    assert seed_seen >= 10 and probes >= 10, (seed_seen, probes)
    assert blocked_by_seed == []
    assert result.memories_inserted == 20000 and result.index_s == 0  # no rebuild into a live table


async def test_seed_into_empty_tables_copies_directly_and_falls_back_on_a_duplicate(scratch_migrated, dataset_path):
    """Into empty tables seed COPYs straight into memories and memory_embeddings (a superuser here); a
    batch holding a text twice conflicts with itself and goes through staging, which skips the duplicate.
    The embeddings' content_hash, computed in Python on this path, equals the server's sha256_hex."""
    from memctl.data.checks import check_constraints

    engine, _ = scratch_migrated
    ds = load_npz(dataset_path, limit=300)
    ds = Dataset([*ds.texts, ds.texts[0]], np.vstack([ds.embeddings, ds.embeddings[:1]]), ds.model, ds.source)
    result = await seed(engine, ds, orgs=2, agents=1, batch_size=100)
    assert result.rows == 301 and result.memories_inserted == 300 and result.duplicates_skipped == 1
    assert await _count(engine, "SELECT count(*) FROM agent_memory.memory_embeddings e JOIN agent_memory.memories m "
                                "ON m.org_id = e.org_id AND m.id = e.memory_id AND m.content_hash = e.content_hash") \
        == 300
    assert (await check_constraints(engine)).violations == []
