"""What a bench-hnsw run measures: plain dataclasses, rendered by memctl.cli.render and saved as JSON.

Latencies are client round trips in milliseconds, QPS is queries per second, sizes are bytes.
Recall@k is reported two ways: by id overlap with the exact top-k, and by distance, where a
returned row counts when its distance is within float32 precision of the k-th exact distance
(``DISTANCE_RTOL`` relative: ann-benchmarks' tie-tolerant recall, rows at equal distance are
interchangeable; an absolute 1e-3 counted 233 of 1,000 real queries' near misses as ties, issue 15).
NDCG@k (binary relevance: in the exact top-k or not) beside it, as VectorDBBench reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 5  # version of the JSON written by --output; bump on an incompatible change
# Versions whose ``points`` a baseline comparison can read (3 renamed seconds fields to *_s only; 4 added
# ndcg_mean, p95_runs and noise to the points; 5 the reference query: reference_p50_ms, p50_vs_reference).
READABLE_VERSIONS = (2, 3, 4, 5)
DISTANCE_RTOL = 8 * 1.1920929e-07  # eight float32 ulps (numpy.finfo(float32).eps), relative to the k-th distance


@dataclass
class Fingerprint:
    """The environment a run measured. Sizes in bytes; ``settings`` holds every ``hnsw.*`` GUC."""

    postgres: str
    pgvector: str | None
    index: str
    index_exists: bool
    index_valid: bool | None
    index_bytes: int | None
    m: int | None
    ef_construction: int | None
    opclass: str | None
    expected_opclass: str
    rows: int
    table_live_tuples: int | None
    table_dead_tuples: int | None
    last_vacuum: str | None
    last_autovacuum: str | None
    shared_buffers_bytes: int
    settings: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlanCheck:
    """Whether the approximate query uses the model's HNSW index and the truth query does not."""

    index: str
    approximate_uses_index: bool
    truth_avoids_index: bool
    approximate_plan: str
    truth_plan: str

    @property
    def ok(self) -> bool:
        """True when both plans are as required."""
        return self.approximate_uses_index and self.truth_avoids_index


@dataclass(frozen=True)
class TruthInfo:
    """Where the exact top-k came from: 'database' (index scans off) or 'numpy'; ``elapsed_s``
    seconds to compute or read it and the cache key (row count and max(created_at) of the model)."""

    source: str
    elapsed_s: float
    cached: bool
    key: str


@dataclass(frozen=True)
class Stats:
    """Recall and latency of one batch of queries."""

    recall_mean: float
    recall_min: float
    recall_dist_mean: float
    recall_dist_min: float
    ndcg_mean: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    qps: float
    short_share: float


@dataclass(frozen=True, kw_only=True)
class SweepPoint(Stats):
    """:class:`Stats` at one ``hnsw.ef_search``, on one connection. With ``--repeat`` > 1 the latencies
    and QPS are the medians of the repeats, ``p95_runs`` each repeat's p95 (ms) and ``noise`` their
    spread, (max - min) / median: what a baseline comparison allows for. ``p50_vs_reference``: the
    index's own speed, with the machine's divided out: each query's fastest repeat, their p50, divided
    by the same of the reference query timed beside it (:mod:`memctl.bench.reference`); None when the
    reference query could not run. ``reference_p50_ms`` is that reference p50, ``p50_best_ms`` the
    query's, and ``p50_vs_reference_noise`` the spread of the repeats' own p50 / reference p50,
    (max - min) / median."""

    ef_search: int
    p95_runs: tuple[float, ...] = ()
    noise: float = 0.0
    p50_best_ms: float | None = None
    reference_p50_ms: float | None = None
    p50_vs_reference: float | None = None
    p50_vs_reference_noise: float | None = None


@dataclass(frozen=True)
class TargetHit:
    """The smallest swept ef_search whose mean recall@k (id overlap) reaches ``target``; None if none."""

    target: float
    ef_search: int | None


@dataclass(frozen=True)
class WarmCold:
    """First pass over a sample of queries vs the steady state (same queries again), at ``ef_search``.

    Buffers are per query, from ``EXPLAIN (ANALYZE, BUFFERS)``: shared blocks hit in
    shared_buffers and read from outside it (OS cache or disk), 8 kB each.
    """

    ef_search: int
    queries: int
    first_p50_ms: float
    first_p95_ms: float
    steady_p50_ms: float
    steady_p95_ms: float
    first_hits: float
    first_reads: float
    steady_hits: float
    steady_reads: float


@dataclass(frozen=True)
class FilteredCell:
    """One organisation group under one iterative-scan setting (planner decides the plan).

    ``share`` is the organisation's share of the model's rows; ``plan`` the access path the
    planner chose (HNSW, B-tree <index>, sequential scan, bitmap <index>).
    """

    group: str
    org: str
    rows: int
    share: float
    iterative_scan: str
    max_scan_tuples: int | None
    ef_search: int
    plan: str
    recall_mean: float
    recall_min: float
    short_share: float
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class ConcurrencyLevel:
    """An asyncpg pool of ``level`` connections, each looping the queries for ``window_s`` seconds."""

    level: int
    ef_search: int
    window_s: float
    queries: int
    errors: int
    qps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class BuildPoint:
    """One HNSW build on a scratch copy: ``build_s`` seconds, bytes, bytes per vector, recall@k at ``ef_search``.

    ``notices`` holds pgvector's notices, e.g. "hnsw graph no longer fits into maintenance_work_mem".
    """

    m: int
    ef_construction: int
    maintenance_work_mem: str
    parallel_workers: int
    build_s: float
    index_bytes: int
    bytes_per_vector: float
    ef_search: int
    recall_mean: float | None
    graph_exceeded_memory: bool
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RawComparison:
    """memctl's query path vs a bare asyncpg loop on a plain ``vector(d)`` copy, same queries, same run.

    ``ratio`` = harness p50 / raw p50 at ``ef_search`` (1.0: no overhead).
    """

    ef_search: int
    queries: int
    harness_p50_ms: float
    raw_p50_ms: float
    harness_p95_ms: float
    raw_p95_ms: float
    ratio: float
    raw_plan: str
    raw_uses_index: bool


@dataclass(frozen=True)
class Regression:
    """A measurement worse than the baseline by more than its limit (for p95: the larger of
    --max-latency-growth and twice the measured ``noise`` of either run; and, when both runs timed the
    reference query, ``index_change``, the growth of ``p50_vs_reference``, above --max-latency-growth).
    Metric ``p50_vs_reference``: the index's own speed fell by more than --max-latency-growth."""

    metric: str
    ef_search: int
    baseline: float
    current: float
    change: float
    limit: float
    noise: float = 0.0
    index_change: float | None = None


@dataclass(frozen=True)
class SloCheck:
    """--min-recall / --max-p95-ms: the smallest ef_search meeting both (``met_at``; None: none does)
    and, per ef_search, what it missed."""

    min_recall: float | None
    max_p95_ms: float | None
    met_at: int | None
    misses: list[str]


@dataclass
class BenchResult:
    """A bench-hnsw run. ``valid`` is False, and nothing measured, when a plan check failed."""

    schema_version: int
    fingerprint: Fingerprint
    model: str
    model_id: int
    index: str
    k: int
    queries: int
    rows: int
    org: str | None
    iterative_scan: str
    force_index: bool
    plan: PlanCheck
    truth: TruthInfo | None = None
    points: list[SweepPoint] = field(default_factory=list)
    targets: list[TargetHit] = field(default_factory=list)
    warm_cold: WarmCold | None = None
    filtered: list[FilteredCell] = field(default_factory=list)
    concurrency: list[ConcurrencyLevel] = field(default_factory=list)
    builds: list[BuildPoint] = field(default_factory=list)
    raw: RawComparison | None = None
    regressions: list[Regression] = field(default_factory=list)
    baseline: str | None = None
    fingerprint_changes: list[str] = field(default_factory=list)
    latency_notes: list[str] = field(default_factory=list)  # p95 growth the machine's speed explains
    slo: SloCheck | None = None
    elapsed_s: float = 0.0

    @property
    def valid(self) -> bool:
        """True when the plan checks passed and the sweep was measured."""
        return self.plan.ok

    @property
    def ok(self) -> bool:
        """True when valid, nothing regressed against the baseline and the SLO (if any) is met."""
        return self.valid and not self.regressions and (self.slo is None or self.slo.met_at is not None)

    def point(self, ef_search: int) -> SweepPoint | None:
        """The sweep point at ``ef_search``, if measured."""
        return next((p for p in self.points if p.ef_search == ef_search), None)

