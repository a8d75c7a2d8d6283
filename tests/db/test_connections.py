"""Connections the way libpq users expect: TLS modes through a TLS-terminating proxy, libpq URL
parameters and PG* variables, passwords from PGPASSWORD and .pgpass, and one clear line (exit 2)
for a bad port, a refused connection and a server that never answers."""

from __future__ import annotations

import json
import secrets
import ssl
from pathlib import Path

import pytest
import trustme
from sqlalchemy import text
from typer.testing import CliRunner

from memctl.cli import app
from memctl.config import Settings, mask_url, normalise_url
from memctl.db.engine import NO_LIMIT_S, connect_timeout_s, make_engine
from memctl.errors import ConfigError
from tests.cli import one_error_line
from tests.db.test_privileges import run_sql
from tests.db.tls_proxy import SilentServer, TlsProxy

runner = CliRunner()


def cli(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture
def socket_dir(server_url, server_home) -> Path:
    if server_home is None:
        pytest.skip("needs the embedded server's Unix socket (DATABASE_URL is set)")
    return Path(server_url.query["host"])


def test_tls_require_and_verify_full_through_a_proxy(db_url, socket_dir, tmp_path):
    ca, stranger = trustme.CA(), trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    stranger.cert_pem.write_to_path(str(tmp_path / "other.pem"))
    with TlsProxy(socket_dir / ".s.PGSQL.5432", server) as proxy:
        base = f"postgresql://{db_url.username}@127.0.0.1:{proxy.port}/{db_url.database}"
        out = cli("current", "--json", "--database-url", f"{base}?sslmode=require")
        assert out.exit_code == 0 and out.stderr.startswith("memctl: database postgresql+asyncpg://"), out.stderr
        assert proxy.handshakes >= 1
        before = proxy.handshakes
        out = cli("current", "--json", "--database-url", f"{base}?sslmode=verify-full&sslrootcert={tmp_path}/ca.pem")
        assert out.exit_code == 0, out.stderr
        assert proxy.handshakes > before
        client = ca.issue_cert("memctl-client")  # sslcert / sslkey: a client certificate is offered
        client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
        client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
        (tmp_path / "client.key").chmod(0o600)
        out = cli("current", "--database-url", f"{base}?sslmode=verify-ca&sslrootcert={tmp_path}/ca.pem"
                  f"&sslcert={tmp_path}/client.pem&sslkey={tmp_path}/client.key&application_name=tls-probe")
        assert out.exit_code == 0, out.stderr
        out = cli("current", "--database-url", f"{base}?sslmode=verify-full&sslrootcert={tmp_path}/other.pem")
        assert out.exit_code == 2 and out.stdout == "" and "certificate" in one_error_line(out.stderr).lower()
        handshakes, plain = proxy.handshakes, proxy.plain
        out = cli("current", "--database-url", f"{base}?sslmode=disable")
        assert out.exit_code == 0 and proxy.plain > plain and proxy.handshakes == handshakes


async def _seen_by_server(url, *settings: str) -> tuple:
    """The values of ``settings`` in a session opened the way memctl opens them."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return tuple((await conn.execute(text(
                "SELECT " + ", ".join(f"current_setting('{s}')" for s in settings)))).one())
    finally:
        await engine.dispose()


async def test_libpq_parameters_and_pg_environment_reach_the_server(db_url, monkeypatch):
    url = db_url.update_query_dict({"application_name": "probe-app", "options": "-c statement_timeout=4321",
                                    "connect_timeout": "7"})
    assert connect_timeout_s(url) == 7.0
    assert await _seen_by_server(url, "application_name", "statement_timeout") == ("probe-app", "4321ms")
    monkeypatch.setenv("PGAPPNAME", "from-env")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1234")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "3")
    assert connect_timeout_s(db_url) == 3.0 and connect_timeout_s(db_url, 5) == 5.0
    assert await _seen_by_server(db_url, "application_name", "lock_timeout") == ("from-env", "1234ms")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "0")
    assert connect_timeout_s(db_url) == NO_LIMIT_S  # libpq: 0 waits indefinitely
    for bad in ("abc", "-1"):
        with pytest.raises(ConfigError, match="connect_timeout"):
            connect_timeout_s(db_url.update_query_dict({"connect_timeout": bad}))


def test_bad_port_refused_connection_and_a_silent_server_are_one_line_exit_2():
    cases = ["postgresql://u:secret-pw@127.0.0.1:99999/db", "postgresql://u:secret-pw@127.0.0.1:1/db",
             "postgresql://u:secret-pw@127.0.0.1:1/db?connect_timeout=abc"]
    for url in cases:
        out = cli("verify-schema", "--database-url", url)
        assert out.exit_code == 2 and out.stdout == "", (url, out.stderr)
        assert "secret-pw" not in one_error_line(out.stderr), url
    with SilentServer() as silent:
        out = cli("current", "--connect-timeout", "1", "--database-url", f"postgresql://u@127.0.0.1:{silent.port}/db")
        assert out.exit_code == 2 and "no answer within 1 s (--connect-timeout)" in one_error_line(out.stderr)


def test_a_password_holding_at_colon_and_percent_is_never_printed():
    for raw in ("postgresql://alice:Pa@ss:w%rd@127.0.0.1:1/db", "postgresql://alice:Pa%40ss%3Aw%25rd@127.0.0.1:1/db"):
        assert "ss" not in mask_url(raw).split("@")[0] and "***" in mask_url(raw)
        out = cli("current", "--database-url", raw)
        assert out.exit_code == 2 and "Pa@ss" not in out.stderr and "ss:w" not in out.stderr
    for raw in ("postgresql://alice@127.0.0.1:1/db?password=hunter22", "postgresql://a@127.0.0.1:1/db?sslpassword=hunter22"):
        out = cli("current", "--json", "--database-url", raw)  # libpq takes the password as a parameter too
        assert out.exit_code == 2 and "hunter22" not in out.stdout + out.stderr and "***" in out.stderr
    url = normalise_url("postgresql://alice:Pa@ss@db.example:5433/x")

    assert (url.password, url.host, url.port) == ("Pa@ss", "db.example", 5433)
    assert Settings.resolve("postgresql://a:b@h/x", 2.5).connect_timeout == 2.5


def test_password_from_pgpassword_and_pgpass(db_url, server_home, tmp_path):
    if server_home is None:
        pytest.skip("switching pg_hba needs the embedded server")
    role, password = f"memctl_pw_{secrets.token_hex(4)}", "pw-" + secrets.token_hex(6)
    hba = server_home / "pgdata" / "pg_hba.conf"
    original = hba.read_text()
    run_sql(db_url, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    hba.write_text(f"local all {role} scram-sha-256\n" + original)
    run_sql(db_url, "SELECT pg_reload_conf()")
    try:
        u = db_url.set(username=role, password=None).render_as_string(hide_password=False)
        out = cli("current", "--json", "--database-url", u, env={"PGPASSWORD": password})
        assert out.exit_code == 0 and json.loads(out.stdout)["run"]["exit_code"] == 0, out.stderr
        out = cli("current", "--database-url", u, env={"PGPASSWORD": "wrong"})
        assert out.exit_code == 2 and "password authentication failed" in one_error_line(out.stderr)
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"*:*:*:{role}:{password}\n")
        pgpass.chmod(0o600)
        out = cli("current", "--database-url", u, env={"PGPASSFILE": str(pgpass), "PGPASSWORD": None})
        assert out.exit_code == 0, out.stderr
    finally:
        hba.write_text(original)
        run_sql(db_url, "SELECT pg_reload_conf()", f'DROP ROLE "{role}"')
