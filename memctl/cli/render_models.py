"""The formatters of ``memctl models`` and ``memctl export`` results, registered with :func:`memctl.cli.render.renders`
(kept apart so that render.py stays one concern per screen; it imports this module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memctl.cli.formatters import Section, mib, renders

if TYPE_CHECKING:
    from memctl.lifecycle.types import BackfillResult, IndexResult, ModelList, RetireResult, SwitchResult
    from memctl.models.embeddings import ModelSpec


@renders("memctl.lifecycle.types.ModelList")
def _(result: ModelList) -> list[Section]:
    rows = [[m.id, m.name, m.dim, m.distance, m.storage, m.m, m.ef_construction, m.state,
             ", ".join((["global"] if m.default else []) + m.default_for),
             "; ".join(f"{i.status} {mib(i.size_bytes)}".strip() for i in m.indexes), m.embedded_rows,
             f"{m.coverage:.1%}", m.stale_rows] for m in result.models]
    sections = [Section("Embedding models", ["id", "name", "dim", "distance", "storage", "m", "ef_construction",
                                             "state", "default", "HNSW index (memories; consolidated)",
                                             "embedded rows", "coverage", "stale"], rows, primary=True)]
    by_org = [[m.name, o.org, o.active, o.embedded, f"{o.coverage:.1%}", o.stale, "yes" if o.uses else ""]
              for m in result.models for o in m.by_org]
    if by_org:
        sections.append(Section("Coverage by organisation", ["model", "organisation", "active", "embedded",
                                                             "coverage", "stale", "current model"], by_org))
    return sections


@renders("memctl.models.embeddings.ModelSpec")
def _(result: ModelSpec) -> list[Section]:
    return [Section(f"Model {result.name} registered", ["id", "dim", "distance", "storage", "m", "ef_construction",
                                                        "state"],
                    [[result.id, result.dim, result.distance, result.index_storage, result.hnsw_m,
                      result.hnsw_ef_construction, result.state]],
                    "next: memctl models backfill, then memctl models index")]


@renders("memctl.lifecycle.types.BackfillResult")
def _(result: BackfillResult) -> list[Section]:
    rows = [[result.source, result.scope, result.written, result.refreshed, result.unmatched, result.changed,
             result.batches, result.remaining, result.elapsed_s, result.rows_per_s]]
    caption = None if result.clean else (
        f"{result.remaining} memories still lack a current embedding ({result.unmatched} not in the source"
        + (f", {result.stale} stale: run again with --stale" if result.stale else "") + "): coverage is not complete")
    return [Section(f"Backfill of {result.model}", ["source", "scope", "written", "refreshed", "unmatched",
                                                    "changed meanwhile", "batches", "remaining", "seconds", "rows/s"],
                    rows, caption)]


@renders("memctl.lifecycle.types.IndexResult")
def _(result: IndexResult) -> list[Section]:
    rows = [[b.table, b.index, b.action, b.rows, b.seconds, mib(b.size_bytes)] for b in result.builds]
    return [Section(f"HNSW indexes of {result.model}: {result.state}",
                    ["table", "index", "action", "rows", "seconds", "size"], rows,
                    f"maintenance_work_mem {mib(result.maintenance_work_mem_bytes)}, graph about "
                    f"{mib(result.estimated_graph_bytes)}")]


@renders("memctl.lifecycle.types.SwitchResult")
def _(result: SwitchResult) -> list[Section]:
    rows = [[result.scope, result.previous or "", result.model, "yes" if result.changed else "no",
             f"{result.embedded}/{result.active} ({result.coverage:.2%})", "yes" if result.index_valid else "no",
             result.refused or ""]]
    return [Section("set-default", ["scope", "previous", "model", "changed", "coverage", "indexes valid",
                                    "refused"], rows)]


@renders("memctl.lifecycle.types.RetireResult")
def _(result: RetireResult) -> list[Section]:
    rows = [[t, n] for t, n in result.deleted.items()]
    status = "removed" if result.removed else "refused" if result.refused else "not finished"
    return [Section(f"Retire {result.model}: {status}", ["table", "embeddings deleted"], rows,
                    f"indexes dropped: {', '.join(result.indexes_dropped) or 'none'}; {result.elapsed_s} s")]
