"""One run of a history check: `scan` (pre-push, CI, a range, the whole history) and the
server's `pre-receive`. Each chooses its commits, policy and baseline, scans, and returns a
result for the command to render. The choices that depend only on the options and the
environment (`handoff_role`, and `refs.commit_source`) are pure functions."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.git import Git
    from repro_hooks.history.baseline import BaselineKey
    from repro_hooks.history.refs import Selection
    from repro_hooks.policy.config import Policy
    from repro_hooks.report import Finding

PROGRESS_MIN_COMMITS = 500  # a bar (on a terminal) for scans of at least this many commits


@dataclass(frozen=True)
class ScanOptions:
    """`scan`'s options. `text_output`: the findings will be printed as text (only then can one
    push's verdict be handed from the pre-push shim to pre-commit's hook)."""

    hook_args: tuple[str, ...] = ()
    rev_range: str | None = None
    all_history: bool = False
    pre_push: bool = False
    baseline: Path | None = None
    write_baseline: Path | None = None
    max_size: str | None = None
    config_file: Path | None = None
    text_output: bool = True


@dataclass(frozen=True)
class Verdict:
    """Findings to print, and how to fix them."""

    findings: list[Finding]
    hint: str = ""


@dataclass(frozen=True)
class BaselineWritten:
    """`--write-baseline`: every finding recorded in `file`; nothing to print but that."""

    count: int
    file: Path


@dataclass(frozen=True)
class HandedOff:
    """The pre-push shim already scanned this push and printed its `findings` (a count)."""

    findings: int


ScanResult = Verdict | BaselineWritten | HandedOff


class HandoffRole(enum.Enum):
    """A scan's part in one push's single report (repro_hooks/handoff.py)."""

    NONE = "none"  # scans and prints as ever
    SHIM = "shim"  # the pre-push shim under pre-commit: records its verdict for the hook
    HOOK = "hook"  # pre-commit's pre-push hook: takes the shim's verdict when it covers the push


def handoff_role(opts: ScanOptions, env: Mapping[str, str]) -> HandoffRole:
    """Only plain text output (no baseline option) is handed off: the shim when pre-commit runs
    it as pre-push.legacy, the hook when its commits come from pre-commit's environment."""
    from repro_hooks.handoff import under_pre_commit_legacy

    plain = opts.baseline is None and opts.write_baseline is None and opts.text_output
    if not plain:
        return HandoffRole.NONE
    if opts.pre_push:
        return HandoffRole.SHIM if under_pre_commit_legacy(env) else HandoffRole.NONE
    if opts.rev_range is None and not opts.all_history:
        return HandoffRole.HOOK
    return HandoffRole.NONE


def _no_note(text: str) -> None:
    pass


def scan(
    opts: ScanOptions,
    *,
    env: Mapping[str, str] = os.environ,
    stdin: TextIO | None = None,
    note: Callable[[str], None] = _no_note,
    git: Git | None = None,
) -> ScanResult:
    """Every blob each selected commit introduces against the policy, less the baselined
    findings. `stdin` (default: sys.stdin) holds git's pre-push lines with `--pre-push`; `note`
    gets one-line notes (a policy or baseline other than the checkout's) as they arise; `git`:
    the repository (default: the one around the current directory), perhaps with a walk
    already started (history/all_history.py)."""
    from repro_hooks.git import Git
    from repro_hooks.history.baseline import baseline_keys, without_baselined
    from repro_hooks.history.baseline import write_baseline as save_baseline
    from repro_hooks.history.refs import select_commits
    from repro_hooks.history.review import scan_fix_hint

    if opts.hook_args and not opts.pre_push:
        raise ReproHooksError(
            f"unexpected argument {opts.hook_args[0]!r} (REMOTE URL go with --pre-push)"
        )
    git = git if git is not None else Git.discover()
    policy = _scan_policy(git, opts, note)
    known = _scan_baseline(git, opts, note)
    from repro_hooks import handoff

    stdin_text = (stdin if stdin is not None else sys.stdin).read() if opts.pre_push else None
    role = handoff_role(opts, env)
    if role is HandoffRole.SHIM:
        handoff.clear(git.git_dir)
    elif role is HandoffRole.HOOK:
        shim = handoff.take(git.git_dir)
        if handoff.covers(shim, env, handoff.parent_identity(), policy):
            assert shim is not None
            return HandedOff(shim.findings)
    selection = select_commits(
        git,
        rev_range=opts.rev_range,
        all_history=opts.all_history,
        pre_push=opts.hook_args if opts.pre_push else None,
        stdin_text=stdin_text,
        env=env,
    )
    if selection is None:
        return Verdict([])
    # a push (or a change under review) has a total-size limit; a whole history has none
    push_total = not opts.all_history and selection.rev_args != ["HEAD"]
    findings, sha_of = _scan_with_progress(git, policy, selection, push_total)
    keyed = baseline_keys(findings, sha_of)
    if opts.write_baseline is not None:
        save_baseline(opts.write_baseline, keyed)
        return BaselineWritten(len(keyed), opts.write_baseline)
    findings = without_baselined(keyed, known)
    if role is HandoffRole.SHIM:
        from repro_hooks.history.refs import parse_pre_push_lines

        tips = [u.new for u in parse_pre_push_lines(stdin_text or "") if not u.is_deletion]
        handoff.save(git.git_dir, handoff.shim_scan(opts.hook_args, tips, policy, len(findings)))
    return Verdict(findings, scan_fix_hint(findings))


def _scan_policy(git: Git, opts: ScanOptions, note: Callable[[str], None]) -> Policy:
    """A bare repository's is the server's; a range's is its base's (the change under review
    must not set its own), unless --config is given; else the checkout's."""
    from repro_hooks.history.review import range_policy, server_policy
    from repro_hooks.policy.config import load_config, with_max_size

    if git.root is None:
        policy = server_policy(git, opts.config_file).policy
    elif opts.rev_range is not None and opts.config_file is None:
        policy, said = range_policy(git, opts.rev_range)
        if said:
            note(said)
    else:
        policy = load_config(git.root, opts.config_file).policy
    return with_max_size(policy, opts.max_size)


def _scan_baseline(git: Git, opts: ScanOptions, note: Callable[[str], None]) -> set[BaselineKey]:
    """The known findings. A baseline inside the repository is a range's base's too: a change
    cannot baseline its own findings."""
    from repro_hooks.history.baseline import load_baseline
    from repro_hooks.history.review import range_baseline

    if opts.baseline is not None and opts.rev_range is not None and git.root is not None:
        known, said = range_baseline(git, opts.rev_range, opts.baseline)
        if said:
            note(said)
        return known
    return load_baseline(opts.baseline) if opts.baseline is not None else set()


def _scan_with_progress(
    git: Git, policy: Policy, selection: Selection, push_total: bool
) -> tuple[list[Finding], dict[tuple[str, str | None], str]]:
    """scan_commits, with a bar over the commits on a terminal (stderr) for long histories.
    Off a terminal, not even the commits are counted: the same git processes as ever."""
    from repro_hooks.history.review import scan_commits
    from repro_hooks.progress import on_terminal, progress_bar

    rev_args, names = selection.rev_args, selection.ref_names
    if not on_terminal():
        return scan_commits(git, policy, rev_args, names, push_total=push_total)
    counted = git.try_run("rev-list", "--count", *rev_args)
    total = int(counted) if counted and counted.strip().isdigit() else 0
    with progress_bar("scanning commits", total, min_total=PROGRESS_MIN_COMMITS) as bar:
        result = scan_commits(git, policy, rev_args, names, bar.advance, push_total=push_total)
        bar.to(total)  # commits that introduce no blob (empty, deletions only) are not heard of
        return result


def pre_receive(
    *, config_file: Path | None, baseline: Path | None, stdin: TextIO | None = None
) -> Verdict:
    """The server's gate: git's `<old> <new> <ref>` lines (default: sys.stdin), the commits no
    existing ref reaches, under the server's policy and baseline, plus refused ref names."""
    from repro_hooks.git import Git
    from repro_hooks.history.baseline import baseline_keys, load_baseline, without_baselined
    from repro_hooks.history.refs import (
        parse_pre_receive_lines,
        pre_receive_rev_args,
        ref_name_findings,
    )
    from repro_hooks.history.review import (
        BASELINE_GIT_CONFIG,
        scan_commits,
        scan_fix_hint,
        server_policy,
    )

    git = Git.discover()
    policy = server_policy(git, config_file).policy
    baseline_file = baseline
    if baseline_file is None and (configured := git.config_value(BASELINE_GIT_CONFIG)):
        baseline_file = git.git_dir / Path(configured).expanduser()
    known = load_baseline(baseline_file) if baseline_file is not None else set()
    updates = parse_pre_receive_lines((stdin if stdin is not None else sys.stdin).read())
    refused = ref_name_findings(updates)
    rev_args = pre_receive_rev_args(updates)
    if rev_args is None:
        return Verdict(refused)
    names = {u.new: u.ref for u in reversed(updates) if not u.is_deletion}
    findings, sha_of = scan_commits(git, policy, rev_args, names, push_total=True)
    findings = without_baselined(baseline_keys(findings, sha_of), known) + refused
    return Verdict(findings, scan_fix_hint(findings, server=True))
