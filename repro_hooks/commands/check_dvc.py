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
    "--no-cache", "no_cache", is_flag=True,
    help="Hash everything again instead of trusting the hash cache under the git directory.",
)  # fmt: skip
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
    """Under pre-commit, when block-large-files runs at this commit too: leave to it the data
    files it reports (over its size limit), so each is printed once, with one recipe."""
    import os

    from repro_hooks.policy.sibling_hooks import large_files_policy_at_commit

    candidates = [f.path for f in findings if f.rule == "data-in-git"]
    if not candidates or git.root is None:
        return findings
    sibling = large_files_policy_at_commit(git.root, policy, os.environ)
    if sibling is None:
        return findings
    from repro_hooks.errors import ReproHooksError
    from repro_hooks.large_files.check import check_large_files as large_file_check
    from repro_hooks.large_files.check import collect_blobs

    try:
        blobs = collect_blobs(git, paths=candidates, cwd=git.root)
    except ReproHooksError:
        return findings  # a name we cannot map back: both hooks report it
    theirs = {f.path for f in large_file_check(git, sibling, blobs)}
    return [f for f in findings if not (f.rule == "data-in-git" and f.path in theirs)]


def _repo_relative(root: Path, path: str) -> str:
    """A command-line path as a repository-relative POSIX path ("." for the root)."""
    import os

    from repro_hooks.errors import ReproHooksError

    rel = os.path.relpath(os.path.normpath(os.path.join(os.getcwd(), path)), root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise ReproHooksError(f"{path}: outside the repository {root}")
    return rel.replace(os.sep, "/")
