"""Options shared by several commands, defined once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

import typer

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", metavar="URL", show_default=False,
    help="PostgreSQL URL (else MEMCTL_DATABASE_URL, DATABASE_URL, else the embedded server). "
         "Never printed with its password.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print the result's main table as CSV on stdout.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Model = Annotated[str | None, typer.Option(
    "--model", metavar="NAME", help="Registered embedding model (default: the default model).")]
