"""--plot: the recall-QPS curve of a sweep as a PNG (matplotlib, the optional ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path

from memctl.bench.types import BenchResult
from memctl.errors import ConfigError


def plot_recall_qps(result: BenchResult, path: Path) -> Path:
    """Write recall@k (x) against QPS (y, log scale), one labelled point per ef_search, to ``path``.

    Raises ConfigError when matplotlib is not installed (``pip install 'memctl[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'memctl[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [p.recall_mean for p in result.points]
    ys = [p.qps for p in result.points]
    ax.plot(xs, ys, marker="o")
    for p in result.points:
        ax.annotate(f"ef={p.ef_search}", (p.recall_mean, p.qps), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{result.k}")
    ax.set_ylabel("QPS (one connection)")
    ax.set_title(f"{result.model}: {result.index}, {result.rows:,} rows, m={result.fingerprint.m}, "
                 f"ef_construction={result.fingerprint.ef_construction}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
