"""One run of `check-large-files` short of `--fix`: which blobs to check, chosen from the arguments
and the environment (pre-commit's commit stage, its pre-push stage, a user's paths, --all), the
check and its fix hint. The click command and the console script's fast path both call `run`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git

if TYPE_CHECKING:
    from repro_hooks.report import Finding


@dataclass(frozen=True)
class Outcome:
    """The findings and the fix hint; `rev_args`: the pushed commits checked (None: the index)."""

    git: Git
    findings: list[Finding]
    hint: str
    rev_args: list[str] | None


def run(
    paths: tuple[str, ...],
    *,
    max_size: str | None = None,
    maxkb: int | None = None,
    check_all: bool = False,
    config_file: Path | None = None,
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Outcome:
    """With no PATHS, what is staged, and the commit's total-size limit. With PATHS, those
    files' blobs in the index. Under pre-commit (PRE_COMMIT=1), PATHS are the names it passed
    plus every staged blob it cannot pass. At pre-push (PRE_COMMIT_FROM_REF/TO_REF), every blob
    any pushed commit introduces."""
    if max_size is not None and maxkb is not None:
        raise ReproHooksError("--max-size and --maxkb conflict: give one of them")
    cwd = cwd if cwd is not None else Path.cwd()
    git = Git.discover()
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: a bare repository has no index to check")
    at_push = bool(env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH"))
    under_pre_commit = env.get("PRE_COMMIT") == "1" and not check_all and not at_push
    if paths or check_all or under_pre_commit:
        git.prefetch_index()  # overlaps git's index read with the imports below
    if under_pre_commit:
        git.prefetch_staged_paths()

    from repro_hooks.large_files.check import (
        check_large_files,
        collect_blobs,
        fix_hint,
        pre_commit_selection,
        push_range_from_env,
        user_path_selection,
    )
    from repro_hooks.policy.config import load_config, with_max_size

    policy = with_max_size(load_config(git.root, config_file).policy, max_size)
    if max_size is None and maxkb is not None:
        policy = replace(policy, max_size=maxkb * 1024)
    rev_args = push_range_from_env(env)
    staged = None  # the commit's staged blobs, for its total-size limit
    if rev_args is None and under_pre_commit:
        selection = pre_commit_selection(git, paths, cwd)
        blobs, staged = selection.blobs, selection.staged
    elif rev_args is None and paths and not check_all:
        blobs = user_path_selection(git, paths, cwd).blobs
    else:
        blobs = collect_blobs(git, check_all=check_all, rev_args=rev_args)
        staged = blobs if rev_args is None and not check_all else None
    findings = check_large_files(git, policy, blobs, staged)
    fix_command = _fix_command(paths, max_size, maxkb, check_all, config_file, env)
    hint = fix_hint(
        findings, in_history=rev_args is not None, root=git.root, cwd=cwd, fix_command=fix_command
    )
    return Outcome(git, findings, hint, rev_args)


def _fix_command(
    paths: tuple[str, ...],
    max_size: str | None,
    maxkb: int | None,
    check_all: bool,
    config_file: Path | None,
    env: Mapping[str, str],
) -> str | None:
    """This very check with `--fix`, as a command line; None under pre-commit, where the
    `repro-hooks` of the hook's environment is not on the user's PATH."""
    if env.get("PRE_COMMIT") == "1":
        return None
    import shlex

    args = ["repro-hooks", "check-large-files", "--fix"]
    args += ["--all"] if check_all else []
    args += ["--max-size", max_size] if max_size is not None else []
    args += ["--maxkb", str(maxkb)] if maxkb is not None else []
    args += ["--config", str(config_file)] if config_file is not None else []
    args += ["--", *paths] if paths else []
    return " ".join(shlex.quote(a) for a in args)
