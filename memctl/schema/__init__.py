"""Inspect the live catalog, diff it against the models, report :class:`Finding` records."""

from memctl.schema.catalog import Snapshot, read_snapshot
from memctl.schema.diff import Finding, diff
from memctl.schema.verify import VerifyResult, live_snapshot, verify_schema

__all__ = ["Finding", "Snapshot", "VerifyResult", "diff", "live_snapshot", "read_snapshot", "verify_schema"]
