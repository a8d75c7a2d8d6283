"""``bench-hnsw``: the benchmark an operator of a pgvector database needs (issue 4).

Fingerprint of the environment, plan checks (a run off the model's HNSW index is INVALID),
cached exact top-k, recall@k (by id and tie-tolerant by distance), an ef_search sweep with
p50/p95/p99 and QPS, tenant-filtered groups under pgvector's iterative scans, first pass vs
steady state with buffers, concurrency on an asyncpg pool, index builds, a bare-asyncpg
comparison, and baselines for trend tracking.
"""

from memctl.bench.baseline import compare, load_baseline
from memctl.bench.plot import plot_recall_qps
from memctl.bench.run import DEFAULT_EF_SEARCH, REFERENCE_EF, BenchOptions, bench_hnsw
from memctl.bench.types import (
    BenchResult,
    BuildPoint,
    ConcurrencyLevel,
    FilteredCell,
    Fingerprint,
    PlanCheck,
    RawComparison,
    Regression,
    SweepPoint,
    TargetHit,
    WarmCold,
)

__all__ = [
    "DEFAULT_EF_SEARCH", "REFERENCE_EF", "BenchOptions", "BenchResult", "BuildPoint", "ConcurrencyLevel",
    "FilteredCell", "Fingerprint", "PlanCheck", "RawComparison", "Regression", "SweepPoint", "TargetHit", "WarmCold",
    "bench_hnsw", "compare", "load_baseline", "plot_recall_qps",
]
