"""The only module that formats output: rich tables for people, JSON and CSV for machines.

Data goes to stdout; chatter (progress, notes, errors) goes to stderr. Each result type maps to
one or more :class:`Section` (a titled table) through :func:`sections`; JSON is the result's
dataclass fields plus its derived flags (``clean``, ``valid``).

The formatters are registered by the result's qualified class name (:func:`renders`), so this
module imports no library module: an error line or ``db status`` does not load Alembic, numpy or
the benchmark (tests check that every registered name is a real class).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import enum
import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from memctl.bench.options import REFERENCE_EF
from memctl.cli import render_health, render_models, render_transfer  # noqa: F401  (register their formatters)
from memctl.cli.formatters import FORMATTERS, Section, mib, renders

if TYPE_CHECKING:
    from memctl.bench.types import BenchResult
    from memctl.data.checks import CheckResult
    from memctl.data.seed import SeedResult
    from memctl.db.embedded import EmbeddedStatus
    from memctl.maintenance.types import MaintainResult
    from memctl.migration.check import MigrateCheckResult
    from memctl.migration.lint import LintResult
    from memctl.migration.runner import MigrationResult, RevisionInfo
    from memctl.schema.verify import VerifyResult

# Names come from users (a model called 'a[/]b', an organisation's text): printed literally, never
# read as rich markup or :emoji: codes.
stdout = Console(soft_wrap=False, markup=False, emoji=False, highlight=False)
stderr = Console(stderr=True, markup=False, emoji=False, highlight=False)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, uuid.UUID | Path | decimal.Decimal):
        return str(obj)
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_DERIVED = ("clean", "valid", "ok")


def to_data(result: Any) -> Any:
    """A result as plain JSON-able data: dataclass fields, plus ``clean``/``valid``/``ok`` if defined."""
    if isinstance(result, list):
        return [to_data(r) for r in result]
    if dataclasses.is_dataclass(result):
        data = {f.name: to_data(getattr(result, f.name)) for f in dataclasses.fields(result)}
        for name in _DERIVED:
            if isinstance(getattr(type(result), name, None), property):
                data[name] = getattr(result, name)
        return data
    if isinstance(result, dict):
        return {k: to_data(v) for k, v in result.items()}
    return result


def document(result: Any, run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of a result: its data (a list under ``items``, or ``revisions`` for
    revisions) and, given, the ``run`` record (command, version, times, database, exit code)."""
    data = to_data(result)
    if isinstance(data, list):
        key = "revisions" if result and _name(type(result[0])).endswith(".RevisionInfo") else "items"
        data = {key: data}
    return {**data, "run": run} if run is not None else data


def to_json(result: Any, run: dict[str, Any] | None = None) -> str:
    """:func:`document` as JSON text: indented for a terminal, one line otherwise (a cron log that
    appends run after run stays parseable line by line)."""
    indent = 2 if sys.stdout.isatty() else None
    return json.dumps(document(result, run), indent=indent, default=_jsonable)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def sections(result: Any) -> list[Section]:
    """Titled tables of a result: its class's formatter (or a base class's); the fallback shows a
    dataclass as field/value rows, and a list as one value per row."""
    if isinstance(result, list):
        fn = FORMATTERS.get(f"list[{_name(type(result[0]))}]") if result else None
        return fn(result) if fn else [Section("Results", ["value"], [[str(r)] for r in result])]
    for cls in type(result).__mro__:
        if (fn := FORMATTERS.get(_name(cls))) is not None:
            return fn(result)
    data = to_data(result)
    return [Section(type(result).__name__, ["field", "value"], [[k, v] for k, v in data.items()])]


@renders("list[memctl.migration.runner.RevisionInfo]")
def _(result: list[RevisionInfo]) -> list[Section]:
    rows = [[r.revision, r.down_revision or "", "yes" if r.applied else "no",
             ("head " if r.is_head else "") + ("current" if r.is_current else ""), r.description]
            for r in result]
    return [Section("Revisions", ["revision", "down_revision", "applied", "marks", "description"], rows)]


@renders("memctl.migration.runner.MigrationResult")
def _(result: MigrationResult) -> list[Section]:
    rows = [[result.direction, result.before or "base", result.after or "base",
             " ".join(result.revisions) or "(nothing to do)", result.attempts]]
    out = [Section("Migration", ["direction", "from", "to", "revisions run", "attempts"], rows)]
    if result.repaired:
        out.append(Section("INVALID indexes repaired first", ["action"], [[r] for r in result.repaired]))
    if result.rows_lost:
        out.append(Section("Tables dropped" + (" (would be)" if "dry-run" in result.direction else ""),
                           ["table", "rows"], [[t, n] for t, n in result.rows_lost.items()]))
    return out


@renders("memctl.migration.check.MigrateCheckResult")
def _(result: MigrateCheckResult) -> list[Section]:
    rows = [["ok" if i.ok else "FAIL", i.name, i.detail] for i in result.items]
    title = "migrate check: " + ("all passed" if result.clean else f"{sum(not i.ok for i in result.items)} failed")
    return [Section(title, ["result", "check", "detail"], rows, f"revisions {' '.join(result.revisions)}")]


@renders("memctl.migration.lint.LintResult")
def _(result: LintResult) -> list[Section]:
    caption = (f"{len(result.revisions)} revisions linted; excluded: "
               + ", ".join(f"{rule} ({why})" for rule, why in result.excluded.items()))
    if result.clean:
        return [Section("migrate lint: no findings", ["result"], [["clean"]], caption)]
    rows = [[f.revision, f.line, f.rule, f.message] for f in result.findings]
    return [Section(f"migrate lint: {len(rows)} finding(s)", ["revision", "line", "rule", "message"], rows, caption)]


@renders("memctl.db.embedded.EmbeddedStatus")
def _(result: EmbeddedStatus) -> list[Section]:
    return [Section("Embedded server", ["pgdata", "initialised", "running", "pid", "url"],
                    [[result.pgdata, result.initialised, result.running, result.pid or "", result.url or ""]])]


@renders("memctl.schema.verify.VerifyResult")
def _(result: VerifyResult) -> list[Section]:
    checked = ", ".join(f"{n} {k}" for k, n in sorted(result.checked.items()))
    caption = (f"database {result.database}; target {result.target}; "
               f"revision {result.revision or 'base'} (head {result.head}); "
               f"pgvector {result.pgvector or 'absent'}; compared {checked or 'nothing'}")
    if result.clean:
        return [Section("verify-schema: no drift", ["result"], [["clean"]], caption)]
    rows = [[f.kind, f.object, f.expected if f.expected is not None else "(absent)",
             f.actual if f.actual is not None else "(absent)"] for f in result.findings]
    return [Section(f"verify-schema: {len(rows)} finding(s)", ["kind", "object", "expected", "actual"], rows, caption)]


@renders("memctl.data.seed.SeedResult")
def _(result: SeedResult) -> list[Section]:
    rows = [[Path(result.source).name, f"{result.model_id}{' (new)' if result.model_registered else ''}",
             result.organizations, result.agents, result.rows, result.memories_inserted, result.duplicates_skipped,
             result.load_s, result.load_rows_per_second, result.index_s, result.index_rows_per_second,
             result.rows_per_second]]
    columns = ["source", "model id", "orgs", "agents", "rows", "inserted", "duplicates", "load s", "load rows/s",
               "index s", "index rows/s", "rows/s"]
    m = result.index_memory
    caption = None if m is None else (
        f"HNSW build: graph about {mib(m.graph_bytes)}, maintenance_work_mem {mib(m.maintenance_work_mem_bytes)}"
        + ("" if m.fits else " (the graph did not fit: raise --memory for a faster build)")
        + (f", {m.parallel_workers} parallel workers" if m.parallel_workers is not None else ""))
    return [Section(f"Seed: model {result.model}", columns, rows, caption)]


@renders("memctl.maintenance.types.MaintainResult")
def _(result: MaintainResult) -> list[Section]:
    rows = [[t.task, t.changed, t.batches, t.max_batch_rows, t.elapsed_s, "yes" if t.stopped_by_budget else "",
             t.error or "", "; ".join(t.details)] for t in result.tasks]
    title = "maintain" + (" --dry-run (nothing written)" if result.dry_run else "") + (
        "" if result.ok else f": {sum(t.error is not None for t in result.tasks)} task(s) failed")
    return [Section(title, ["task", "would change" if result.dry_run else "changed", "batches", "largest batch",
                            "seconds", "budget spent", "error", "details"], rows,
                    f"batch size {result.batch_size}; {result.elapsed_s} s")]


def _fingerprint(fp) -> Section:
    rows = [["PostgreSQL", fp.postgres], ["pgvector", fp.pgvector or "absent"],
            ["index", f"{fp.index} ({'valid' if fp.index_valid else 'INVALID' if fp.index_exists else 'missing'})"],
            ["m / ef_construction", f"{fp.m} / {fp.ef_construction}"],
            ["opclass (model expects)", f"{fp.opclass} ({fp.expected_opclass})"],
            ["index size / shared_buffers", f"{mib(fp.index_bytes)} / {mib(fp.shared_buffers_bytes)}"],
            ["model rows", f"{fp.rows:,}"],
            ["table live / dead tuples", f"{fp.table_live_tuples} / {fp.table_dead_tuples}"],
            ["last vacuum / autovacuum", f"{fp.last_vacuum or 'never'} / {fp.last_autovacuum or 'never'}"]]
    rows += [[name, value] for name, value in fp.settings.items()]
    return Section("bench-hnsw: environment", ["what", "value"], rows)


def _bench_sections(result: BenchResult) -> list[Section]:
    out = []
    if result.targets:
        out.append(Section(f"Smallest ef_search reaching recall@{result.k}", ["target recall", "ef_search"],
                           [[t.target, t.ef_search if t.ef_search is not None else "not reached"]
                            for t in result.targets]))
    if result.warm_cold:
        w = result.warm_cold
        out.append(Section(f"First pass vs steady state ({w.queries} queries, ef_search {w.ef_search}; server "
                           "execution time, shared buffers per query)",
                           ["pass", "p50 ms", "p95 ms", "buffer hits", "buffer reads"],
                           [["first", w.first_p50_ms, w.first_p95_ms, w.first_hits, w.first_reads],
                            ["steady", w.steady_p50_ms, w.steady_p95_ms, w.steady_hits, w.steady_reads]]))
    if result.filtered:
        out.append(Section(f"Tenant-filtered search (planner decides; recall@{result.k} vs filtered exact top-k)",
                           ["group", "org", "rows", "iterative_scan", "max_scan_tuples", "ef_search", "plan",
                            "recall mean", "recall min", "short share", "p50 ms", "p95 ms"],
                           [[c.group, c.org, c.rows, c.iterative_scan, c.max_scan_tuples or "default", c.ef_search,
                             c.plan, c.recall_mean, c.recall_min, c.short_share, c.p50_ms, c.p95_ms]
                            for c in result.filtered]))
    if result.concurrency:
        out.append(Section("Concurrency (asyncpg pool, prepared statements, binary vectors)",
                           ["connections", "ef_search", "window s", "queries", "errors", "QPS", "p50 ms", "p95 ms",
                            "p99 ms"],
                           [[c.level, c.ef_search, c.window_s, c.queries, c.errors, c.qps, c.p50_ms, c.p95_ms,
                             c.p99_ms] for c in result.concurrency]))
    if result.raw:
        r = result.raw
        out.append(Section(f"memctl query path vs bare asyncpg on a vector(d) copy (ef_search {r.ef_search}, "
                           f"{r.queries} queries interleaved)", ["path", "p50 ms", "p95 ms"],
                           [["memctl", r.harness_p50_ms, r.harness_p95_ms],
                            ["bare asyncpg", r.raw_p50_ms, r.raw_p95_ms], ["ratio (p50)", r.ratio, ""]],
                           f"raw plan: {r.raw_plan}" + ("" if r.raw_uses_index else " (NOT on its HNSW index)")))
    if result.builds:
        out.append(Section("HNSW builds on a scratch copy",
                           ["m", "ef_construction", "maintenance_work_mem", "workers", "build s", "index MiB",
                            "bytes/vector", f"recall@{result.k} (ef {REFERENCE_EF})", "graph > maintenance_work_mem"],
                           [[b.m, b.ef_construction, b.maintenance_work_mem, b.parallel_workers, b.build_s,
                             round(b.index_bytes / 2**20, 2), b.bytes_per_vector, b.recall_mean,
                             "yes" if b.graph_exceeded_memory else "no"] for b in result.builds]))
    if result.baseline:
        rows = [[r.metric, r.ef_search, r.baseline, r.current, r.change, r.limit, r.noise,
                 "" if r.index_change is None else r.index_change] for r in result.regressions]
        changed = ("environment changed: " + ", ".join(result.fingerprint_changes)) if result.fingerprint_changes \
            else "same environment (fingerprint)"
        noise = max((p.noise for p in result.points), default=0.0)
        out.append(Section(f"Regressions against {result.baseline}: {len(rows)}" if rows else
                           f"No regression against {result.baseline}",
                           ["metric", "ef_search", "baseline", "current", "change", "limit", "noise",
                            "own"], rows,
                           f"{changed}; p95 noise measured in this run up to {noise:.1%}; own: the index's own "
                           "change, p50 relative to the reference query timed beside it"))
        if result.latency_notes:
            out.append(Section("p95 growth the machine explains (not regressions)", ["note"],
                               [[n] for n in result.latency_notes]))
    if result.slo is not None:
        s = result.slo
        title = (f"SLO met from ef_search {s.met_at}" if s.met_at is not None else "SLO missed at every ef_search")
        out.append(Section(title, ["miss"], [[m] for m in s.misses],
                           f"--min-recall {s.min_recall}, --max-p95-ms {s.max_p95_ms}"))
    return out


@renders("memctl.bench.types.BenchResult")
def _(result: BenchResult) -> list[Section]:
    scope = f"org {result.org}" if result.org else "all organisations"
    truth = (f"truth {result.truth.source} {'cached' if result.truth.cached else f'{result.truth.elapsed_s} s'}"
             if result.truth else "truth not computed")
    caption = (f"model {result.model} (id {result.model_id}), {result.rows:,} rows, {scope}, k={result.k}, "
               f"{result.queries} queries, iterative_scan={result.iterative_scan}, "
               f"{'forced index' if result.force_index else 'planner decides'}, {truth}, run {result.elapsed_s} s; "
               f"plan: {result.plan.approximate_plan}")
    out = [_fingerprint(result.fingerprint)]
    if result.fingerprint.warnings:
        out.append(Section("Warnings", ["warning"], [[w] for w in result.fingerprint.warnings]))
    if not result.valid:
        why = [] if result.plan.approximate_uses_index else [f"approximate query does not use {result.index}: "
                                                              f"{result.plan.approximate_plan}"]
        if not result.plan.truth_avoids_index:
            why.append(f"truth query uses {result.index}: {result.plan.truth_plan}")
        return [*out, Section("bench-hnsw: INVALID (not measured)", ["reason"], [[w] for w in why], caption,
                              primary=True)]
    rows = [[p.ef_search, p.recall_mean, p.recall_min, p.recall_dist_mean, p.recall_dist_min, p.ndcg_mean, p.p50_ms,
             p.p95_ms, p.p99_ms, p.qps, p.short_share, f"{p.noise:.1%}" if len(p.p95_runs) > 1 else "",
             "" if p.p50_vs_reference is None else p.p50_vs_reference] for p in result.points]
    out.append(Section(f"bench-hnsw: recall@{result.k} and latency by ef_search",
                       ["ef_search", "recall mean", "recall min", "recall (dist) mean", "recall (dist) min",
                        f"NDCG@{result.k}", "p50 ms", "p95 ms", "p99 ms", "QPS", "short share", "p95 noise",
                        "p50 / reference"], rows,
                       caption, primary=True))
    return out + _bench_sections(result)


@renders("memctl.data.checks.CheckResult")
def _(result: CheckResult) -> list[Section]:
    if result.clean:
        return [Section("check-constraints: clean", ["rules run"], [[len(set(result.rules))]])]
    rows = [[v.rule, v.table, v.count, ", ".join(v.sample), v.detail] for v in result.violations]
    return [Section(f"check-constraints: {len(rows)} rule(s) broken",
                    ["rule", "table", "count", "sample", "detail"], rows)]


def emit(result: Any, *, as_json: bool = False, as_csv: bool = False, run: dict[str, Any] | None = None) -> None:
    """Write ``result`` to stdout as rich tables (default), JSON (with ``run``) or CSV (the primary
    section's rows)."""
    if as_json:
        sys.stdout.write(to_json(result, run) + "\n")
        return
    if as_csv:
        found = sections(result)
        section = next((s for s in found if s.primary), found[0])
        writer = csv.writer(sys.stdout)
        writer.writerow(section.columns)
        writer.writerows(section.rows)
        return
    for section in sections(result):
        stdout.print(section.title, style="bold", highlight=False, markup=False)
        table = Table()
        for col in section.columns:
            table.add_column(col, overflow="fold")
        for row in section.rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        stdout.print(table)
        if section.caption:
            stdout.print(section.caption, highlight=False, markup=False)


def note(message: str) -> None:
    """A line of chatter on stderr."""
    stderr.print(message, highlight=False, markup=False, soft_wrap=True)


def error(message: str) -> None:
    """The one error line on stderr: ``memctl: error: <message>``."""
    stderr.print(f"memctl: error: {message}", highlight=False, markup=False, soft_wrap=True)


def emit_steps(steps: list[tuple[str, Any]], *, as_json: bool = False, run: dict[str, Any] | None = None) -> None:
    """Several named results: one JSON object keyed by step (and ``run``), or each step's tables."""
    if as_json:
        sys.stdout.write(to_json(dict(steps), run) + "\n")
        return
    for name, result in steps:
        stdout.rule(name)
        emit(result)

