"""How long ``memctl --help`` takes to start, against a bare Python start, in one run.

    python benchmarks/cli_startup.py [--runs 15]

Prints the median wall time (seconds) of ``python -c pass``, ``memctl --help`` and
``memctl bench-hnsw --help`` (the largest command), the ratios to the bare start, and which heavy
modules each loads (none should: the CLI imports the library when a command runs). Target: under
0.3 s for ``memctl --help`` on the project's 2-core machines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("numpy", "sqlalchemy", "asyncpg", "alembic", "pgvector")
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "memctl --help": [sys.executable, "-m", "memctl", "--help"],
    "memctl bench-hnsw --help": [sys.executable, "-m", "memctl", "bench-hnsw", "--help"],
}


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def heavy_modules(args: list[str]) -> list[str]:
    probe = ("import sys; from memctl.cli import app; from typer.testing import CliRunner; "
             f"CliRunner().invoke(app, {args!r}); print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    results = {name: median_seconds(cmd, runs) for name, cmd in CASES.items()}
    bare = results["python -c pass"]
    print(f"median of {runs} runs, seconds (ratio to a bare python start)")
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds:6.3f}  ({seconds / bare:4.1f}x)")
    for args in (["--help"], ["bench-hnsw", "--help"]):
        print(f"  heavy modules loaded by memctl {' '.join(args)}: {heavy_modules(args) or 'none'}")


if __name__ == "__main__":
    main()
