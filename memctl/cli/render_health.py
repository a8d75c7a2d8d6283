"""Formatter of memctl stats (registered in :mod:`memctl.cli.formatters`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memctl.cli.formatters import Section, mib, renders

if TYPE_CHECKING:
    from memctl.health.types import StatsResult


def _when(t) -> str:
    return "never" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")


@renders("memctl.health.types.StatsResult")
def _(r: StatsResult) -> list[Section]:
    sections = [
        Section("Memories", ["organisation", "tier", "active", "archived", "deleted (awaiting purge)"],
                [[m.org, m.tier, m.active, m.archived, m.deleted] for m in r.memories], primary=True),
        Section("Embedding models", ["model", "state", "default", "rows", "coverage", "stale"],
                [[m.model, m.state, "yes" if m.default else "", m.embedded_rows, f"{m.coverage:.1%}", m.stale_rows]
                 for m in r.models]),
        Section("Tables", ["table", "live", "dead", "dead share", "size", "last vacuum", "last analyze"],
                [[t.table, t.live_tuples, t.dead_tuples, f"{t.dead_share:.1%}", mib(t.size_bytes), _when(t.last_vacuum),
                  _when(t.last_analyze)] for t in r.tables]),
        Section("Indexes", ["index", "table", "method", "size", "valid", "fits shared_buffers"],
                [[i.index, i.table, i.method, mib(i.size_bytes), "yes" if i.valid else "INVALID",
                  "" if i.fits_shared_buffers is None else "yes" if i.fits_shared_buffers else "NO"]
                 for i in r.indexes], f"shared_buffers {mib(r.shared_buffers_bytes)}"),
        Section("Consolidation jobs", ["pending", "running", "failed", "oldest running since", "age s"],
                [[r.jobs.pending, r.jobs.running, r.jobs.failed, _when(r.jobs.oldest_running_started_at)
                  if r.jobs.oldest_running_started_at else "", r.jobs.oldest_running_age_s or ""]]),
        Section("maintain: last runs", ["task", "finished", "outcome", "rows", "last success", "error"],
                [[m.task, _when(m.finished_at), m.outcome, m.rows, _when(m.last_ok_at), m.error or ""]
                 for m in r.maintain], None if r.maintain else "maintain has not run on this database"),
    ]
    if r.findings:
        sections.append(Section("Thresholds crossed", ["finding"], [[f] for f in r.findings]))
    return sections
