"""``memctl verify-schema``: is the live database what the models say it is?"""

from __future__ import annotations

import typer

from memctl import render
from memctl.cli.common import EXIT_FINDINGS, run_with_engine
from memctl.cli.options import Csv, DatabaseUrl, Json
from memctl.schema import verify_schema


def verify_schema_cmd(database_url: DatabaseUrl = None, json_: Json = False, csv_: Csv = False) -> None:
    """Compare the live catalog with the models. Exit 0 clean, 1 drift, 2 error."""
    result = run_with_engine(database_url, verify_schema)
    render.emit(result, as_json=json_, as_csv=csv_)
    if not result.clean:
        raise typer.Exit(EXIT_FINDINGS)
