"""memctl erase: a user, and everything derived from them, leaves no trace, also when a run is killed
mid-way; an organisation goes whole; nobody else's rows move (issue 14, the right to erasure)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli.app import app
from memctl.data.checks import check_constraints
from memctl.data.datasets import load_npz
from memctl.data.seed import seed
from memctl.models.ddl import UUID_RE
from tests.conftest import url_arg
from tests.transfer.rich import enrich, row_hashes

pytestmark = pytest.mark.asyncio(loop_scope="session")
runner = CliRunner()
UUID_IN_TEXT = UUID_RE.strip("^$")


async def mentions(engine, ids) -> dict[str, int]:
    """Per table of the schema, rows whose JSON form holds any of ``ids`` (in any letter case)."""
    found = {}
    async with engine.connect() as conn:
        tables = (await conn.execute(text("SELECT relname FROM pg_class WHERE relnamespace = "
                                          "'agent_memory'::regnamespace AND relkind = 'r'"))).scalars().all()
        for t in tables:
            n = (await conn.execute(text(
                f"SELECT count(*) FROM agent_memory.{t} AS r, LATERAL regexp_matches(lower(row_to_json(r)::text), "
                f"'({UUID_IN_TEXT})', 'g') AS m WHERE m[1]::uuid = ANY(:ids)"), {"ids": list(ids)})).scalar()
            if n:
                found[t] = n
    return found


async def _scalar(engine, sql, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


async def test_erase_a_user_then_an_organisation(scratch_migrated, dataset_path):
    engine, url = scratch_migrated
    await seed(engine, load_npz(dataset_path, limit=3000), orgs=2, agents=1)
    async with engine.begin() as conn:
        rich = await enrich(conn, "seed-org-01")
        # alice gets 1,000 more memories, so that a run with one row per batch can be killed half-way
        await conn.execute(text("UPDATE agent_memory.memories SET user_id = :a WHERE id IN (SELECT id FROM "
                                "agent_memory.memories WHERE org_id = :o AND user_id IS NULL LIMIT 1000)"),
                           {"a": rich.alice, "o": rich.org})
        alice_memories = (await conn.execute(text("SELECT id FROM agent_memory.memories WHERE user_id = :a"),
                                             {"a": rich.alice})).scalars().all()
        org2 = (await conn.execute(text("SELECT id FROM agent_memory.organizations WHERE slug = :s"),
                                   {"s": "seed-org-02"})).scalar()
    assert (await check_constraints(engine)).violations == []
    gone = {rich.alice, rich.mixed, *alice_memories}
    assert len(alice_memories) == 1120 and set(await mentions(engine, gone)) >= {
        "users", "memories", "memory_versions", "memory_embeddings", "memory_tags", "memory_relationships",
        "memory_collection_items", "consolidated_memories", "stage_memories", "sessions", "api_tokens"}
    other_org = await row_hashes(engine, org2)
    bob_memories = await _scalar(engine, "SELECT count(*) FROM agent_memory.memories WHERE user_id = :b", b=rich.bob)

    # --dry-run counts what would go and writes nothing
    before = await mentions(engine, gone)
    out = await asyncio.to_thread(invoke, "erase", "--org", "seed-org-01", "--user", "alice", "--dry-run", "--json",
                                  "--database-url", url_arg(url))
    assert out.exit_code == 0, out.stderr
    plan = {t["table"]: t for t in json.loads(out.stdout)["tables"]}
    assert plan["memories"]["removed"] == 1120 and plan["users"]["removed"] == 1
    assert plan["consolidated_memories"]["removed"] == 1 and plan["memory_embeddings"]["removed"] == 1120
    assert plan["stage_memories (raw_memory_refs edited)"]["removed"] == 4  # 2 tasks x 2 stages cite her
    assert await mentions(engine, gone) == before

    # killed with SIGKILL half-way, then run again: the job is finished
    proc = subprocess.Popen([sys.executable, "-m", "memctl", "erase", "--org", "seed-org-01", "--user", "alice",
                             "--yes", "--batch-size", "1", "--database-url", url_arg(url)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    left = len(alice_memories)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        left = await _scalar(engine, "SELECT count(*) FROM agent_memory.memories WHERE user_id = :a", a=rich.alice)
        if left < 900:
            break
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < left < 1120 and await _scalar(engine, "SELECT count(*) FROM agent_memory.users WHERE id = :a",
                                             a=rich.alice) == 1  # killed mid-way: the user is still there
    out = await asyncio.to_thread(invoke, "erase", "--org", "seed-org-01", "--user", "alice", "--yes", "--json",
                                  "--database-url", url_arg(url))
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["done"] and {t["table"]: t["remaining"] for t in doc["tables"]} == dict.fromkeys(
        [t["table"] for t in doc["tables"]], 0)
    assert await mentions(engine, gone) == {}  # no row anywhere holds alice's id or one of her memories'
    assert (await check_constraints(engine)).violations == []
    assert await row_hashes(engine, org2) == other_org
    assert await _scalar(engine, "SELECT count(*) FROM agent_memory.memories WHERE user_id = :b", b=rich.bob) == \
        bob_memories
    assert await _scalar(engine, "SELECT count(*) FROM agent_memory.consolidated_memories WHERE id = :c",
                         c=rich.bobs) == 1  # built from bob's memories only: kept
    assert await _scalar(engine, "SELECT count(*) FROM agent_memory.memories WHERE id = ANY(:m) AND "
                                 "consolidated_into_id IS NULL AND NOT is_consolidated",
                         m=[rich.bob_memories[0], rich.bob_memories[3]]) == 2  # unlinked from the deleted one
    assert await _scalar(engine, "SELECT count(*) FROM agent_memory.users WHERE external_id = 'alice'") == 0
    out = await asyncio.to_thread(invoke, "erase", "--org", "seed-org-01", "--user", "alice", "--yes",
                                  "--database-url", url_arg(url))
    assert out.exit_code == 2 and "no user with external id 'alice'" in out.stderr

    # another session holds bob's consolidation: skipped, reported left (exit 1), bob and his memories stay
    async with engine.connect() as holder:
        await holder.execute(text("SELECT id FROM agent_memory.consolidated_memories WHERE id = :c FOR NO KEY UPDATE"),
                             {"c": rich.bobs})
        out = await asyncio.to_thread(invoke, "erase", "--org", "seed-org-01", "--user", "bob", "--yes", "--json",
                                      "--database-url", url_arg(url))
        await holder.rollback()
    assert out.exit_code == 1 and "rows in scope are left" in out.stderr, out.stderr
    left = {t["table"]: t["remaining"] for t in json.loads(out.stdout)["tables"]}
    assert left["consolidated_memories"] == 1 and left["users"] == 1 and left["memories"] == bob_memories
    assert await _scalar(engine, "SELECT count(*) FROM agent_memory.memories WHERE user_id = :b", b=rich.bob) == \
        bob_memories

    # revision 0016: a plain DELETE of a user takes their sessions and the consolidations built from their
    # memories too (the held consolidation above is still there: the trigger deletes it)
    bob_sessions = await _scalar(engine, "SELECT array_agg(id) FROM agent_memory.sessions WHERE user_id = :b",
                                 b=rich.bob)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM agent_memory.users WHERE id = :b"), {"b": rich.bob})
    assert await mentions(engine, {rich.bob, rich.bobs, *rich.bob_memories, *bob_sessions}) == {}
    assert (await check_constraints(engine)).violations == []

    # an organisation: --max-runtime 0 stops before the first batch (exit 1, nothing lost), then whole
    org1 = await row_hashes(engine, rich.org)
    out = await asyncio.to_thread(invoke, "erase", "--org", "seed-org-02", "--yes", "--max-runtime", "0s",
                                  "--database-url", url_arg(url))
    assert out.exit_code == 1 and "run memctl erase again" in out.stderr
    assert await row_hashes(engine, org2) == other_org
    out = await asyncio.to_thread(invoke, "erase", "--org", "seed-org-02", "--yes", "--json",
                                  "--database-url", url_arg(url))
    assert out.exit_code == 0 and json.loads(out.stdout)["done"], out.stderr
    assert await mentions(engine, {org2}) == {} and await row_hashes(engine, rich.org) == org1
    assert (await check_constraints(engine)).violations == []
