"""`repro-hooks check-dvc`: data kept out of git must be described by DVC, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from repro_hooks.commands._common import (
    FilesCommand,
    config_option,
    finish,
    format_option,
    guarded,
)

if TYPE_CHECKING:
    from repro_hooks.git import Git
    from repro_hooks.policy.config import Policy
    from repro_hooks.report import Finding


@click.command("check-dvc", cls=FilesCommand)
@click.argument("paths", nargs=-1)  # plain strings: click.Path would stat every name
@click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Hash everything again instead of trusting the hash cache under the git directory.",
)
@config_option()
@format_option
@click.pass_context
def check_dvc(
    ctx: click.Context,
    paths: tuple[str, ...],
    no_cache: bool,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Check that every data file is in DVC and every DVC file matches the working tree.

    Reports data stored in git, data described by no .dvc file or dvc.yaml stage, .dvc files and
    dvc.lock stages whose recorded hashes, params or cmd differ from the working tree, missing
    outputs, cached outputs git does not ignore, and malformed or unsafe DVC files. With no
    PATHS, checks the whole repository; PATHS restrict the check to them.
    """

    def body() -> None:
        from repro_hooks.dvc.check import Scope, dvc_findings, fix_hint
        from repro_hooks.dvc.worktree import collect
        from repro_hooks.errors import ReproHooksError
        from repro_hooks.git import Git
        from repro_hooks.policy.config import load_config

        git = Git.discover()
        if git.root is None:
            raise ReproHooksError(f"{git.git_dir}: a bare repository has no working tree to check")
        policy = load_config(git.root, config_file).policy
        scope = Scope(tuple(_repo_relative(git.root, p) for p in paths))
        collected = collect(git, scope, use_cache=not no_cache)
        findings = dvc_findings(
            collected.files, collected.git, collected.tree, policy, scope, collected.deferred
        )
        findings = _without_large_files(git, policy, findings)
        finish(ctx, findings, fmt, fix_hint=fix_hint(findings, root=git.root, cwd=Path.cwd()))

    guarded(ctx, body)


def _without_large_files(git: Git, policy: Policy, findings: list[Finding]) -> list[Finding]:
    """Under the framework's commit hook, when block-large-files provably reports a data file
    too (it runs at this commit, is passed that file and finds it over its size limit): leave
    it to it, so each is printed once, with one recipe. Anything not proven: both report
    (repro_hooks/policy/sibling_hooks.py)."""
    import functools
    import os

    from repro_hooks.policy import sibling_hooks as sib

    candidates = [f.path for f in findings if f.rule == "data-in-git" and f.path.isprintable()]
    if not candidates or git.root is None:
        return findings
    root = git.root
    argv = sib.parent_argv()
    runner = sib.hook_runner(argv) if argv is not None else None
    hooks = sib.large_files_runs_at_commit(
        root, policy, os.environ, runner, lambda: _other_framework_configs(git)
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
    from repro_hooks.errors import ReproHooksError
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


def _repo_relative(root: Path, path: str) -> str:
    """A command-line path as a repository-relative POSIX path ("." for the root)."""
    import os

    from repro_hooks.errors import ReproHooksError

    rel = os.path.relpath(os.path.normpath(os.path.join(os.getcwd(), path)), root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise ReproHooksError(f"{path}: outside the repository {root}")
    return rel.replace(os.sep, "/")
