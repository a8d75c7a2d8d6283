"""``memctl check-constraints``: constraints not valid, INVALID indexes, data breaking the rules."""

from __future__ import annotations

from memctl.cli.common import findings_exit, run_with_engine
from memctl.cli.options import Csv, DatabaseUrl, Json


def check_cmd(database_url: DatabaseUrl = None, json_: Json = False, csv_: Csv = False) -> None:
    """Report NOT VALID constraints, INVALID indexes and data breaking unenforceable rules. Exit 1 if any."""
    from memctl.cli import render
    from memctl.data.checks import check_constraints

    result = run_with_engine(database_url, lambda engine, _url: check_constraints(engine))
    render.emit(result, as_json=json_, as_csv=csv_)
    findings_exit(result.clean)
