"""``memctl stats --prometheus FILE``: the report in Prometheus' text exposition format, for
node_exporter's textfile collector (a ``*.prom`` file in its ``--collector.textfile.directory``),
written atomically: a temporary file in the same directory, then ``os.replace``, so the collector never
reads half a file (node_exporter README, "Textfile Collector").

Every metric is a gauge named ``memctl_*``; label values are escaped as the format requires
(backslash, double quote, line feed). Times are seconds since the Unix epoch.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from memctl.errors import ConfigError
from memctl.health.types import StatsResult

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric(name: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {float(value)!r}" if inner else f"{name} {float(value)!r}")
    return lines


def exposition(r: StatsResult) -> str:
    """The report as exposition-format text (ends with a newline)."""
    out: list[str] = []
    out += _metric("memctl_memories", "Memories per organisation, tier and state (active, archived, deleted: "
                   "soft-deleted awaiting purge).",
                   [({"org": m.org, "tier": m.tier, "state": s}, getattr(m, s)) for m in r.memories
                    for s in ("active", "archived", "deleted")])
    out += _metric("memctl_embedding_coverage_ratio", "Share of active and consolidated memories with a current "
                   "embedding of the model.", [({"model": m.model, "state": m.state}, m.coverage) for m in r.models])
    out += _metric("memctl_embedding_stale_rows", "Embeddings computed from a content that changed since.",
                   [({"model": m.model}, m.stale_rows) for m in r.models])
    out += _metric("memctl_embedding_rows", "Embedding rows of the model.",
                   [({"model": m.model}, m.embedded_rows) for m in r.models])
    out += _metric("memctl_table_live_tuples", "pg_stat_user_tables.n_live_tup.",
                   [({"table": t.table}, t.live_tuples) for t in r.tables])
    out += _metric("memctl_table_dead_tuples", "pg_stat_user_tables.n_dead_tup.",
                   [({"table": t.table}, t.dead_tuples) for t in r.tables])
    out += _metric("memctl_table_dead_share", "Dead tuples / (live + dead).",
                   [({"table": t.table}, t.dead_share) for t in r.tables])
    out += _metric("memctl_table_size_bytes", "pg_total_relation_size (with indexes and TOAST).",
                   [({"table": t.table}, t.size_bytes) for t in r.tables])
    out += _metric("memctl_table_last_vacuum_timestamp_seconds", "Last vacuum or autovacuum (absent: never).",
                   [({"table": t.table}, t.last_vacuum.timestamp()) for t in r.tables if t.last_vacuum])
    out += _metric("memctl_table_last_analyze_timestamp_seconds", "Last analyze or autoanalyze (absent: never).",
                   [({"table": t.table}, t.last_analyze.timestamp()) for t in r.tables if t.last_analyze])
    out += _metric("memctl_index_size_bytes", "pg_relation_size of the index.",
                   [({"index": i.index, "table": i.table, "method": i.method}, i.size_bytes) for i in r.indexes])
    out += _metric("memctl_index_valid", "1 when the index is valid (0: INVALID, a failed concurrent build).",
                   [({"index": i.index, "table": i.table}, int(i.valid)) for i in r.indexes])
    out += _metric("memctl_hnsw_index_fits_shared_buffers", "1 when the HNSW index is no larger than shared_buffers.",
                   [({"index": i.index, "table": i.table}, int(bool(i.fits_shared_buffers)))
                    for i in r.indexes if i.method == "hnsw"])
    out += _metric("memctl_shared_buffers_bytes", "The server's shared_buffers.", [({}, r.shared_buffers_bytes)])
    out += _metric("memctl_consolidation_jobs", "Consolidation jobs by status.",
                   [({"status": s}, getattr(r.jobs, s)) for s in ("pending", "running", "failed")])
    out += _metric("memctl_consolidation_oldest_running_age_seconds", "Age of the oldest running consolidation "
                   "job (0: none running).", [({}, r.jobs.oldest_running_age_s or 0.0)])
    out += _metric("memctl_maintain_last_run_timestamp_seconds", "When the task's latest run finished.",
                   [({"task": m.task, "outcome": m.outcome}, m.finished_at.timestamp()) for m in r.maintain])
    out += _metric("memctl_maintain_last_success_timestamp_seconds", "When the task last succeeded.",
                   [({"task": m.task}, m.last_ok_at.timestamp()) for m in r.maintain if m.last_ok_at])
    out += _metric("memctl_maintain_last_run_rows", "Rows the task's latest run changed.",
                   [({"task": m.task}, m.rows) for m in r.maintain])
    out += _metric("memctl_stats_findings", "Thresholds crossed in this report (0: healthy).", [({}, len(r.findings))])
    out += _metric("memctl_stats_timestamp_seconds", "When the report was taken.", [({}, r.taken_at.timestamp())])
    return "\n".join(out) + "\n"


def write_atomic(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same directory and ``os.replace``
    (mode 0644). Raises ConfigError when the directory does not exist or is not writable."""
    if not path.parent.is_dir():
        raise ConfigError(f"{path.parent} is not a directory (--prometheus FILE)")
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with tmp.open("w") as fp:
            fp.write(content)
            fp.flush()
            os.fsync(fp.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
