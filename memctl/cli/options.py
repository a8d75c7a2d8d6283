"""Options shared by several commands, defined once: ``Annotated`` aliases, option groups as
dataclasses (:func:`grouped`), and the parsers of option values (lists, durations).

Nothing here imports more than typer and the standard library: ``memctl --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from memctl.errors import ConfigError

T = TypeVar("T")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", metavar="URL", show_default=False,
    help="PostgreSQL URL (else MEMCTL_DATABASE_URL, DATABASE_URL, else the embedded server). "
         "Never printed with its password.")]
ConnectTimeout = Annotated[float | None, typer.Option(
    "--connect-timeout", metavar="SECONDS", min=0, show_default=False,
    help="Give up connecting after this long (default: the URL's connect_timeout, else PGCONNECT_TIMEOUT, "
         "else 10; 0: no limit).")]
# Whether the command in progress was asked for --json (so a failure is a JSON document too).
json_requested = {"value": False}


def _remember_json(value: bool) -> bool:
    json_requested["value"] = bool(value)
    return value


Json = Annotated[bool, typer.Option(
    "--json", callback=_remember_json,
    help="Print the result as JSON on stdout: one line per run when stdout is not a terminal (cron appends "
         "parse line by line), with started_at, finished_at, database, version, exit code; a failure too.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print the result's main table as CSV on stdout.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Model = Annotated[str | None, typer.Option(
    "--model", metavar="NAME", help="Registered embedding model (default: the default model).")]
DatasetFile = Annotated[Path | None, typer.Option(
    "--dataset", metavar="PATH.npz", help="Dataset with texts, embeddings (n, d) float32 and model.")]
Synthetic = Annotated[int | None, typer.Option(
    "--synthetic", metavar="N",
    help="Generate N texts with unit vectors drawn from a model of real MiniLM embeddings (memctl.data.synthetic).")]
Limit = Annotated[int | None, typer.Option("--limit", metavar="N", help="Use only the first N dataset rows.")]
Wait = Annotated[float, typer.Option(
    "--wait", metavar="SECONDS", min=0,
    help="Wait this long for another run's lock, then exit 75.")]
LockTimeout = Annotated[float, typer.Option(
    "--lock-timeout", metavar="SECONDS", min=0.001,
    help="Longest a statement waits for a table lock (so the longest other sessions queue behind it).")]
StatementTimeout = Annotated[float, typer.Option(
    "--statement-timeout", metavar="SECONDS", min=0, help="Longest a statement may run (0: no limit).")]
BatchSize = Annotated[int, typer.Option("--batch-size", metavar="N", min=1, help="Rows per transaction.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")]
MaxRuntime = Annotated[str | None, typer.Option(
    "--max-runtime", metavar="DURATION", help="Start no batch after this (e.g. 10m); run again to go on.")]
BuildMemoryBudget = Annotated[str, typer.Option(
    "--memory", metavar="SIZE", help="Most maintenance_work_mem an HNSW build may use (e.g. 2GB); the graph's "
    "estimated size up to this.")]
ParallelWorkers = Annotated[int | None, typer.Option(
    "--parallel-workers", metavar="N", min=0, show_default=False,
    help="max_parallel_maintenance_workers for the HNSW build (default: the server's setting).")]
Retries = Annotated[int, typer.Option(
    "--retries", metavar="N", min=0, help="Extra attempts of a revision that hit the lock timeout (backoff doubles).")]


def grouped(*groups: type) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: a command whose first parameters are one instance of each dataclass in ``groups``.

    Each field of a group (``Annotated[type, typer.Option(...)] = default``) becomes an option of
    the command; the command's own parameters follow. Typer reads the combined signature, and the
    command receives ``group(**its options)`` for each group first. So a command with many options
    (bench-hnsw) or options shared between commands (the database, the migration guard) declares
    them once.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    members = [(g, dataclasses.fields(g), typing.get_type_hints(g, include_extras=True)) for g in groups]
    own = [inspect.Parameter(f.name, keyword, default=f.default, annotation=hints[f.name])
           for _g, fields, hints in members for f in fields]

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        params = list(inspect.signature(fn, eval_str=True).parameters.values())[len(groups):]
        rest = [p.replace(kind=keyword) for p in params]

        def command(**kwargs: Any) -> T:
            made = [g(**{f.name: kwargs.pop(f.name) for f in fields}) for g, fields, _hints in members]
            return fn(*made, **kwargs)

        command.__name__, command.__qualname__, command.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        command.__module__ = fn.__module__
        command.__signature__ = inspect.Signature([*own, *rest])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *rest]}
        return command

    return wrap


@dataclasses.dataclass
class DatasetChoice:
    """Which rows a command loads: ``--dataset`` (its first ``--limit`` rows) or ``--synthetic N``."""

    dataset: DatasetFile = None
    synthetic_n: Synthetic = None
    limit: Limit = None


@dataclasses.dataclass
class Database:
    """Where a command connects: ``--database-url`` and ``--connect-timeout`` (seconds)."""

    database_url: DatabaseUrl = None
    connect_timeout: ConnectTimeout = None


def parse_list(option: str, value: str | None, kind: Callable[[str], T] = int) -> tuple[T, ...]:
    """``'10,20,40'`` -> (10, 20, 40) of ``kind``; ConfigError naming ``option`` on anything else."""
    if value is None:
        return ()
    try:
        out = tuple(kind(v) for v in value.split(",") if v.strip())
    except ValueError:
        name = getattr(kind, "__name__", "number")
        raise ConfigError(f"{option} must be comma-separated {name} values, got {value!r}") from None
    if not out:
        raise ConfigError(f"{option} is empty")
    return out


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(option: str, value: str | None) -> float | None:
    """'90', '90s', '15m', '2h', '7d' -> seconds; ConfigError naming ``option`` otherwise."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not match:
        raise ConfigError(f"{option} must be a duration like 90, 15m, 2h or 7d, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """Seconds as the largest whole unit :func:`parse_duration` reads back: 604800 -> '7d'."""
    for unit, size in sorted(_UNITS.items(), key=lambda u: -u[1]):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


_SIZES = {"b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}


def parse_size(option: str, value: str) -> int:
    """'512MB', '1GB', '65536kB' -> bytes (PostgreSQL's memory units, powers of 1024; a bare number
    is MB); ConfigError naming ``option`` otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?[bB])?\s*", value)
    if not match:
        raise ConfigError(f"{option} must be a size like 512MB or 2GB, got {value!r}")
    return int(float(match.group(1)) * _SIZES[(match.group(2) or "mb").lower()])
