"""`repro-hooks tag-mlflow` and `repro-hooks pending`: link each commit to the MLflow run it
produced, without slowing the commit or losing a link."""

from __future__ import annotations

import sys

import click

from repro_hooks.commands._common import fail
from repro_hooks.errors import ReproHooksError


def _stdin_lines() -> bytes:
    """git's `<old> <new>` lines for a plain post-rewrite hook; nothing from a terminal."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return b""
    buffer = getattr(stream, "buffer", None)
    data = buffer.read() if buffer is not None else stream.read().encode()
    return data if isinstance(data, bytes) else b""


@click.command("tag-mlflow")
@click.argument("rewrite_command", required=False, type=click.Choice(["amend", "rebase"]))
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="Tracking store. Default: [tool.repro-hooks.mlflow] tracking-uri, else "
    "MLFLOW_TRACKING_URI, else an existing mlflow.db or mlruns/ in the repository root.",
)
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME|ID",
    help="Experiment to search (repeatable). Default: config experiments, else "
    "MLFLOW_EXPERIMENT_ID / MLFLOW_EXPERIMENT_NAME, else every active experiment.",
)
@click.option(
    "--run-id",
    metavar="ID",
    help="Link this run to HEAD now, in the foreground, if the evidence rules accept it (the "
    "same rules as an automatic link); exit 1 with the reason when they refuse.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --run-id: link the run even though the rules refuse it; the link says so "
    "(repro_hooks.link=forced, who forced it and why), and check-model fails it unless told "
    "to allow forced links.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600),
    metavar="SECONDS",
    help="Deadline per delivered job, counting the tracking store's answers, not the import of "
    "mlflow (default: REPRO_HOOKS_MLFLOW_TIMEOUT, else config timeout, else 30).",
)
@click.option(
    "--sync",
    is_flag=True,
    help="Deliver every queued link now, in the foreground; exit 1 if one could not be.",
)
@click.option(
    "--relink-rewritten",
    is_flag=True,
    help="post-rewrite: move links from amended or rebased commits to their new commits.",
)
@click.option(
    "--post-merge",
    is_flag=True,
    help="post-merge: link the merge commit just made (a fast-forward or squash links nothing).",
)
@click.pass_context
def tag_mlflow(
    ctx: click.Context,
    rewrite_command: str | None,
    tracking_uri: str | None,
    experiments: tuple[str, ...],
    run_id: str | None,
    force: bool,
    timeout: float | None,
    sync: bool,
    relink_rewritten: bool,
    post_merge: bool,
) -> None:
    """Link the new commit to the MLflow run it produced (post-commit hook).

    Queues a job under the git directory and returns at once; a detached process delivers it
    with MlflowClient: tags git.commit, git.branch, git.repo_url, dvc.<output> = recorded hash,
    dvc.fingerprint, and the committed DVC outputs as dataset inputs. A job that cannot be
    delivered stays queued and is retried on the next commit and by --sync; once links are
    stuck (config warn-after-attempts / warn-after-hours) the hook says so and exits 1, which
    pre-commit shows (the commit is made all the same).
    """

    from repro_hooks.links.tagging import TagRequest
    from repro_hooks.links.tagging import tag_mlflow as run

    request = TagRequest(
        rewrite_command,
        tracking_uri,
        experiments,
        run_id,
        force,
        timeout,
        sync,
        relink_rewritten,
        post_merge,
    )
    try:
        code = run(request, click.echo, _stdin_lines)
    except ReproHooksError as exc:
        fail(ctx, exc)
        return
    ctx.exit(code)


@click.command("pending")
@click.option("--drop", "drop", metavar="JOB_ID", help="Remove one queued job (see its id).")
@click.pass_context
def pending(ctx: click.Context, drop: str | None) -> None:
    """List queued run links with their last error (exit 0), or drop one. Points at the crash
    log when the background delivery crashed after the last link it delivered."""
    from repro_hooks.links.tagging import pending as run

    try:
        code = run(drop, click.echo)
    except ReproHooksError as exc:
        fail(ctx, exc)
        return
    ctx.exit(code)
