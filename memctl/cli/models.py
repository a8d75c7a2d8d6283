"""``memctl models``: change the embedding model with zero downtime (list, add, backfill, index,
set-default, retire). The README's "Changing the embedding model" gives the procedure, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memctl.cli import render
from memctl.cli.common import confirm, current_run, finish, progress_bar, run_plain, run_with_engine
from memctl.cli.options import (
    BatchSize,
    BuildMemoryBudget,
    Database,
    Json,
    MaxRuntime,
    Yes,
    grouped,
    parse_duration,
    parse_size,
)
from memctl.errors import ExitCode

app = typer.Typer(help="Embedding models: list, add, backfill, index, set-default, retire (zero-downtime change).",
                  no_args_is_help=True, rich_markup_mode=None)


@app.callback()
def _group(ctx: typer.Context) -> None:
    """Embedding models: list, add, backfill, index, set-default, retire (zero-downtime change)."""
    current_run().command = f"models {ctx.invoked_subcommand}"  # the JSON record names the subcommand

ModelName = Annotated[str, typer.Argument(metavar="NAME", help="The model's registered name.", show_default=False)]
OrgSlug = Annotated[str | None, typer.Option("--org", metavar="SLUG", help="One organisation (default: all).")]


@app.command("list")
@grouped(Database)
def list_cmd(
    db: Database,
    by_org: Annotated[bool, typer.Option("--by-org", help="Coverage per organisation too.")] = False,
    json_: Json = False,
) -> None:
    """Every model: parameters, state, default, HNSW indexes, embedded rows, coverage, stale rows."""
    from memctl.lifecycle.status import list_models

    finish(run_with_engine(db, lambda engine, _url: list_models(engine, by_org)), as_json=json_)


@app.command("add")
@grouped(Database)
def add_cmd(
    db: Database,
    name: ModelName,
    dim: Annotated[int, typer.Option("--dim", metavar="D", help="Dimensions (vector <= 2000, halfvec <= 4000).",
                                     show_default=False)],
    distance: Annotated[str, typer.Option("--distance", help="cosine, l2 or inner_product.")] = "cosine",
    storage: Annotated[str, typer.Option("--storage", help="The index's type: vector or halfvec.")] = "vector",
    m: Annotated[int, typer.Option("--m", help="HNSW m (pgvector: 2..100).")] = 16,
    ef_construction: Annotated[int, typer.Option("--ef-construction", help="HNSW ef_construction (>= 2*m).")] = 64,
    json_: Json = False,
) -> None:
    """Register a model (state registered: backfill it, then build its index)."""
    from memctl.data.registry import check_model_params
    from memctl.lifecycle.status import add

    run_plain(lambda: check_model_params(dim, distance, storage, m, ef_construction))
    finish(run_with_engine(db, lambda engine, _url: add(engine, name, dim, distance=distance, storage=storage, m=m,
                                                        ef_construction=ef_construction)), as_json=json_)


@app.command("backfill")
@grouped(Database)
def backfill_cmd(
    db: Database,
    name: ModelName,
    from_file: Annotated[Path | None, typer.Option(
        "--from", metavar="FILE.npz", help="Vectors of texts (keys texts, embeddings, model), matched by content "
        "hash.")] = None,
    embedder: Annotated[str | None, typer.Option(
        "--embedder", metavar="SPEC", help="module:callable ((list[str]) -> (n, d) float32) or openai:MODEL.")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", metavar="URL", help="openai: the endpoint's base URL (POST URL/embeddings).")] = None,
    api_key_env: Annotated[str, typer.Option(
        "--api-key-env", metavar="VAR", help="openai: the environment variable holding the key.")] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64,
                                             help="openai: requests in flight at most.")] = 4,
    request_size: Annotated[int, typer.Option("--request-size", min=1, max=2048,
                                              help="openai: texts per request.")] = 64,
    org: OrgSlug = None,
    stale: Annotated[bool, typer.Option("--stale", help="Also recompute embeddings whose content changed.")] = False,
    batch_size: BatchSize = 1000,
    json_: Json = False,
) -> None:
    """Write the model's embeddings where they are missing (or stale): resumable, one run per model."""
    from memctl.lifecycle.backfill import backfill_model

    options = {"base_url": base_url, "api_key_env": api_key_env, "request_size": request_size,
               "concurrency": concurrency}
    with progress_bar(rate="rows") as progress:
        result = run_with_engine(db, lambda engine, _url: backfill_model(
            engine, name, from_file=from_file, embedder=embedder, embedder_options=options, org=org, stale=stale,
            batch_size=batch_size, progress=progress))
    finish(result, result.clean, as_json=json_)


@app.command("index")
@grouped(Database)
def index_cmd(
    db: Database,
    name: ModelName,
    memory: BuildMemoryBudget = "1GB",
    json_: Json = False,
) -> None:
    """Build the model's HNSW indexes concurrently (services keep working), then mark it ready."""
    from memctl.lifecycle.index import build_index

    budget = run_plain(lambda: parse_size("--memory", memory))
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, _url: build_index(engine, name, budget, progress))
    for warning in result.warnings:
        render.note(f"warning: {warning}")
    finish(result, result.ok, as_json=json_)


@app.command("set-default")
@grouped(Database)
def set_default_cmd(
    db: Database,
    name: ModelName,
    org: Annotated[str | None, typer.Option(
        "--org", metavar="SLUG", help="Switch this organisation only (a canary tenant first).")] = None,
    min_coverage: Annotated[float, typer.Option(
        "--min-coverage", min=0.0, max=1.0, help="Share of the scope's active memories that must have an "
        "embedding of the model.")] = 1.0,
    json_: Json = False,
) -> None:
    """Switch the global default (or one organisation) to the model, atomically; refused (exit 1,
    nothing changed) unless its indexes are valid and coverage reaches --min-coverage."""
    from memctl.lifecycle.switch import set_default

    result = run_with_engine(db, lambda engine, _url: set_default(engine, name, org, min_coverage))
    if result.refused:
        render.error(f"refused: {result.refused}")
    finish(result, result.ok, as_json=json_)


@app.command("retire")
@grouped(Database)
def retire_cmd(
    db: Database,
    name: ModelName,
    batch_size: BatchSize = 5000,
    max_runtime: MaxRuntime = None,
    yes: Yes = False,
    json_: Json = False,
) -> None:
    """Delete the model's embeddings and indexes and unregister it; refused (exit 1) while in use."""
    from memctl.lifecycle.switch import retire

    budget = run_plain(lambda: parse_duration("--max-runtime", max_runtime))
    if not yes and not confirm(f"Retire model {name!r}? Its embeddings and HNSW indexes are deleted."):
        render.error("aborted: nothing changed")
        raise typer.Exit(ExitCode.ABORTED)
    with progress_bar() as progress:
        result = run_with_engine(db, lambda engine, _url: retire(
            engine, name, batch_size=batch_size, max_runtime_s=budget, progress=progress))
    if result.refused:
        render.error(f"refused: {result.refused}")
    elif result.stopped_by_budget:
        render.error("stopped by --max-runtime: run memctl models retire again to go on")
    finish(result, result.ok, as_json=json_)
