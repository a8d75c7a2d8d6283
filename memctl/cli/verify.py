"""``memctl verify-schema``: is the live database what the models say it is?"""

from __future__ import annotations

from typing import Annotated

import typer

from memctl.cli.common import finish, run_with_engine
from memctl.cli.options import Csv, Database, Json, grouped, parse_list


@grouped(Database)
def verify_schema_cmd(
    db: Database,
    target: Annotated[str, typer.Option(
        "--target", metavar="postgres|citus",
        help="citus: also report keys and tables that stop distributing by org_id.")] = "postgres",
    app_role: Annotated[str | None, typer.Option(
        "--app-role", metavar="ROLE", show_default=False,
        help="The role the application uses; it and its members must own nothing in the schema and not "
             "bypass RLS (default: memory_app, the role the schema grants to).")] = None,
    allow_grants_to: Annotated[str | None, typer.Option(
        "--allow-grants-to", metavar="ROLE[,ROLE]", show_default=False,
        help="Your own roles whose grants in the schema are not drift (other_role_privileges). Grants to "
             "memory_app, memctl_admin and PUBLIC are always compared.")] = None,
    json_: Json = False, csv_: Csv = False,
) -> None:
    """Compare the live catalog with the models, the revision with head and the applied revision
    files with their recorded checksums. Exit 0 clean, 1 drift, 2 error."""
    from memctl.schema.verify import verify_schema

    allowed = parse_list("--allow-grants-to", allow_grants_to, str.strip)
    result = run_with_engine(db, lambda engine, url: verify_schema(engine, url, target, app_role, allowed))
    finish(result, result.clean, as_json=json_, as_csv=csv_)
