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
Wait = Annotated[float, typer.Option(
    "--wait", metavar="SECONDS", min=0,
    help="Wait this long for another run's lock, then exit 75.")]
LockTimeout = Annotated[float, typer.Option(
    "--lock-timeout", metavar="SECONDS", min=0.001,
    help="Longest a statement waits for a table lock (so the longest other sessions queue behind it).")]
StatementTimeout = Annotated[float, typer.Option(
    "--statement-timeout", metavar="SECONDS", min=0, help="Longest a statement may run (0: no limit).")]
Retries = Annotated[int, typer.Option(
    "--retries", metavar="N", min=0, help="Extra attempts of a revision that hit the lock timeout (backoff doubles).")]
