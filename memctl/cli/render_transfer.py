"""Formatters of memctl export, import and erase (registered in :mod:`memctl.cli.formatters`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memctl.cli.formatters import Section, mib, renders

if TYPE_CHECKING:
    from memctl.transfer.erase import EraseResult
    from memctl.transfer.export import ExportResult
    from memctl.transfer.importer import ImportResult


@renders("memctl.transfer.export.ExportResult")
def _(result: ExportResult) -> list[Section]:
    rows = [[f.file, f.table, f.model or "", f.rows, mib(f.bytes), f.sha256[:16]] for f in result.files]
    return [Section(f"Export of {result.organization} into {result.output}",
                    ["file", "table", "model", "rows", "size", "sha256 (start)"], rows,
                    f"{result.rows} rows at revision {result.revision}; {result.elapsed_s} s, "
                    f"{result.rows_per_s} rows/s")]


@renders("memctl.transfer.importer.ImportResult")
def _(result: ImportResult) -> list[Section]:
    rows = [[f.file, f.table, f.model or "", f.rows] for f in result.files]
    verb = "would be imported (dry run, rolled back)" if result.dry_run else "imported"
    registered = f"; models registered: {', '.join(result.models_registered)}" if result.models_registered else ""
    return [Section(f"{result.source} {verb} as {result.organization} ({result.org_id})",
                    ["file", "table", "model", "rows"], rows,
                    f"{result.rows} rows at revision {result.revision}{registered}; {result.elapsed_s} s, "
                    f"{result.rows_per_s} rows/s")]


@renders("memctl.transfer.erase.EraseResult")
def _(result: EraseResult) -> list[Section]:
    rows = [[t.table, t.before, t.removed, t.remaining] for t in result.tables]
    verb = "would remove (dry run)" if result.dry_run else "removed"
    state = ("stopped by --max-runtime: run again to finish" if result.stopped_by_budget
             else "nothing left" if not result.dry_run else "nothing written")
    return [Section(f"Erase of {result.target}: rows {verb}", ["table", "rows before", "removed", "remaining"],
                    rows, f"{result.removed} rows {verb}; {state}; {result.elapsed_s} s")]
