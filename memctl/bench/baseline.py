"""--baseline: compare a run with a stored one (the JSON of --output) and list what regressed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memctl.bench.types import SCHEMA_VERSION, BenchResult, Regression
from memctl.errors import ConfigError

DEFAULT_MAX_RECALL_DROP = 0.01  # absolute recall@k
DEFAULT_MAX_LATENCY_GROWTH = 0.20  # relative p95 growth


def load_baseline(path: Path) -> dict[str, Any]:
    """A baseline written by ``bench-hnsw --output``. Raises ConfigError if unreadable or another version."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION or "points" not in data:
        raise ConfigError(f"{path} is not a bench-hnsw result of schema_version {SCHEMA_VERSION}")
    return data


def compare(result: BenchResult, baseline: dict[str, Any], max_recall_drop: float = DEFAULT_MAX_RECALL_DROP,
            max_latency_growth: float = DEFAULT_MAX_LATENCY_GROWTH) -> list[Regression]:
    """Every ef_search measured in both runs where recall@k (mean) dropped by more than
    ``max_recall_drop`` (absolute) or p95 grew by more than ``max_latency_growth`` (relative)."""
    out = []
    for old in baseline["points"]:
        new = result.point(int(old["ef_search"]))
        if new is None:
            continue
        drop = old["recall_mean"] - new.recall_mean
        if drop > max_recall_drop:
            out.append(Regression("recall_mean", new.ef_search, old["recall_mean"], new.recall_mean,
                                  round(-drop, 4), max_recall_drop))
        if old["p95_ms"] > 0:
            growth = (new.p95_ms - old["p95_ms"]) / old["p95_ms"]
            if growth > max_latency_growth:
                out.append(Regression("p95_ms", new.ef_search, old["p95_ms"], new.p95_ms, round(growth, 4),
                                      max_latency_growth))
    return out
