"""What a bench-hnsw run is asked to do: :class:`BenchOptions` and the defaults it starts from.

No numpy or database import here, so the CLI can show these defaults in ``--help`` cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memctl.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

# The default sweep: from below k to 10x pgvector's default ef_search (40), where recall@10 on
# real text embeddings passes 0.99 (the smallest ef_search reaching a target is reported).
DEFAULT_EF_SEARCH = (10, 20, 40, 80, 120, 200, 400)
DEFAULT_TARGETS = (0.95, 0.99)
REFERENCE_EF = 40  # pgvector's default hnsw.ef_search: warm/cold, filtered, concurrency, --vs-raw, --build
DEFAULT_MAX_SCAN_TUPLES = (1000, 20000)  # 20000 is pgvector's default hnsw.max_scan_tuples
DEFAULT_MAX_RECALL_DROP = 0.01  # --baseline: absolute drop of recall@k
DEFAULT_MAX_LATENCY_GROWTH = 0.20  # --baseline: relative growth of p95
# A p95 change smaller than this is scheduler jitter on a shared machine, whatever its share (ms).
MIN_LATENCY_CHANGE_MS = 0.25
TRUTH_SOURCES = ("database", "numpy")


@dataclass
class BenchOptions:
    """What to run. Defaults are a sweep only; each optional part is switched on by its field.

    ``queries`` (q, d) float32 (None: sample ``num_queries`` stored embeddings). ``org``: an
    organisation slug (iterative scan relaxed_order). ``force_index``: enable_seqscan /
    bitmapscan / sort off for the approximate queries (pgvector README, "Troubleshooting"), else
    the planner decides and a run off the index is INVALID. ``truth``: 'database' or 'numpy'.
    ``window_s`` / ``warmup_s``: seconds per concurrency level. ``baseline``: a loaded --output
    JSON to compare with.
    """

    model_name: str | None = None
    queries: np.ndarray | None = None
    num_queries: int = 500
    k: int = 10
    ef_search: tuple[int, ...] = DEFAULT_EF_SEARCH
    target_recall: tuple[float, ...] = DEFAULT_TARGETS
    org: str | None = None
    force_index: bool = True
    truth: str = "database"
    cache_dir: Path | None = None
    warm_cold_queries: int = 20
    filters: bool = False
    filter_queries: int = 100
    max_scan_tuples: tuple[int, ...] = DEFAULT_MAX_SCAN_TUPLES
    concurrency: tuple[int, ...] = ()
    window_s: float = 5.0
    warmup_s: float = 1.0
    vs_raw: bool = False
    build: bool = False
    sweep_m: tuple[int, ...] = ()
    sweep_ef_construction: tuple[int, ...] = ()
    maintenance_work_mem: str | None = None
    parallel_workers: int | None = None
    baseline: dict[str, Any] | None = None
    baseline_name: str | None = None
    max_recall_drop: float = DEFAULT_MAX_RECALL_DROP
    max_latency_growth: float = DEFAULT_MAX_LATENCY_GROWTH
    repeat: int | None = None  # sweeps per ef_search; None: 3 with a baseline (noise-aware), else 1
    min_recall: float | None = None
    max_p95_ms: float | None = None

    @property
    def repeats(self) -> int:
        """How many times each ef_search is measured (:attr:`repeat`, default 3 against a baseline)."""
        return self.repeat if self.repeat is not None else (3 if self.baseline is not None else 1)

    def check(self) -> None:
        """Raise ConfigError for values no run can use."""
        if self.k < 1 or self.num_queries < 1 or not self.ef_search or min(self.ef_search) < 1:
            raise ConfigError("k, --num-queries and every ef_search must be at least 1")
        if self.truth not in TRUTH_SOURCES:
            raise ConfigError(f"--truth must be one of {', '.join(TRUTH_SOURCES)}")
        if self.concurrency and min(self.concurrency) < 1:
            raise ConfigError("every --concurrency level must be at least 1")
        if any(not 0 < t <= 1 for t in self.target_recall):
            raise ConfigError("every --target-recall must be in (0, 1]")
        if self.filters and self.org is not None:
            raise ConfigError("--filters measures organisation groups of every size; it cannot be combined with --org")
        if self.window_s <= 0 or self.warmup_s < 0:
            raise ConfigError("--window must be positive and --warmup not negative")
        if self.repeat is not None and not 1 <= self.repeat <= 100:
            raise ConfigError("--repeat must be between 1 and 100")
        if self.min_recall is not None and not 0 < self.min_recall <= 1:
            raise ConfigError("--min-recall must be in (0, 1]")
        if self.max_p95_ms is not None and self.max_p95_ms <= 0:
            raise ConfigError("--max-p95-ms must be positive")
