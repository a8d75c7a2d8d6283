"""API tokens are stored only as SHA-256 hashes (schema.md api_tokens: no secret at rest)."""

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.tenants import make_org


async def test_only_the_hash_of_a_token_can_be_stored(migrated):
    org, _agent = await make_org(migrated, "tok-a")
    secret = "mk_live_5f3a9c0e1d2b4a6f8e7c"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    async with migrated.connect() as conn:
        columns = set((await conn.execute(text(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'agent_memory.api_tokens'::regclass "
            "AND attnum > 0 AND NOT attisdropped"))).scalars())
    # No column can hold the secret: the display prefix is 8 characters, the rest are ids, names, times.
    assert {c for c in columns if "token" in c or "secret" in c or "key" in c} == {"token_prefix", "token_hash"}
    insert = text("INSERT INTO agent_memory.api_tokens (org_id, name, token_prefix, token_hash) "
                  "VALUES (:o, 'ci', :prefix, :hash)")
    with pytest.raises(IntegrityError, match="ck_api_tokens_token_hash_sha256"):
        async with migrated.begin() as conn:
            await conn.execute(insert, {"o": org, "prefix": secret[:8], "hash": secret})
    with pytest.raises(IntegrityError, match="ck_api_tokens_token_prefix_length"):
        async with migrated.begin() as conn:
            await conn.execute(insert, {"o": org, "prefix": secret, "hash": digest})
    async with migrated.begin() as conn:
        await conn.execute(insert, {"o": org, "prefix": secret[:8], "hash": digest})
