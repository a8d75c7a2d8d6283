"""``bench-hnsw``: the benchmark an operator of a pgvector database needs.

Fingerprint of the environment, plan checks (a run off the model's HNSW index is INVALID),
cached exact top-k, recall@k (by id and tie-tolerant by distance), an ef_search sweep with
p50/p95/p99 and QPS, tenant-filtered groups under pgvector's iterative scans, first pass vs
steady state with buffers, concurrency on an asyncpg pool, index builds, a bare-asyncpg
comparison, and baselines for trend tracking. :func:`memctl.bench.run.bench_hnsw` runs it all.

Import from the modules: this package imports nothing itself, so the CLI can read the defaults
in :mod:`memctl.bench.types` without loading numpy.
"""
