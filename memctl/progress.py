"""The progress callback type that long library functions accept (the CLI draws it on stderr)."""

from __future__ import annotations

from collections.abc import Callable

# progress(phase, done, total): ``phase`` names the step, ``done`` of ``total`` units so far.
Progress = Callable[[str, int, int], None]


def no_progress(_phase: str, _done: int, _total: int) -> None:
    """A progress callback that ignores every report."""
