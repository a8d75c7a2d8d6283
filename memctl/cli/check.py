"""``memctl check-constraints``: constraints not valid, INVALID indexes, data breaking the rules."""

from __future__ import annotations

from memctl.cli.common import finish, run_with_engine
from memctl.cli.options import Csv, Database, Json, grouped


@grouped(Database)
def check_cmd(db: Database, json_: Json = False, csv_: Csv = False) -> None:
    """Report NOT VALID constraints, INVALID indexes and data breaking unenforceable rules. Exit 1 if any."""
    from memctl.data.checks import check_constraints

    result = run_with_engine(db, lambda engine, _url: check_constraints(engine))
    finish(result, result.clean, as_json=json_, as_csv=csv_)
