"""``memctl db start|stop|status|url``: the embedded PostgreSQL + pgvector server."""

from __future__ import annotations

import typer

from memctl.cli.common import current_run, finish, run_plain
from memctl.cli.options import Json

app = typer.Typer(help="Manage the embedded PostgreSQL + pgvector server (data in MEMCTL_HOME).",
                  no_args_is_help=True)


@app.callback()
def _group(ctx: typer.Context) -> None:
    """Manage the embedded PostgreSQL + pgvector server (data in MEMCTL_HOME)."""
    current_run().command = f"db {ctx.invoked_subcommand}"  # the JSON record names the subcommand


@app.command()
def start(json_: Json = False) -> None:
    """Start the embedded server (initialising it on first use) and show its status."""
    from memctl.config import home_dir
    from memctl.db import embedded

    home = home_dir()
    run_plain(lambda: embedded.start(home))
    finish(embedded.status(home), as_json=json_)


@app.command()
def stop(json_: Json = False) -> None:
    """Stop the embedded server (fast shutdown). Its data stays in MEMCTL_HOME."""
    from memctl.cli import render
    from memctl.config import home_dir
    from memctl.db import embedded

    home = home_dir()
    if not run_plain(lambda: embedded.stop(home)):
        render.note("the embedded server was not running")
    finish(embedded.status(home), as_json=json_)


@app.command()
def status(json_: Json = False) -> None:
    """Show whether the embedded server is initialised and running."""
    from memctl.config import home_dir
    from memctl.db import embedded

    finish(embedded.status(home_dir()), as_json=json_)


@app.command()
def url() -> None:
    """Print the embedded database's URL (starting the server if needed)."""
    from memctl.cli import render
    from memctl.config import home_dir
    from memctl.db import embedded

    server = embedded.status(home_dir())
    if not server.running:
        render.note(f"memctl: starting the embedded server in {server.pgdata}")
    u = run_plain(lambda: embedded.start(home_dir()))
    typer.echo(u.render_as_string(hide_password=True))
