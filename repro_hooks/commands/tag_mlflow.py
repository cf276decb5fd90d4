"""`repro-hooks tag-mlflow` and `repro-hooks pending`: link each commit to the MLflow run it
produced, without slowing the commit or losing a link."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from repro_hooks.commands._common import guarded
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

    def body() -> None:
        from repro_hooks.links.enqueue import (
            queue_commit_link,
            queue_merge_link,
            queue_relink,
            repo_facts,
            settings,
        )
        from repro_hooks.policy.config import load_config

        if sum((sync, relink_rewritten, post_merge, run_id is not None)) > 1:
            raise ReproHooksError(
                "--sync, --relink-rewritten, --post-merge and --run-id conflict: give one of them"
            )
        if force and run_id is None:
            raise ReproHooksError("--force goes with --run-id ID (the run to link anyway)")
        facts = repo_facts()
        env = dict(os.environ)
        config = load_config(facts.root).mlflow
        if sync:
            _sync(ctx, facts.common_dir, tracking_uri, timeout, config.timeout)
            return
        cfg = settings(facts.root, config, env, tracking_uri, experiments, run_id)
        if run_id is not None:
            _link_given_run(ctx, facts, cfg, tracking_uri, timeout, force)
            return
        if relink_rewritten or rewrite_command:
            command = rewrite_command or env.get("PRE_COMMIT_REWRITE_COMMAND", "")
            result = queue_relink(facts, cfg, env, command, _stdin_lines())
        elif post_merge:
            result = queue_merge_link(facts, cfg, env)
        else:
            result = queue_commit_link(facts, cfg, env)
        for line in result.lines:
            click.echo(line)
        warning = stuck_warning(facts.common_dir, config, time.time())
        if warning:
            click.echo(warning)
        ctx.exit(max(result.exit_code, 1 if warning else 0))

    guarded(ctx, body)


def stuck_warning(common_dir: Path, config: Any, now: float) -> str | None:
    """One line when queued links look stuck (failed on `warn-after-attempts` deliveries, one
    per commit, or queued `warn-after-hours` ago), else None. Reads the queue only: it never
    slows the commit. The post-commit hook then exits 1 so that pre-commit, which hides a
    passing hook's output, shows the line (a failing post-commit hook cannot undo the commit)."""
    from repro_hooks.links.queue import LinkQueue

    stuck = LinkQueue(common_dir).stuck(now, config.warn_after_attempts, config.warn_after_hours)
    if not stuck:
        return None
    oldest = stuck[0]
    age = (now - oldest.created) / 3600
    error = f"; last error: {oldest.last_error}" if oldest.last_error else ""
    return (
        f"tag-mlflow: {len(stuck)} run link(s) stuck, the oldest ({oldest.describe()} -> "
        f"{oldest.tracking_uri}) queued {age:.1f} h ago, {oldest.attempts} failed "
        f"attempt(s){error}; your commits are made: `repro-hooks pending` lists them, "
        "`repro-hooks tag-mlflow --sync` retries"
    )


def _link_given_run(
    ctx: click.Context,
    facts: Any,
    cfg: Any,
    tracking_uri: str | None,
    timeout: float | None,
    force: bool,
) -> None:
    """`--run-id`: judge and link in the foreground; exit 1 with the reason on a refusal."""
    from repro_hooks.git import Git
    from repro_hooks.links.delivery import (
        HTTP_KNOBS,
        OPEN_DEADLINE,
        DeliveryTimeout,
        StoreOpener,
        deadline,
        set_http_bounds,
    )
    from repro_hooks.links.given import link_given_run
    from repro_hooks.links.head import job_branch
    from repro_hooks.links.queue import Job

    if facts.head is None:
        raise ReproHooksError("tag-mlflow: the repository has no commit yet")
    if cfg.store is None:
        raise ReproHooksError(
            "tag-mlflow --run-id: no MLflow tracking store (give --tracking-uri, set "
            "MLFLOW_TRACKING_URI, or [tool.repro-hooks.mlflow] tracking-uri)"
        )
    job = Job(
        id="run-id",
        kind="link",
        root=str(facts.root),
        tracking_uri=cfg.store.safe_uri,
        uri_origin=cfg.store.origin,
        commit=facts.head,
        branch=job_branch(facts.git_dir),
        experiments=cfg.experiments,
        run_id=cfg.run_id,
        created=time.time(),
    )
    env = dict(os.environ)
    opener = StoreOpener(env, uri_option=tracking_uri, timeout=timeout)
    seconds = opener.timeout(job)
    saved = {k: os.environ.get(k) for k in HTTP_KNOBS}
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with deadline(OPEN_DEADLINE):
                store = opener.open(job)
            set_http_bounds(os.environ, seconds)
            with deadline(seconds):
                result = link_given_run(job, Git.discover(facts.root), store, force=force)
    except DeliveryTimeout:
        raise ReproHooksError(
            f"{cfg.store.safe_uri}: no answer within {seconds:g}s (tracking store not answering)"
        ) from None
    except ReproHooksError:
        raise
    except Exception as exc:
        from repro_hooks.links.delivery import error_text

        first = (error_text(exc).splitlines() or [type(exc).__name__])[0][:500]
        raise ReproHooksError(opener.safe(f"{cfg.store.safe_uri}: {first}")) from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    click.echo(opener.safe(result.line))
    ctx.exit(0 if result.linked else 1)


def _sync(
    ctx: click.Context,
    common_dir: Path,
    tracking_uri: str | None,
    timeout: float | None,
    configured_timeout: float,
) -> None:
    from repro_hooks.links.delivery import QueueRunner, timeout_from_env
    from repro_hooks.links.queue import LinkQueue

    queue = LinkQueue(common_dir)
    if not queue.jobs():
        click.echo("tag-mlflow: nothing queued")
        ctx.exit(0)
    try:
        log_start = queue.log_path.stat().st_size
    except OSError:
        log_start = 0
    env = dict(os.environ)
    effective = timeout or timeout_from_env(env) or configured_timeout
    runner = QueueRunner(queue, env, uri_option=tracking_uri, timeout=timeout, out=click.echo)
    report = runner.run(lock_wait=max(30.0, effective * 3))
    if not report.delivered and not report.failed and not report.lock_busy:
        # a detached delivery finished the queue while we waited: say what it did
        try:
            with queue.log_path.open("rb") as fh:
                fh.seek(log_start)
                done = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            done = []
        for line in done:
            click.echo(line.partition(" ")[2] or line)
        if not done:
            click.echo("tag-mlflow: nothing left to deliver")
    if report.lock_busy:
        click.echo("tag-mlflow: another delivery is still running; try again shortly")
    if report.waiting:
        click.echo(f"tag-mlflow: {report.waiting} later link(s) wait behind it")
    ctx.exit(0 if report.ok else 1)


@click.command("pending")
@click.option("--drop", "drop", metavar="JOB_ID", help="Remove one queued job (see its id).")
@click.pass_context
def pending(ctx: click.Context, drop: str | None) -> None:
    """List queued run links with their last error (exit 0), or drop one. Points at the crash
    log when the background delivery crashed after the last link it delivered."""

    def body() -> None:
        from repro_hooks.links.enqueue import (
            delivery_crash_line,
            drop_job,
            pending_lines,
            repo_facts,
        )

        facts = repo_facts()
        if drop is not None:
            if not drop_job(facts.common_dir, drop):
                raise ReproHooksError(f"pending: no queued job {drop!r}")
            click.echo(f"pending: dropped {drop}")
            ctx.exit(0)
        lines = pending_lines(facts.common_dir)
        for line in lines:
            click.echo(line)
        if not lines:
            click.echo("pending: no queued run link")
        crashed = delivery_crash_line(facts.common_dir)
        if crashed:
            click.echo(crashed)
        ctx.exit(0)

    guarded(ctx, body)
