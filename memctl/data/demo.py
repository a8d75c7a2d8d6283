"""``demo``: migrate, seed, verify-schema, check-constraints and bench-hnsw in one go."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from memctl.bench.run import BenchOptions, bench_hnsw
from memctl.bench.types import BenchResult
from memctl.data.checks import CheckResult, check_constraints
from memctl.data.datasets import Dataset, SyntheticRows
from memctl.data.seed import SeedResult, seed
from memctl.migration import runner as migrate
from memctl.migration.runner import MigrationResult
from memctl.progress import Progress, no_progress
from memctl.schema.verify import VerifyResult, verify_schema


@dataclass
class DemoResult:
    """The results of each step, in order."""

    migration: MigrationResult
    seed: SeedResult
    verify: VerifyResult
    checks: CheckResult
    bench: BenchResult

    @property
    def clean(self) -> bool:
        """True when verify-schema and check-constraints found nothing and the bench was valid."""
        return self.verify.clean and self.checks.clean and self.bench.valid


async def run_demo(engine: AsyncEngine, url: URL, ds: Dataset | SyntheticRows, *, queries: np.ndarray | None = None,
                   num_queries: int = 200, progress: Progress = no_progress) -> DemoResult:
    """Run the main job end to end on ``engine``'s database; ``queries`` (q, d) float32 or sampled."""
    migration = await migrate.upgrade(engine)
    seeded = await seed(engine, ds, orgs=5, agents=2, skew=True, progress=progress)
    verified = await verify_schema(engine, url)
    checked = await check_constraints(engine)
    benched = await bench_hnsw(engine, BenchOptions(model_name=ds.model, queries=queries, num_queries=num_queries),
                               progress)
    return DemoResult(migration, seeded, verified, checked, benched)
