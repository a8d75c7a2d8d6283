"""An export directory read back and checked before an import writes anything (issue 14).

:func:`read_export` refuses, with one line naming the file, an export that is not whole: a manifest
that is missing, unreadable or of another format; a file it lists that is missing, or whose SHA-256
differs (one byte changed); a Parquet file it does not list. The schema checks against the target
(revision, tables, columns) are :func:`check_against`'s.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memctl.errors import ConfigError
from memctl.transfer.tables import TenantTable

FORMAT = "memctl-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 2**20  # a manifest lists files and models: anything larger is not one


def _int(value, what: str) -> int:
    """``value`` if it is a JSON integer (not a float, string or boolean); ConfigError otherwise."""
    if type(value) is not int:
        raise ConfigError(f"the manifest's {what} must be an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: its table, embedding model (name, or None), rows, and columns as
    (name, SQL type, travels as text) triples."""

    name: str
    path: Path
    table: str
    model: str | None
    rows: int
    columns: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True)
class Export:
    """A checked export directory: revision, the organisation (id, slug, name), the models used
    (name, dim, distance, index_storage, hnsw_m, hnsw_ef_construction, source id) and its files."""

    directory: Path
    revision: str
    organization: dict[str, str]
    models: list[dict[str, Any]]
    files: list[ExportFile]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_export(directory: Path) -> Export:
    """The export in ``directory``, every file's checksum verified. Raises ConfigError naming the
    problem: no directory, no or unreadable manifest.json, another format, a listed file missing or
    changed (SHA-256), a Parquet file the manifest does not list."""
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory (an export made by memctl export)")
    path = directory / MANIFEST
    if path.exists() and (not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES):
        raise ConfigError(f"{path} is not a regular file of at most {MAX_MANIFEST_BYTES // 2**20} MiB")
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{path} is not a {FORMAT} manifest of format version {FORMAT_VERSION}")
        files = []
        for name, f in sorted(doc["files"].items()):
            file = directory / name
            if Path(name).name != name or not name.endswith(".parquet"):
                raise ConfigError(f"{path} lists {name!r}, which is not a Parquet file of the export")
            if not file.is_file():
                raise ConfigError(f"{name} is missing from {directory} (the manifest lists it)")
            if sha256_of(file) != f["sha256"]:
                raise ConfigError(f"{name} does not match its SHA-256 in the manifest: the file was changed "
                                  "or damaged after the export")
            files.append(ExportFile(name, file, str(f["table"]), f["model"], _int(f["rows"], f"rows of {name}"),
                                    tuple((c["name"], c["pg_type"], bool(c["text"])) for c in f["columns"])))
        org = doc["organization"]
        organization = {"id": str(uuid.UUID(org["id"])), "slug": str(org["slug"]), "name": str(org["name"])}
        models = [{"id": _int(m["id"], "model id"), "name": str(m["name"]), "dim": _int(m["dim"], "model dim"),
                   "distance": str(m["distance"]), "index_storage": str(m["index_storage"]),
                   "hnsw_m": _int(m["hnsw_m"], "hnsw_m"),
                   "hnsw_ef_construction": _int(m["hnsw_ef_construction"], "hnsw_ef_construction")}
                  for m in doc["models"]]
        if len({m["id"] for m in models}) != len(models) or len({m["name"] for m in models}) != len(models):
            raise ConfigError(f"{path} lists a model id or name twice")
        export = Export(directory, str(doc["revision"]), organization, models, files)
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: {directory} is not an export made by memctl export") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a readable manifest ({type(exc).__name__}: {exc})") from None
    unlisted = sorted(p.name for p in directory.glob("*.parquet") if p.name not in doc["files"])
    if unlisted:
        raise ConfigError(f"{unlisted[0]} is in {directory} but not in its manifest")
    return export


def check_against(export: Export, revision: str, tables: list[TenantTable]) -> None:
    """Raise ConfigError unless ``export`` fits a database at ``revision`` whose tenant tables are
    ``tables``: same revision, a file for every tenant table (one per model for the embedding
    tables), no table the database lacks, the same stored columns with the same SQL types."""
    if export.revision != revision:
        raise ConfigError(f"the export is of schema revision {export.revision}, this database is at {revision} "
                          f"(head): import it into a database at revision {export.revision} with the memctl that "
                          "made it, migrate that database to head, and export again")
    by_name = {t.name: t for t in tables}
    seen = {f.table for f in export.files}
    for t in tables:
        if t.name not in seen and not t.embeddings:
            raise ConfigError(f"the export has no file for table {t.name} ({t.name}.parquet is missing)")
    for f in export.files:
        table = by_name.get(f.table)
        if table is None:
            raise ConfigError(f"{f.name} holds table {f.table}, which this database does not have")
        expected = [(c.name, c.pg_type) for c in table.columns]
        if [(n, t) for n, t, _ in f.columns] != expected:
            raise ConfigError(f"{f.name}'s columns differ from table {f.table}'s in this database")
        if table.embeddings and f.model not in {m["name"] for m in export.models}:
            raise ConfigError(f"{f.name} holds model {f.model!r}, which the manifest's models do not list")
    # export writes one file per (embedding table, model), empty or not: one missing is a lost file
    have = {(f.table, f.model) for f in export.files}
    for t in tables:
        for m in export.models if t.embeddings else []:
            if (t.name, m["name"]) not in have:
                raise ConfigError(f"the export has no file of table {t.name} for model {m['name']!r}: it is "
                                  "incomplete")
