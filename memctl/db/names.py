"""Names from the command line (organisation slugs, model names, table names) before they reach SQL.

They are only ever bound as parameters or matched against the catalog, never formatted into a
statement; this module turns the values PostgreSQL cannot even compare (a NUL character, more
than 255 characters) into the same NotFound a name that matches nothing gets.
"""

from __future__ import annotations

from memctl.errors import NotFound

MAX_NAME = 255


def checked(kind: str, value: str) -> str:
    """``value`` if it can name a ``kind``; NotFound('no <kind> <value!r>') otherwise."""
    if "\x00" in value or len(value) > MAX_NAME:
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise NotFound(f"no {kind} {shown!r}")
    return value
