"""One run of `check-dvc` (the working tree against its DVC files) and of `check-dvc-remote`
(the data pushed commits reference, against its DVC remote): each returns the findings and
their fix hint for the command to render."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.git import Git
    from repro_hooks.policy.config import Policy
    from repro_hooks.report import Finding


@dataclass(frozen=True)
class Verdict:
    """Findings to print, and how to fix them."""

    findings: list[Finding]
    hint: str = ""


def check(
    paths: tuple[str, ...],
    *,
    no_cache: bool = False,
    config_file: Path | None = None,
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Verdict:
    """The whole repository, or only PATHS (relative to `cwd`, default the current directory)."""
    from repro_hooks.dvc.check import Scope, dvc_findings, fix_hint
    from repro_hooks.dvc.worktree import collect
    from repro_hooks.git import Git
    from repro_hooks.policy.config import load_config

    git = Git.discover()
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: a bare repository has no working tree to check")
    policy = load_config(git.root, config_file).policy
    here = cwd if cwd is not None else Path.cwd()
    scope = Scope(tuple(_repo_relative(git.root, p, here) for p in paths))
    collected = collect(git, scope, use_cache=not no_cache)
    findings = dvc_findings(
        collected.files, collected.git, collected.tree, policy, scope, collected.deferred
    )
    findings = _without_large_files(git, policy, findings, env)
    return Verdict(findings, fix_hint(findings, root=git.root, cwd=here))


def _without_large_files(
    git: Git, policy: Policy, findings: list[Finding], env: Mapping[str, str]
) -> list[Finding]:
    """Under the framework's commit hook, when block-large-files provably reports a data file
    too (it runs at this commit, is passed that file and finds it over its size limit): leave
    it to it, so each is printed once, with one recipe. Anything not proven: both report
    (repro_hooks/policy/sibling_hooks.py)."""
    import functools

    from repro_hooks.policy import sibling_hooks as sib

    candidates = [f.path for f in findings if f.rule == "data-in-git" and f.path.isprintable()]
    if not candidates or git.root is None:
        return findings
    root = git.root
    argv = sib.parent_argv()
    runner = sib.hook_runner(argv) if argv is not None else None
    hooks = sib.large_files_runs_at_commit(
        root, policy, env, runner, lambda: _other_framework_configs(git)
    )
    if hooks is None:
        return findings
    from repro_hooks.large_files.check import passable_by_pre_commit

    staged = git.staged_paths()  # None before the first commit: every index entry is staged
    tags = sib.identify_tags(root)
    by_policy: dict[Policy, list[str]] = {}
    for path in candidates:
        raw = os.fsencode(path)
        if staged is not None and raw not in staged:
            continue  # pre-commit passes only staged names
        if not passable_by_pre_commit(root, raw):
            continue  # nor names missing on disk or not regular files
        for run_policy in hooks.runs_for(path, functools.partial(tags, path)):
            by_policy.setdefault(run_policy, []).append(path)
    if not by_policy:
        return findings
    from repro_hooks.large_files.check import check_large_files as large_file_check
    from repro_hooks.large_files.check import collect_blobs

    theirs: set[str] = set()
    for run_policy, paths in by_policy.items():
        try:
            blobs = collect_blobs(git, paths=paths, cwd=root)
        except ReproHooksError:
            continue  # a name we cannot map back: both hooks report it
        theirs.update(f.path for f in large_file_check(git, run_policy, blobs))
    return [f for f in findings if not (f.rule == "data-in-git" and f.path in theirs)]


def _other_framework_configs(git: Git) -> bool:
    """Whether any config file other than the root `.pre-commit-config.yaml` exists (tracked or
    not ignored): prek's workspace mode would run those projects on their own files."""
    from repro_hooks.policy.sibling_hooks import PRE_COMMIT_CONFIG, PREK_CONFIG_NAMES

    specs = [f":(top,glob)**/{name}" for name in PREK_CONFIG_NAMES]
    out = git.try_run(
        "ls-files", "-z", "--full-name", "--cached", "--others", "--exclude-standard", "--", *specs
    )
    if out is None:
        return True
    return any(p and p != PRE_COMMIT_CONFIG.encode() for p in out.split(b"\0"))


def _repo_relative(root: Path, path: str, cwd: Path) -> str:
    """A command-line path as a repository-relative POSIX path ("." for the root)."""
    rel = os.path.relpath(os.path.normpath(os.path.join(cwd, path)), root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise ReproHooksError(f"{path}: outside the repository {root}")
    return rel.replace(os.sep, "/")


def _no_note(text: str) -> None:
    pass


def check_remote(
    *,
    hook_args: tuple[str, ...] = (),
    rev_range: str | None = None,
    all_history: bool = False,
    pre_push: bool = False,
    env: Mapping[str, str] = os.environ,
    stdin: TextIO | None = None,
    note: Callable[[str], None] = _no_note,
) -> Verdict:
    """Every object the .dvc and dvc.lock files introduced by the selected commits reference
    must be in its DVC remote; `cache: false` outputs must be in the commit recording them.
    `stdin` (default: sys.stdin) holds git's pre-push lines with `pre_push`; `note` gets a line
    for each `push: false` output (in no remote by design)."""
    from repro_hooks.dvc.names import is_dvc_file
    from repro_hooks.dvc.remote import (
        CommitStages,
        missing_from_remotes,
        push_hint,
        referenced_outputs,
        remote_findings,
        require_dvc,
        uncached_outputs,
        uncommitted_findings,
        uncommitted_hint,
        unpushed_findings,
        unpushed_outputs,
    )
    from repro_hooks.git import Git
    from repro_hooks.history.refs import commits_to_check
    from repro_hooks.report import display_path

    if hook_args and not pre_push:
        raise ReproHooksError(
            f"unexpected argument {hook_args[0]!r} (REMOTE URL go with --pre-push)"
        )
    require_dvc()
    git = Git.discover()
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: check-dvc-remote needs a work tree with .dvc/")
    rev_args = commits_to_check(
        git,
        rev_range=rev_range,
        all_history=all_history,
        pre_push=hook_args if pre_push else None,
        stdin_text=(stdin if stdin is not None else sys.stdin).read() if pre_push else None,
        env=env,
    )
    if rev_args is None:
        return Verdict([])
    blobs = [
        b
        for b in git.introduced_blobs(rev_args)
        if not b.is_gitlink and is_dvc_file(display_path(b.path))
    ]
    contents = git.read_blobs(b.sha for b in blobs)
    from repro_hooks.progress import on_terminal, progress_bar

    stages = CommitStages(git)  # which dvc.lock outputs are cache: false (git keeps them)
    stages.prefetch(blobs)
    outputs = referenced_outputs(blobs, contents, stages)
    if on_terminal():  # a bar on stderr; off a terminal, nothing changes
        with progress_bar("checking DVC remote", len(outputs)) as bar:
            checks = missing_from_remotes(Path(git.root), outputs, bar.advance)
    else:
        checks = missing_from_remotes(Path(git.root), outputs)
    uncommitted = uncommitted_findings(git, uncached_outputs(blobs, contents, stages))
    # push: false data is in no remote by design: a note here (the deploy gate refuses it)
    for unpushed in unpushed_findings(unpushed_outputs(blobs, contents, stages)):
        note(
            f"note: {unpushed.path}: {unpushed.message} (check-model refuses it unless the "
            "protected branch allows push: false data)"
        )
    head = git.try_run("rev-parse", "--verify", "-q", "HEAD")
    hint = "\n".join(
        h
        for h in (
            push_hint(checks, head.decode().strip() if head else None),
            uncommitted_hint(uncommitted),
        )
        if h
    )
    return Verdict(remote_findings(checks) + uncommitted, hint)
