"""One run of `check-large-files`: which blobs to check, chosen from the arguments and the
environment (pre-commit's commit stage, its pre-push stage, a user's paths, --all), the check,
its fix hint and, with `--fix`, the move into DVC. The click command and the console script's
fast path both call `run`; `choose_source` is the choice alone, a pure function of the options
and the environment."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git

if TYPE_CHECKING:
    from repro_hooks.report import Finding


class Source(enum.Enum):
    """Where the blobs to check come from."""

    PRE_COMMIT = "pre-commit"  # the names pre-commit passed, plus staged blobs it cannot pass
    PATHS = "paths"  # the index entries of the user's paths
    STAGED = "staged"  # what is staged
    INDEX = "index"  # every index entry (--all)
    PUSH = "push"  # every blob the pushed commits introduce


@dataclass(frozen=True)
class Selection:
    """The source, and for PUSH the pushed commits as `git rev-list` arguments."""

    source: Source
    rev_args: tuple[str, ...] | None = None

    @property
    def reads_index(self) -> bool:
        """Whether the check reads the whole index listing (worth starting early)."""
        return self.source in (Source.PRE_COMMIT, Source.PATHS, Source.INDEX)

    @property
    def commit_total(self) -> bool:
        """Whether the blobs are one commit's, held to the commit's total-size limit."""
        return self.source in (Source.PRE_COMMIT, Source.STAGED)


def choose_source(paths: tuple[str, ...], *, check_all: bool, env: Mapping[str, str]) -> Selection:
    """pre-commit's pre-push stage (PRE_COMMIT_FROM_REF/TO_REF, or a new branch's
    PRE_COMMIT_LOCAL_BRANCH and PRE_COMMIT_REMOTE_NAME) wins over everything; then --all; then
    pre-commit's commit stage (PRE_COMMIT=1, not at pre-push); then the user's PATHS; else what
    is staged. A pre-push environment too incomplete for a range is no commit stage either."""
    rev_args = push_range_from_env(env)
    if rev_args is not None:
        return Selection(Source.PUSH, tuple(rev_args))
    if check_all:
        return Selection(Source.INDEX)
    at_push = bool(env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH"))
    if env.get("PRE_COMMIT") == "1" and not at_push:
        return Selection(Source.PRE_COMMIT)
    if paths:
        return Selection(Source.PATHS)
    return Selection(Source.STAGED)


def push_range_from_env(env: Mapping[str, str]) -> list[str] | None:
    """The commits a pre-commit pre-push run covers, as `git rev-list` arguments, or None.

    pre-commit sets PRE_COMMIT_FROM_REF/TO_REF for a push onto existing history; for a push of a
    whole new history it sets only PRE_COMMIT_LOCAL_BRANCH and PRE_COMMIT_REMOTE_NAME (and passes
    --all-files), so the range is everything the remote's refs do not already have.
    """
    from_ref, to_ref = env.get("PRE_COMMIT_FROM_REF"), env.get("PRE_COMMIT_TO_REF")
    if from_ref and to_ref:
        return [to_ref, f"^{from_ref}"]
    local, remote = env.get("PRE_COMMIT_LOCAL_BRANCH"), env.get("PRE_COMMIT_REMOTE_NAME")
    if local and remote:
        return [local, "--not", f"--remotes={remote}"]
    return None


@dataclass(frozen=True)
class Outcome:
    """The findings and the fix hint; `rev_args`: the pushed commits checked (None: the index).
    `refusal`: why `--fix` moved nothing (the findings stand)."""

    git: Git
    findings: list[Finding]
    hint: str
    rev_args: list[str] | None
    refusal: ReproHooksError | None = None


def run(
    paths: tuple[str, ...],
    *,
    max_size: str | None = None,
    maxkb: int | None = None,
    check_all: bool = False,
    config_file: Path | None = None,
    fix: bool = False,
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Outcome:
    """With no PATHS, what is staged, and the commit's total-size limit. With PATHS, those
    files' blobs in the index. Under pre-commit (PRE_COMMIT=1), PATHS are the names it passed
    plus every staged blob it cannot pass. At pre-push (PRE_COMMIT_FROM_REF/TO_REF), every blob
    any pushed commit introduces. With `fix`, findings in the index are moved into DVC."""
    if max_size is not None and maxkb is not None:
        raise ReproHooksError("--max-size and --maxkb conflict: give one of them")
    cwd = cwd if cwd is not None else Path.cwd()
    git = Git.discover()
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: a bare repository has no index to check")
    chosen = choose_source(paths, check_all=check_all, env=env)
    if chosen.reads_index:
        git.prefetch_index()  # overlaps git's index read with the imports below
    if chosen.source is Source.PRE_COMMIT:
        git.prefetch_staged_paths()

    from repro_hooks.large_files.check import (
        check_large_files,
        collect_blobs,
        fix_hint,
        pre_commit_selection,
        user_path_selection,
    )
    from repro_hooks.policy.config import load_config, with_max_size

    policy = with_max_size(load_config(git.root, config_file).policy, max_size)
    if max_size is None and maxkb is not None:
        policy = replace(policy, max_size=maxkb * 1024)
    rev_args = list(chosen.rev_args) if chosen.rev_args is not None else None
    staged = None  # the commit's staged blobs, for its total-size limit
    if chosen.source is Source.PRE_COMMIT:
        selection = pre_commit_selection(git, paths, cwd)
        blobs, staged = selection.blobs, selection.staged
    elif chosen.source is Source.PATHS:
        blobs = user_path_selection(git, paths, cwd).blobs
    else:
        blobs = collect_blobs(git, check_all=chosen.source is Source.INDEX, rev_args=rev_args)
        staged = blobs if chosen.commit_total else None
    findings = check_large_files(git, policy, blobs, staged)
    fix_command = _fix_command(paths, max_size, maxkb, check_all, config_file, env)
    hint = fix_hint(
        findings, in_history=rev_args is not None, root=git.root, cwd=cwd, fix_command=fix_command
    )
    outcome = Outcome(git, findings, hint, rev_args)
    if fix and findings and rev_args is None:
        return _moved_to_dvc(outcome, cwd)
    return outcome


def _moved_to_dvc(outcome: Outcome, cwd: Path) -> Outcome:
    """`--fix`: each large file into DVC. Refused: the findings and hint as they were, with the
    reason. Else the findings reworded for the moved files, and the hint for what is left."""
    from repro_hooks.dvc.fix import movable, move_to_dvc
    from repro_hooks.large_files.check import fix_hint

    git, findings = outcome.git, outcome.findings
    try:
        left = [f for f in findings if f not in movable(findings)]
        findings = move_to_dvc(git, findings)
    except ReproHooksError as exc:
        return replace(outcome, refusal=exc)
    hints = [fix_hint(left, in_history=False, root=git.root, cwd=cwd)] if left else []
    if len(left) < len(findings):
        hints.insert(0, "Re-run the commit: the data files are now tracked by DVC.")
    return replace(outcome, findings=findings, hint="\n".join(hints))


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
