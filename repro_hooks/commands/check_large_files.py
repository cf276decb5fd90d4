"""`repro-hooks check-large-files`: block large files and raw blobs under LFS patterns."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from repro_hooks.commands._common import FilesCommand, config_option, finish, format_option, guarded
from repro_hooks.errors import ReproHooksError


@click.command("check-large-files", cls=FilesCommand)
@click.argument("paths", nargs=-1)  # plain strings: click.Path would stat every file
@click.option(
    "--max-size", metavar="SIZE",
    help="Size limit, e.g. 500KiB, 2MB, 1.5G or plain bytes (KB=1000, K/KiB=1024). "
    "Default: [tool.repro-hooks] max-size, else 500KiB.",
)  # fmt: skip
@click.option(
    "--maxkb", type=click.IntRange(min=0), metavar="N",
    help="Size limit in KiB; drop-in alias from check-added-large-files.",
)  # fmt: skip
@click.option(
    "--all", "--enforce-all", "check_all", is_flag=True,
    help="Check every file in the index, not only the staged or given ones.",
)  # fmt: skip
@click.option(
    "--fix",
    is_flag=True,
    help="Move each offending file into DVC with `dvc add` (needs DVC), then exit 1.",
)
@config_option()
@format_option
@click.pass_context
def check_large_files(
    ctx: click.Context,
    paths: tuple[str, ...],
    max_size: str | None,
    maxkb: int | None,
    check_all: bool,
    fix: bool,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Block files over the size limit, measured as git stores them (the staged blob).

    With no PATHS, checks what is staged, and the commit's total-size limit. With PATHS, checks
    those files' blobs in the index (a directory: every file under it; a path matching nothing
    is a usage error). Under pre-commit (PRE_COMMIT=1), PATHS are the names it passed after the
    hook's filters, plus every staged blob it cannot pass (no file on disk). At pre-push
    (PRE_COMMIT_FROM_REF/TO_REF), checks every blob any pushed commit introduces, so a file
    added and deleted again is still caught.
    """

    def body() -> None:
        from repro_hooks.git import Git

        if max_size is not None and maxkb is not None:
            raise ReproHooksError("--max-size and --maxkb conflict: give one of them")
        git = Git.discover()
        if git.root is None:
            raise ReproHooksError(f"{git.git_dir}: a bare repository has no index to check")
        at_push = bool(
            os.environ.get("PRE_COMMIT_FROM_REF") or os.environ.get("PRE_COMMIT_LOCAL_BRANCH")
        )
        under_pre_commit = os.environ.get("PRE_COMMIT") == "1" and not check_all and not at_push
        if paths or check_all or under_pre_commit:
            git.prefetch_index()  # overlaps git's index read with the imports below
        if under_pre_commit:
            git.prefetch_staged_paths()

        from repro_hooks.large_files.check import (
            check_large_files as run_check,
        )
        from repro_hooks.large_files.check import (
            collect_blobs,
            fix_hint,
            pre_commit_selection,
            push_range_from_env,
            user_path_selection,
        )
        from repro_hooks.policy.config import load_config
        from repro_hooks.policy.sizes import parse_size

        policy = load_config(git.root, config_file).policy
        if max_size is not None:
            try:
                policy = replace(policy, max_size=parse_size(max_size))
            except ValueError as exc:
                raise ReproHooksError(f"--max-size: {exc}") from None
        elif maxkb is not None:
            policy = replace(policy, max_size=maxkb * 1024)
        rev_args = push_range_from_env(os.environ)
        staged = None  # the commit's staged blobs, for its total-size limit
        if rev_args is None and under_pre_commit:
            selection = pre_commit_selection(git, paths, Path.cwd())
            blobs, staged = selection.blobs, selection.staged
        elif rev_args is None and paths and not check_all:
            blobs = user_path_selection(git, paths, Path.cwd()).blobs
        else:
            blobs = collect_blobs(git, check_all=check_all, rev_args=rev_args)
            staged = blobs if rev_args is None and not check_all else None
        findings = run_check(git, policy, blobs, staged)
        hint = fix_hint(
            findings, in_history=rev_args is not None, root=git.root, cwd=Path.cwd(),
            fix_command=_fix_command(paths, max_size, maxkb, check_all, config_file),
        )  # fmt: skip
        if fix and findings and rev_args is None:
            from repro_hooks.dvc.fix import movable, move_to_dvc

            try:
                left = [f for f in findings if f not in movable(findings)]
                findings = move_to_dvc(git, findings)
            except ReproHooksError as exc:  # refused: the findings stand, the reason on stderr
                finish(ctx, findings, fmt, fix_hint=hint, error=exc)
            hints = (
                [fix_hint(left, in_history=False, root=git.root, cwd=Path.cwd())] if left else []
            )
            if len(left) < len(findings):
                hints.insert(0, "Re-run the commit: the data files are now tracked by DVC.")
            hint = "\n".join(hints)
        finish(ctx, findings, fmt, fix_hint=hint)

    guarded(ctx, body)


def _fix_command(
    paths: tuple[str, ...], max_size: str | None, maxkb: int | None, check_all: bool,
    config_file: Path | None,
) -> str | None:  # fmt: skip
    """This very check with `--fix`, as a command line; None under pre-commit, where the
    `repro-hooks` of the hook's environment is not on the user's PATH."""
    if os.environ.get("PRE_COMMIT") == "1":
        return None
    import shlex

    args = ["repro-hooks", "check-large-files", "--fix"]
    args += ["--all"] if check_all else []
    args += ["--max-size", max_size] if max_size is not None else []
    args += ["--maxkb", str(maxkb)] if maxkb is not None else []
    args += ["--config", str(config_file)] if config_file is not None else []
    args += ["--", *paths] if paths else []
    return " ".join(shlex.quote(a) for a in args)
