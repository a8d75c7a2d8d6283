"""What a formatter returns (:class:`Section`) and the registry the renderer looks formatters up in.

Apart from ``memctl.cli.render`` so that formatter modules (``render_models``) register without
importing the renderer, and the renderer imports them without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Section:
    """A titled table: ``columns`` names and ``rows`` of cell values (any JSON-able values)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str | None = None
    primary: bool = False  # the section --csv prints (else the first)


Formatter = Callable[[Any], list[Section]]
FORMATTERS: dict[str, Formatter] = {}  # qualified class name (``list[...]`` for a list of them) -> formatter


def renders(qualified_name: str) -> Callable[[Formatter], Formatter]:
    """Register the decorated function as the formatter of the class ``qualified_name``
    (``'memctl.migration.runner.MigrationResult'``, or ``'list[...]'`` for a list of them)."""
    def register(fn: Formatter) -> Formatter:
        FORMATTERS[qualified_name] = fn
        return fn
    return register




def mib(n: int | None) -> str:
    """Bytes as MiB for a table cell ('' for None): 1048576 -> '1.0 MiB'."""
    return "" if n is None else f"{n / 2**20:,.1f} MiB"
