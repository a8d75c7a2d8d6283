"""memctl installed the normal way: a wheel in a fresh virtualenv, run from a directory that has
no migrations/ of its own. The Alembic chain must travel inside the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from memctl.migration.revisions import head_revision
from tests.conftest import url_arg

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package_and_maps_the_migrations():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(tool["packages"]) == sorted([*find_packages(str(ROOT), include=["memctl*"]),
                                               "memctl.migration.scripts"])
    assert tool["package-dir"]["memctl.migration.scripts"] == "migrations"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv (system site-packages for the dependencies) with memctl's wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("memctl-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], check=True)
    subprocess.run([str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    return tmp / "venv" / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "memctl"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_wheel_migrates_verifies_and_lists_history_from_any_directory(installed, db_url, tmp_path):
    where = subprocess.run([str(installed / "python"), "-c", "import memctl.migration.revisions as r; "
                            "print(r.__file__); print(r.MIGRATIONS_DIR)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(installed.parent) in p for p in where), where  # the wheel's copy, not the source tree
    u = url_arg(db_url)
    sql = _run(installed, tmp_path, "migrate", "--sql")
    assert sql.returncode == 0 and sql.stdout.count("CREATE TABLE agent_memory.") == 27, sql.stderr
    migrated = _run(installed, tmp_path, "migrate", "--json", "--database-url", u)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["after"] == head_revision()
    verified = _run(installed, tmp_path, "verify-schema", "--json", "--database-url", u)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["clean"] is True  # the packaged files' checksums match
    history = _run(installed, tmp_path, "history", "--json", "--database-url", u)
    assert history.returncode == 0 and all(r["applied"] for r in json.loads(history.stdout)["revisions"])
    seeded = _run(installed, tmp_path, "seed", "--synthetic", "300", "--json", "--database-url", u)
    assert seeded.returncode == 0, seeded.stderr  # the synthetic-data model ships in the wheel
    assert json.loads(seeded.stdout)["memories_inserted"] == 300
