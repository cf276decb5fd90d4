"""One run of `tag-mlflow` and of `pending`, short of parsing options: the mode chosen from the
options and git's hook environment (post-commit, post-merge, post-rewrite, `--run-id`, `--sync`),
the job queued (links/enqueue.py) or delivered in the foreground (links/delivery.py, links/given.py),
and every line said through `out`. The click commands (commands/tag_mlflow.py) call `tag_mlflow`
and `pending`, and exit with what they return."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.links.enqueue import RepoFacts, Settings
    from repro_hooks.policy.config import MlflowConfig


@dataclass(frozen=True)
class TagRequest:
    """What `tag-mlflow` was asked (its options, parsed)."""

    rewrite_command: str | None = None
    tracking_uri: str | None = None
    experiments: tuple[str, ...] = ()
    run_id: str | None = None
    force: bool = False
    timeout: float | None = None
    sync: bool = False
    relink_rewritten: bool = False
    post_merge: bool = False


def tag_mlflow(
    request: TagRequest,
    out: Callable[[str], None],
    stdin: Callable[[], bytes],
    env: Mapping[str, str] = os.environ,
) -> int:
    """Do what the request and the hook environment ask; the exit code. `stdin` gives git's
    `<old> <new>` lines of a post-rewrite hook (read only then)."""
    from repro_hooks.links.enqueue import (
        queue_commit_link,
        queue_merge_link,
        queue_relink,
        repo_facts,
        settings,
    )
    from repro_hooks.policy.config import load_config

    r = request
    if sum((r.sync, r.relink_rewritten, r.post_merge, r.run_id is not None)) > 1:
        raise ReproHooksError(
            "--sync, --relink-rewritten, --post-merge and --run-id conflict: give one of them"
        )
    if r.force and r.run_id is None:
        raise ReproHooksError("--force goes with --run-id ID (the run to link anyway)")
    facts = repo_facts()
    env = dict(env)
    config = load_config(facts.root).mlflow
    if r.sync:
        return _sync(facts.common_dir, r.tracking_uri, r.timeout, config.timeout, out)
    cfg = settings(facts.root, config, env, r.tracking_uri, r.experiments, r.run_id)
    if r.run_id is not None:
        return _link_given_run(facts, cfg, r.tracking_uri, r.timeout, r.force, out)
    if r.relink_rewritten or r.rewrite_command:
        command = r.rewrite_command or env.get("PRE_COMMIT_REWRITE_COMMAND", "")
        result = queue_relink(facts, cfg, env, command, stdin())
    elif r.post_merge:
        result = queue_merge_link(facts, cfg, env)
    else:
        result = queue_commit_link(facts, cfg, env)
    for line in result.lines:
        out(line)
    warning = stuck_warning(facts.common_dir, config, time.time())
    if warning:
        out(warning)
    return max(result.exit_code, 1 if warning else 0)


def pending(drop: str | None, out: Callable[[str], None]) -> int:
    """List queued run links with their last error, or drop one; the exit code."""
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
        out(f"pending: dropped {drop}")
        return 0
    lines = pending_lines(facts.common_dir)
    for line in lines:
        out(line)
    if not lines:
        out("pending: no queued run link")
    crashed = delivery_crash_line(facts.common_dir)
    if crashed:
        out(crashed)
    return 0


def stuck_warning(common_dir: Path, config: MlflowConfig, now: float) -> str | None:
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
    facts: RepoFacts,
    cfg: Settings,
    tracking_uri: str | None,
    timeout: float | None,
    force: bool,
    out: Callable[[str], None],
) -> int:
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
    import warnings

    from repro_hooks.environ import restored

    try:
        with restored(os.environ, HTTP_KNOBS), warnings.catch_warnings():
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
    out(opener.safe(result.line))
    return 0 if result.linked else 1


def _sync(
    common_dir: Path,
    tracking_uri: str | None,
    timeout: float | None,
    configured_timeout: float,
    out: Callable[[str], None],
) -> int:
    from repro_hooks.links.delivery import QueueRunner, timeout_from_env
    from repro_hooks.links.queue import LinkQueue

    queue = LinkQueue(common_dir)
    if not queue.jobs():
        out("tag-mlflow: nothing queued")
        return 0
    try:
        log_start = queue.log_path.stat().st_size
    except OSError:
        log_start = 0
    env = dict(os.environ)
    effective = timeout or timeout_from_env(env) or configured_timeout
    runner = QueueRunner(queue, env, uri_option=tracking_uri, timeout=timeout, out=out)
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
            out(line.partition(" ")[2] or line)
        if not done:
            out("tag-mlflow: nothing left to deliver")
    if report.lock_busy:
        out("tag-mlflow: another delivery is still running; try again shortly")
    if report.waiting:
        out(f"tag-mlflow: {report.waiting} later link(s) wait behind it")
    return 0 if report.ok else 1
