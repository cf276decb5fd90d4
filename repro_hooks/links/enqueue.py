"""The commit-stage half of tag-mlflow: decide, queue a job, start the detached deliverer.

This module is what a post-commit hook loads: it must stay cheap (no mlflow, no dvc; one git
process for the facts it needs, plus file reads).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_hooks.errors import GitError, ReproHooksError
from repro_hooks.git import Git
from repro_hooks.git.process import git_env
from repro_hooks.links.delivery import URI_ENV
from repro_hooks.links.head import job_branch, last_reflog_message, replay_reason
from repro_hooks.links.queue import Job, LinkQueue, QueueFullError
from repro_hooks.policy.config import MlflowConfig
from repro_hooks.tracking.mlflow import TrackingStore, experiment_selection, resolve_tracking_store


@dataclass(frozen=True)
class RepoFacts:
    git_dir: Path  # this work tree's git dir (HEAD, reflog, rebase state)
    common_dir: Path  # shared by every work tree (the queue)
    root: Path
    head: str | None


def repo_facts(cwd: Path | None = None) -> RepoFacts:
    """Everything the post-commit command asks git, in one process."""
    try:
        proc = subprocess.run(
            [
                "git",
                "rev-parse",
                "--absolute-git-dir",
                "--git-common-dir",
                "--show-toplevel",
                "--verify",
                "-q",
                "HEAD",
            ],
            cwd=cwd,
            capture_output=True,
            check=False,
            env=git_env(),
        )
    except FileNotFoundError:
        raise GitError("git: command not found") from None
    # git's lines end at b"\n" only (a path may hold U+2028): never splitlines()
    lines = proc.stdout.decode("utf-8", "surrogateescape").split("\n")[:-1]
    if len(lines) < 3:
        raise GitError(f"{cwd or '.'}: not a git work tree")
    git_dir = Path(lines[0])
    common = Path(lines[1])
    if not common.is_absolute():
        common = (Path(cwd or ".") / common).resolve()
    head = lines[3] if len(lines) > 3 else None
    return RepoFacts(git_dir, common, Path(lines[2]), head)


@dataclass(frozen=True)
class Settings:
    """Options over config over environment, as resolved at commit time."""

    store: TrackingStore | None
    experiments: tuple[str, ...]
    run_id: str | None
    link: str = "latest"  # which runs: links/rules.py choose_runs


def settings(
    root: Path,
    config: MlflowConfig,
    env: Mapping[str, str],
    tracking_uri: str | None = None,
    experiments: Sequence[str] = (),
    run_id: str | None = None,
) -> Settings:
    return Settings(
        store=resolve_tracking_store(root, tracking_uri, config.tracking_uri, env),
        experiments=experiment_selection(experiments, config.experiments, env),
        run_id=run_id or config.run_id,
        link=config.link,
    )


@dataclass(frozen=True)
class QueueResult:
    lines: list[str]
    exit_code: int


NO_STORE = (
    "tag-mlflow: no MLflow tracking store (no --tracking-uri, no [tool.repro-hooks.mlflow] "
    "tracking-uri, no MLFLOW_TRACKING_URI, no mlflow.db or mlruns/ in the repository): "
    "nothing to link"
)


def client_available(store: TrackingStore) -> bool:
    """Whether the delivery process will be able to import the store's tracker client (mlflow
    for an MLflow store; found, not imported)."""
    from repro_hooks.tracking.adapters import client_installed

    return client_installed(store.uri)


def _new_job(
    kind: str, facts: RepoFacts, cfg: Settings, store: TrackingStore, **fields: Any
) -> Job:
    """A job with what every kind carries (where, which store, which experiments, when)."""
    return Job(
        id=LinkQueue(facts.common_dir).new_id(kind),
        kind=kind,
        root=str(facts.root),
        tracking_uri=store.safe_uri,
        uri_origin=store.origin,
        branch=job_branch(facts.git_dir),
        experiments=cfg.experiments,
        created=time.time(),
        extra={"link": cfg.link},
        **fields,
    )


def _queue_and_spawn(
    facts: RepoFacts,
    store: TrackingStore,
    job: Job,
    env: Mapping[str, str],
    what: str,
    has_mlflow: bool | None = None,
) -> QueueResult:
    queue = LinkQueue(facts.common_dir)
    earlier = [j for j in queue.jobs() if j.last_error]
    try:
        queue.put(job)
    except QueueFullError as exc:
        return QueueResult(
            [
                f"tag-mlflow: {what}: link NOT queued ({exc.strerror}); the commit itself is "
                "intact: free space and run `repro-hooks tag-mlflow` to queue it again"
            ],
            1,
        )
    if not (client_available(store) if has_mlflow is None else has_mlflow):
        from repro_hooks.snippets import MLFLOW_HOOK_DEPENDENCIES_SQL, pip_install

        return QueueResult(
            [
                f"tag-mlflow: {what}: queued, but mlflow is not installed next to repro-hooks "
                f"({sys.executable}): add `additional_dependencies: {MLFLOW_HOOK_DEPENDENCIES_SQL}` "
                f"to the hook (pre-commit; docs/install.md) or `{pip_install('mlflow')}`, then run "
                "`repro-hooks tag-mlflow --sync`"
            ],
            1,
        )
    child_env = env_without_pre_commit(env)
    child_env[URI_ENV] = store.uri
    lines: list[str] = []
    try:
        queue.spawn_deliverer(facts.root, child_env)
    except OSError as exc:
        lines.append(
            f"tag-mlflow: {what}: queued, but the delivery process did not start "
            f"({exc.strerror}): run `repro-hooks tag-mlflow --sync`"
        )
    if earlier:
        lines.append(
            f"tag-mlflow: {len(earlier)} earlier link(s) not delivered yet "
            f"(last error: {earlier[-1].last_error}); `repro-hooks pending` lists them"
        )
    return QueueResult(lines, 0)


def _queue_head_link(
    facts: RepoFacts,
    cfg: Settings,
    env: Mapping[str, str],
    now_ms: int | None,
    has_mlflow: bool | None,
) -> QueueResult:
    """Queue the link job of HEAD (a commit or a merge commit made here) and start delivery."""
    assert facts.head is not None
    assert cfg.store is not None
    job = _new_job(
        "link",
        facts,
        cfg,
        cfg.store,
        commit=facts.head,
        before_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        run_id=cfg.run_id,
    )
    return _queue_and_spawn(facts, cfg.store, job, env, facts.head[:12], has_mlflow)


def queue_commit_link(
    facts: RepoFacts,
    cfg: Settings,
    env: Mapping[str, str],
    *,
    now_ms: int | None = None,
    has_mlflow: bool | None = None,
) -> QueueResult:
    """The post-commit step: queue a link job for HEAD unless git is replaying commits."""
    if facts.head is None:
        raise ReproHooksError("tag-mlflow: the repository has no commit yet")
    if cfg.store is None:
        return QueueResult([NO_STORE], 0)
    short = facts.head[:12]
    reason = replay_reason(facts.git_dir, env)
    if reason is not None:
        return QueueResult(
            [f"tag-mlflow: {short}: not linked: {reason} (post-rewrite moves existing links)"], 0
        )
    return _queue_head_link(facts, cfg, env, now_ms, has_mlflow)


def queue_merge_link(
    facts: RepoFacts,
    cfg: Settings,
    env: Mapping[str, str],
    *,
    now_ms: int | None = None,
    has_mlflow: bool | None = None,
) -> QueueResult:
    """The post-merge step: a merge that made a commit is linked like any commit (git runs no
    post-commit for it). A fast-forward or a squash merge made no commit here: nothing to do
    (a squash merge's commit comes later, through post-commit)."""
    if facts.head is None or cfg.store is None:
        return QueueResult([] if facts.head is None else [NO_STORE], 0)
    short = facts.head[:12]
    last = last_reflog_message(facts.git_dir) or ""
    git = Git(facts.git_dir, facts.root)
    parents = (git.try_run("rev-parse", f"{facts.head}^@") or b"").split()
    if len(parents) < 2 or not last.startswith(("merge", "pull")):
        return QueueResult([f"tag-mlflow: {short}: no merge commit made here: nothing to link"], 0)
    return _queue_head_link(facts, cfg, env, now_ms, has_mlflow)


# ---- post-rewrite -----------------------------------------------------------------------------


def parse_rewrite_lines(data: bytes) -> list[tuple[str, str]]:
    """`<old> <new> [extra]` lines (git's post-rewrite stdin and rebase's rewritten-list)."""
    pairs = []
    for line in data.decode("ascii", "replace").split("\n"):
        parts = line.split()
        if len(parts) >= 2 and all(c in "0123456789abcdef" for c in parts[0] + parts[1]):
            pairs.append((parts[0], parts[1]))
    return pairs


def _patch_ids(git: Git, *rev_args: str) -> dict[str, str]:
    log = git.run("log", "--no-merges", "-p", "--format=commit %H", *rev_args, "--")
    if not log.strip():
        return {}
    out = git.run("patch-id", "--stable", input=log)
    ids: dict[str, str] = {}
    for line in out.decode().splitlines():
        pid, _, commit = line.partition(" ")
        ids[commit] = pid
    return ids


def _authorship(git: Git, *rev_args: str) -> dict[str, str]:
    out = git.run("log", "-z", "--format=%H %an <%ae> %ad", "--date=raw", *rev_args, "--")
    result = {}
    for record in out.decode("utf-8", "replace").split("\0"):
        commit, _, ident = record.strip().partition(" ")
        if commit:
            result[commit] = ident
    return result


def _match_unique(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    by_key: dict[str, list[str]] = {}
    for commit, key in new.items():
        by_key.setdefault(key, []).append(commit)
    old_count: dict[str, int] = {}
    for key in old.values():
        old_count[key] = old_count.get(key, 0) + 1
    return {
        commit: by_key[key][0]
        for commit, key in old.items()
        if len(by_key.get(key, [])) == 1 and old_count[key] == 1
    }


def rewritten_pairs(git: Git, git_dir: Path, command: str, stdin: bytes) -> list[tuple[str, str]]:
    """old -> new commits of an amend or rebase. From git's stdin lines when given (a plain git
    hook); else from rebase's own rewritten list, which still exists while post-rewrite runs;
    else from the reflog (amend: HEAD@{1} -> HEAD) or by matching ORIG_HEAD..HEAD to
    HEAD..ORIG_HEAD by patch id, then by author and author date (rebase)."""
    pairs = parse_rewrite_lines(stdin)
    if pairs:
        return pairs
    for name in ("rebase-merge/rewritten-list", "rebase-apply/rewritten"):
        try:
            pairs = parse_rewrite_lines((git_dir / name).read_bytes())
        except OSError:
            continue
        if pairs:
            return pairs
    if command == "amend":
        old = git.try_run("rev-parse", "--verify", "-q", "HEAD@{1}")
        new = git.try_run("rev-parse", "--verify", "-q", "HEAD")
        if old and new:
            return [(old.decode().strip(), new.decode().strip())]
        return []
    if git.try_run("rev-parse", "--verify", "-q", "ORIG_HEAD") is None:
        return []
    old_side = ("ORIG_HEAD", "--not", "HEAD")
    new_side = ("HEAD", "--not", "ORIG_HEAD")
    mapping = _match_unique(_patch_ids(git, *old_side), _patch_ids(git, *new_side))
    old_auth = {c: k for c, k in _authorship(git, *old_side).items() if c not in mapping}
    mapping.update(_match_unique(old_auth, _authorship(git, *new_side)))
    return sorted(mapping.items())


def queue_relink(
    facts: RepoFacts, cfg: Settings, env: Mapping[str, str], command: str, stdin: bytes
) -> QueueResult:
    """The post-rewrite step: queue moving links from rewritten commits to their new SHAs."""
    if cfg.store is None:
        return QueueResult([NO_STORE], 0)
    git = Git(facts.git_dir, facts.root)
    pairs = [(o, n) for o, n in rewritten_pairs(git, facts.git_dir, command, stdin) if o != n]
    if not pairs:
        return QueueResult([f"tag-mlflow: {command or 'rewrite'}: no rewritten commit found"], 0)
    job = _new_job("relink", facts, cfg, cfg.store, pairs=tuple(pairs))
    return _queue_and_spawn(facts, cfg.store, job, env, f"{command or 'rewrite'}")


def pending_lines(common_dir: Path) -> list[str]:
    lines = []
    for job in LinkQueue(common_dir).jobs():
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created))
        state = (
            f"{job.attempts} attempt(s), last error: {job.last_error}"
            if job.last_error
            else "not attempted yet"
        )
        lines.append(f"{job.id}: {job.describe()} -> {job.tracking_uri} (queued {when}; {state})")
    return lines


def delivery_crash_line(common_dir: Path) -> str | None:
    """One line pointing at the crash log when the link delivery crashed (exit 3) after the last
    link it delivered; None otherwise."""
    from repro_hooks.crash import last_crash
    from repro_hooks.links.delivery import COMMAND

    queue = LinkQueue(common_dir)
    crashed = last_crash(queue.crash_log, COMMAND)
    if crashed is None:
        return None
    delivered = queue.last_delivered()
    if delivered is not None and delivered >= crashed:
        return None
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(crashed))
    return (
        f"pending: the link delivery crashed at {when} (an internal error, not the tracking "
        f"store); the report is in {queue.crash_log}: please attach it to a bug report"
    )


def env_without_pre_commit(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("PRE_COMMIT_")} | {
        "PYTHONUNBUFFERED": "1"
    }


def drop_job(common_dir: Path, job_id: str) -> bool:
    queue = LinkQueue(common_dir)
    for job in queue.jobs():
        if job.id == job_id:
            queue.remove(job)
            return True
    return False
