"""--output and --baseline: a run saved as versioned JSON, and a run compared with a saved one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from memctl.bench.options import DEFAULT_MAX_LATENCY_GROWTH, DEFAULT_MAX_RECALL_DROP
from memctl.bench.types import READABLE_VERSIONS, BenchResult, Regression
from memctl.errors import ConfigError


def save_result(result: BenchResult, path: Path) -> Path:
    """Write ``result`` to ``path`` as the JSON document of ``--output`` (``schema_version``
    :data:`SCHEMA_VERSION`: every field, plus ``valid`` and ``ok``). Raises ConfigError if unwritable."""
    data = {**dataclasses.asdict(result), "valid": result.valid, "ok": result.ok}
    data["plan"]["ok"] = result.plan.ok  # the one derived flag below the top (as --json prints it)
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Path(path)


def load_baseline(path: Path) -> dict[str, Any]:
    """A baseline written by ``bench-hnsw --output`` (schema_version 2 or 3). Raises ConfigError if
    unreadable or of another version."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema_version") not in READABLE_VERSIONS or "points" not in data:
        readable = " or ".join(map(str, READABLE_VERSIONS))
        raise ConfigError(f"{path} is not a bench-hnsw result of schema_version {readable}")
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
