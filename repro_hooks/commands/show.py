"""`repro-hooks show`: what a teammate asks about links. A commit's runs; a run's commit, stage
and data; a model version's chain. The questions are asked by links/lookup.py; this module parses
the options and prints the answer."""

from __future__ import annotations

import click

from repro_hooks.commands._common import fail
from repro_hooks.errors import ReproHooksError
from repro_hooks.links.lookup import DEFAULT_TIMEOUT


@click.command("show")
@click.argument("rev", required=False, metavar="[COMMIT]")
@click.option("--run", "run_id", metavar="RUN_ID", help="Show this run: its commit, stage, data.")
@click.option(
    "--model",
    metavar="NAME/VERSION",
    help="Show a model version's chain: version, run, commit, data and whether each DVC object "
    "is in its DVC remote (also NAME@ALIAS, models:/NAME/VERSION, models:/NAME@ALIAS).",
)
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="Tracking server. Default: [tool.repro-hooks.mlflow] tracking-uri, else "
    "MLFLOW_TRACKING_URI, else an existing mlflow.db or mlruns/ in the repository root.",
)
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME|ID",
    help="For a commit: experiment to search (repeatable). Default: config experiments, else "
    "MLFLOW_EXPERIMENT_ID / MLFLOW_EXPERIMENT_NAME, else every active experiment.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600),
    metavar="SECONDS",
    help=f"Deadline for the tracking server's answers (default {DEFAULT_TIMEOUT:g}).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json for tools (schema repro-hooks-show/1, see docs/commands.md).",
)
@click.pass_context
def show(
    ctx: click.Context,
    rev: str | None,
    run_id: str | None,
    model: str | None,
    tracking_uri: str | None,
    experiments: tuple[str, ...],
    timeout: float | None,
    fmt: str,
) -> None:
    """Show run links: the runs linked to COMMIT (default HEAD), or one run (--run), or a model
    version's chain (--model).

    Exit 0 with the answer (also when nothing is linked), 2 usage (unknown commit, run, model,
    version or alias; no tracking server; server unreachable within the deadline).
    """

    from repro_hooks.links.lookup import ShowRequest, answer

    request = ShowRequest(rev, run_id, model, tracking_uri, experiments, timeout, fmt)
    try:
        text = answer(request)
    except ReproHooksError as exc:
        fail(ctx, exc)
        return
    click.echo(text)
    ctx.exit(0)
