"""The package's shape, checked: what lies at the top of memctl/, module sizes, no import cycle,
no import from the library back up into the CLI, and a light ``import memctl`` / ``--help``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "memctl"
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "errors.py", "config.py", "progress.py"}
MAX_LINES = 400
HEAVY = ("numpy", "sqlalchemy", "asyncpg", "alembic", "pgvector")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """memctl modules imported anywhere in ``path`` (functions included), TYPE_CHECKING blocks excluded."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules}


def test_top_level_holds_only_the_core_modules_and_packages():
    flat = {p.name for p in PACKAGE.glob("*.py")}
    assert flat == TOP_LEVEL_MODULES, flat ^ TOP_LEVEL_MODULES


@pytest.mark.parametrize("tree", ["memctl", "migrations"])
def test_no_module_over_400_lines(tree):
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / tree).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, big


def test_no_import_cycle_and_nothing_imports_the_cli():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    entry_points = ("memctl.cli", "memctl.__main__")  # python -m memctl runs the CLI
    upward = {m: sorted(d for d in deps if d.startswith("memctl.cli")) for m, deps in graph.items()
              if not m.startswith(entry_points) and any(d.startswith("memctl.cli") for d in deps)}
    assert not upward, f"library modules importing the CLI: {upward}"
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(dep):], dep]))
            if dep not in state:
                walk(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])


def test_import_graph_sees_real_edges():
    # The check above would pass vacuously if _imports found nothing: it must see real edges.
    modules = _modules()
    assert "memctl.db.engine" in _imports(modules["memctl.migration.runner"], modules)
    assert "memctl.db.embedded" in _imports(modules["memctl.db.engine"], modules)


@pytest.mark.parametrize("code", [
    "import memctl",
    "import memctl.cli",
    "from memctl.cli import app; from typer.testing import CliRunner; "
    "assert CliRunner().invoke(app, ['--help']).exit_code == 0; "
    "assert CliRunner().invoke(app, ['bench-hnsw', '--help']).exit_code == 0",
])
def test_import_and_help_load_nothing_heavy(code):
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"{code!r} loaded {out.stdout.strip()}"


def test_public_api_names_load_on_first_use():
    probe = ("import sys, memctl\nassert 'numpy' not in sys.modules\n"
             "from memctl import bench_hnsw, upgrade, verify_schema, ExitCode\n"
             "assert callable(bench_hnsw) and callable(upgrade) and ExitCode.LOCKED == 75\n"
             "assert 'numpy' in sys.modules and 'sqlalchemy' in sys.modules\n"
             "missing = [n for n in memctl.__all__ if not hasattr(memctl, n)]\nassert not missing, missing")
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT)
