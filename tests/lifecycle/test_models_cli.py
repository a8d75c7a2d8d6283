"""memctl models through the CLI: the refusals (exit 1, nothing changed), and the whole lifecycle for
a 768-dimension vector model and a 3072-dimension halfvec one (a change of dimension and storage)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli import render
from memctl.cli.app import app
from memctl.data.checks import check_constraints
from memctl.data.datasets import load_npz
from memctl.data.datasets import synthetic as synthetic_dataset
from memctl.data.seed import seed
from memctl.db.locks import advisory_lock
from memctl.errors import ModelUnavailable
from memctl.repositories import org_scope
from memctl.schema.verify import verify_schema
from tests.conftest import url_arg
from tests.lifecycle import synthetic

pytestmark = pytest.mark.asyncio(loop_scope="session")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def cli(url, *args: str):
    """``memctl ARGS --database-url URL --json`` in this process, off the event loop."""
    return asyncio.to_thread(CliRunner().invoke, app, [*args, "--database-url", url_arg(url), "--json"])


async def default_model(engine) -> str:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT name FROM agent_memory.embedding_models WHERE is_default"))).scalar()


async def test_set_default_and_retire_refuse_and_change_nothing(scratch_migrated, dataset_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=200), orgs=2, agents=1)
    assert (await cli(url, "models", "add", "synth-768", "--dim", "768")).exit_code == 0

    unindexed = await cli(url, "models", "set-default", "synth-768")
    assert unindexed.exit_code == 1 and "refused: model 'synth-768' is registered" in unindexed.stderr
    assert json.loads(unindexed.stdout)["changed"] is False and await default_model(engine) == MINILM

    one_org = await cli(url, "models", "backfill", "synth-768", "--embedder", "tests.lifecycle.synthetic:embed_768",
                        "--org", "seed-org-01")
    assert one_org.exit_code == 0, one_org.stderr
    assert (await cli(url, "models", "index", "synth-768")).exit_code == 0
    assert (await verify_schema(engine, url)).clean

    low = await cli(url, "models", "set-default", "synth-768")
    assert low.exit_code == 1 and "--min-coverage 1.0" in low.stderr
    assert json.loads(low.stdout)["coverage"] < 0.75 and await default_model(engine) == MINILM

    canary = await cli(url, "models", "set-default", "synth-768", "--org", "seed-org-01")
    assert canary.exit_code == 0 and json.loads(canary.stdout)["changed"] is True
    # bench-hnsw --org measures the model that organisation searches with
    bench = await cli(url, "bench-hnsw", "--org", "seed-org-01", "-q", "5", "--ef-search", "40")
    assert bench.exit_code == 0 and json.loads(bench.stdout)["model"] == "synth-768", bench.stderr
    # the global scope is the organisations that follow the default: seed-org-02 alone, not covered at all
    still_low = await cli(url, "models", "set-default", "synth-768", "--min-coverage", "0.4")
    assert still_low.exit_code == 1 and json.loads(still_low.stdout)["coverage"] == 0.0

    in_use = await cli(url, "models", "retire", "synth-768", "--yes")
    assert in_use.exit_code == 1 and "in use by organisation seed-org-01" in in_use.stderr
    default = await cli(url, "models", "retire", MINILM, "--yes")
    assert default.exit_code == 1 and "the global default" in default.stderr
    listed = {m["name"]: m for m in json.loads((await cli(url, "models", "list", "--by-org")).stdout)["models"]}
    assert listed["synth-768"]["state"] == "ready" and listed["synth-768"]["default_for"] == ["seed-org-01"]
    assert [i["status"] for i in listed["synth-768"]["indexes"]] == ["valid", "valid"]
    assert {o["org"]: o["uses"] for o in listed["synth-768"]["by_org"]} == {"seed-org-01": True,
                                                                           "seed-org-02": False}

    # choosing the global default for an organisation removes its own choice; then it can retire
    back = await cli(url, "models", "set-default", MINILM, "--org", "seed-org-01")
    assert back.exit_code == 0 and json.loads(back.stdout)["changed"] is True
    async with engine.begin() as conn:  # as retire leaves it while it deletes: searches of it stop at once
        await conn.execute(text("UPDATE agent_memory.embedding_models SET state = 'retiring' WHERE name = 'synth-768'"))
        org = (await conn.execute(text("SELECT id FROM agent_memory.organizations LIMIT 1"))).scalar()
    async with org_scope(engine, org) as s:
        with pytest.raises(ModelUnavailable, match="is retiring"):
            await s.memories.search(synthetic.embed_768(["x"])[0], 5, model="synth-768")
    no_answer = await asyncio.to_thread(CliRunner().invoke, app, ["models", "retire", "synth-768",
                                                                   "--database-url", url_arg(url)], input="")
    assert no_answer.exit_code == 1 and "aborted" in no_answer.stderr
    gone = await cli(url, "models", "retire", "synth-768", "--yes")
    assert gone.exit_code == 0, gone.stderr
    assert json.loads(gone.stdout)["deleted"]["memory_embeddings"] > 0
    assert [m["name"] for m in json.loads((await cli(url, "models", "list")).stdout)["models"]] == [MINILM]
    assert (await verify_schema(engine, url)).clean and (await check_constraints(engine)).clean


@pytest.mark.parametrize(("dim", "storage"), [(768, "vector"), (3072, "halfvec")])
async def test_lifecycle_with_another_dimension_and_storage(scratch_migrated, dataset_path, dim, storage):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=300), orgs=2, agents=1)
    name = f"synth-{dim}"
    if storage == "halfvec":  # over vector's 2000-dimension HNSW limit: refused with the way out
        too_big = await cli(url, "models", "add", name, "--dim", str(dim))
        assert too_big.exit_code == 2 and "--storage halfvec" in too_big.stderr
    added = await cli(url, "models", "add", name, "--dim", str(dim), "--storage", storage, "--distance", "l2")
    assert added.exit_code == 0 and json.loads(added.stdout)["state"] == "registered"
    filled = await cli(url, "models", "backfill", name, "--embedder", f"tests.lifecycle.synthetic:embed_{dim}")
    assert filled.exit_code == 0 and json.loads(filled.stdout)["written"] == 300
    built = await cli(url, "models", "index", name, "--memory", "128MB")
    assert built.exit_code == 0, built.stderr
    assert json.loads(built.stdout)["state"] == "ready"
    async with engine.connect() as conn:
        indexdef = (await conn.execute(text("SELECT pg_get_indexdef(to_regclass(:i))"), {
            "i": f"agent_memory.ix_memory_embeddings_hnsw_{json.loads(added.stdout)['id']}"})).scalar()
        org, memory, content = (await conn.execute(text(
            "SELECT org_id, id, content FROM agent_memory.memories ORDER BY id LIMIT 1"))).one()
    assert f"{storage}({dim})" in indexdef and f"{storage}_l2_ops" in indexdef
    assert (await cli(url, "models", "set-default", name)).exit_code == 0
    query = getattr(synthetic, f"embed_{dim}")([content])[0]
    async with org_scope(engine, org) as s:
        assert (await s.memories.current_model()).name == name
        hits = await s.memories.search(query, 5)
        assert hits.model.name == name and hits[0].id == memory and hits[0].distance < 1e-2 and len(hits) == 5
        with pytest.raises(ModelUnavailable, match="needs"):
            await s.memories.search(query[:384], 5)
        with pytest.raises(ModelUnavailable, match="no embedding model named"):
            await s.memories.search(query, 5, model="no/such-model")
    assert (await verify_schema(engine, url)).clean
    assert (await cli(url, "models", "set-default", MINILM)).exit_code == 0
    assert (await cli(url, "models", "retire", name, "--yes")).exit_code == 0
    async with org_scope(engine, org) as s:
        with pytest.raises(ModelUnavailable):
            await s.memories.search(query, 5, model=name)
        assert len(await s.memories.search(synthetic.embed_384(["x"])[0], 5)) == 5


async def test_what_the_models_commands_refuse(scratch_migrated, dataset_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=100), orgs=1, agents=1)
    # terminal escapes, blanks or invisible characters that make a second model printing like the first
    for name in ("evil\x1b[2Jname", " e5", "", "\u200be5", "ab\u202ecd", "e5\u2028x"):
        out = await cli(url, "models", "add", name, "--dim", "384")
        assert out.exit_code == 2 and "control or invisible" in out.stderr, name
    # names are printed literally, never read as rich markup or :emoji: codes (a[/]b was a traceback)
    for name in ("a[/]b", "x:thumbs_up:y"):
        assert (await cli(url, "models", "add", name, "--dim", "3")).exit_code == 0
    width, render.stdout.width = render.stdout.width, 400  # wide enough that no cell wraps
    try:
        table = await asyncio.to_thread(CliRunner().invoke, app, ["models", "list", "--database-url", url_arg(url)])
    finally:
        render.stdout.width = width
    assert table.exit_code == 0 and "a[/]b" in table.stdout and "x:thumbs_up:y" in table.stdout, table.stderr
    for name in ("a[/]b", "x:thumbs_up:y"):
        assert (await cli(url, "models", "retire", name, "--yes")).exit_code == 0
    assert (await cli(url, "models", "add", "hv", "--dim", "384", "--storage", "halfvec")).exit_code == 0
    assert (await cli(url, "models", "add", "plain", "--dim", "384")).exit_code == 0
    # vectors an index cannot hold: refused before anything is written (was: NaN distances, a failed build)
    for model, embedder, why in (("plain", "embed_huge_384", "squared norm overflows"),
                                 ("hv", "embed_beyond_halfvec_384", "halfvec's range")):
        out = await cli(url, "models", "backfill", model, "--embedder", f"tests.lifecycle.synthetic:{embedder}")
        assert out.exit_code == 2 and why in out.stderr, out.stderr
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM agent_memory.memory_embeddings WHERE model_id > 1"))
                ).scalar() == 0
    zero = await cli(url, "models", "index", "plain", "--memory", "0")
    assert zero.exit_code == 2 and "at least 1MB" in zero.stderr

    # retire while a backfill of the model holds its lock: 75, and nothing changed (was: state retiring)
    async with advisory_lock(engine, "models plain"):
        held = await cli(url, "models", "retire", "plain", "--yes")
    assert held.exit_code == 75 and json.loads(held.stdout)["run"]["command"] == "models retire"
    async with engine.connect() as conn:
        assert (await conn.execute(text(
            "SELECT state FROM agent_memory.embedding_models WHERE name = 'plain'"))).scalar() == "registered"

    # coverage counts current embeddings of active memories and consolidated memories
    filled = await cli(url, "models", "backfill", "plain", "--embedder", "tests.lifecycle.synthetic:embed_384")
    assert filled.exit_code == 0 and (await cli(url, "models", "index", "plain")).exit_code == 0
    async with engine.begin() as conn:
        org, memory = (await conn.execute(text("SELECT org_id, id FROM agent_memory.memories LIMIT 1"))).one()
        await conn.execute(text("UPDATE agent_memory.memories SET content = 'changed, not re-embedded' WHERE id = :m"),
                           {"m": memory})
    stale = await cli(url, "models", "set-default", "plain")
    assert stale.exit_code == 1 and json.loads(stale.stdout)["embedded"] == 99  # the stale one does not count
    unfixed = await cli(url, "models", "backfill", "plain", "--embedder", "tests.lifecycle.synthetic:embed_384")
    assert unfixed.exit_code == 1 and (json.loads(unfixed.stdout)["remaining"], json.loads(unfixed.stdout)["stale"]) \
        == (1, 1)  # without --stale it is not called done
    # a duplicate add with a vector of the current content replaces the stale one of the same model
    async with org_scope(engine, org) as s:
        content = (await s.memories.get(memory)).content
        agent = (await s.memories.get(memory)).agent_id
        again = await s.memories.add(agent, content, embeddings={"plain": synthetic.embed_384([content])[0]})
        assert again.id == memory and not again.created
    listed = {m["name"]: m for m in json.loads((await cli(url, "models", "list")).stdout)["models"]}
    assert (listed["plain"]["covered_memories"], listed["plain"]["stale_rows"], listed["plain"]["coverage"]) == (
        100, 0, 1.0)
    async with engine.begin() as conn:  # stale again, for the --stale run below
        await conn.execute(text("UPDATE agent_memory.memory_embeddings SET content_hash = repeat('0', 64) "
                                "WHERE memory_id = :m AND model_id = (SELECT id FROM agent_memory.embedding_models "
                                "WHERE name = 'plain')"), {"m": memory})
    fixed = await cli(url, "models", "backfill", "plain", "--stale", "--embedder",
                      "tests.lifecycle.synthetic:embed_384")
    assert fixed.exit_code == 0 and json.loads(fixed.stdout)["refreshed"] == 1
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO agent_memory.consolidated_memories (org_id, content, tier, abstraction_level, pattern_type, "
            "source_memory_ids, consolidation_method) "
            "VALUES (:o, 'a summary', 'task', 1, 'summary', ARRAY[:m]::uuid[], 'manual')"), {"o": org, "m": memory})
    unembedded = await cli(url, "models", "set-default", "plain")
    assert unembedded.exit_code == 1 and json.loads(unembedded.stdout)["active"] == 101
    again = await cli(url, "models", "backfill", "plain", "--embedder", "tests.lifecycle.synthetic:embed_384")
    assert json.loads(again.stdout)["tables"] == {"consolidated_memory_embeddings": 1}
    switched = await cli(url, "models", "set-default", "plain")
    assert switched.exit_code == 0 and json.loads(switched.stdout)["coverage"] == 1.0

    # seed never writes into a model being retired
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE agent_memory.embedding_models SET state = 'retiring' WHERE name = 'hv'"))
    with pytest.raises(ModelUnavailable, match="retiring"):
        await seed(engine, synthetic_dataset(10, model="hv"), orgs=1, agents=1)

    # undoing 0013 would forget a model's state: refused, nothing changed, until it is dealt with
    refused = await cli(url, "downgrade", "0012", "--yes")
    assert refused.exit_code == 2 and "undoing 0013 would forget" in refused.stderr
    assert (await cli(url, "models", "retire", "hv", "--yes")).exit_code == 0
    # MiniLM's vector of the memory changed above is stale (only 'plain' was refreshed): retire it too
    assert (await cli(url, "models", "retire", MINILM, "--yes")).exit_code == 0
    # a database below revision 0013: one line naming what to do
    down = await cli(url, "downgrade", "0012", "--yes")
    assert down.exit_code == 0, down.stderr
    old = await cli(url, "models", "list")
    assert old.exit_code == 2 and "needs 0013" in old.stderr.splitlines()[-1]
