"""`repro-hooks scan`: the large-file and DVC-file policy over commits (pre-push, CI)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from repro_hooks.commands._common import config_option, finish, format_option, guarded
from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.report import Finding

PROGRESS_MIN_COMMITS = 500  # a bar (on a terminal) for scans of at least this many commits


@click.command("scan")
@click.argument("hook_args", nargs=-1, metavar="[REMOTE [URL]]")
@click.option(
    "--range", "rev_range", metavar="A..B", help="Scan the commits in A..B (git rev-list)."
)
@click.option("--all-history", is_flag=True, help="Scan every commit reachable from any ref.")
@click.option(
    "--pre-push",
    is_flag=True,
    help="Scan what a push sends: git's pre-push lines on stdin, REMOTE and URL as arguments "
    "(what hooks/pre-push passes).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Do not report findings recorded in this baseline file (rule + path + blob).",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record every finding of this scan in FILE and exit 0.",
)
@click.option("--max-size", metavar="SIZE", help="Size limit, overriding the configuration.")
@config_option("Policy file to use instead of pyproject.toml (or the server's repro-hooks.policy).")
@format_option
@click.pass_context
def scan(
    ctx: click.Context,
    hook_args: tuple[str, ...],
    rev_range: str | None,
    all_history: bool,
    pre_push: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    max_size: str | None,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Check commits, not the working tree: every blob each commit introduces against the size
    limit, the LFS pointer rule and the data patterns, and every .dvc, dvc.yaml and dvc.lock it
    introduces for validity.

    Commits come from --range, --all-history, --pre-push (stdin), or pre-commit's pre-push
    environment. A new branch counts only commits the remote does not have (as `git ls-remote`
    says, never stale remote-tracking refs); a deletion, none. Tags, trees and blobs that refs
    point at are judged too, and commit and tag messages against the message limit.

    With --range A..B the policy in force is A's pyproject.toml (the change under review cannot
    set its own policy), unless --config is given.
    """

    def body() -> None:
        import sys

        from repro_hooks.git import Git
        from repro_hooks.history.baseline import baseline_keys, load_baseline, without_baselined
        from repro_hooks.history.baseline import write_baseline as save_baseline
        from repro_hooks.history.refs import select_commits
        from repro_hooks.history.review import (
            range_baseline,
            range_policy,
            scan_fix_hint,
            server_policy,
        )

        if hook_args and not pre_push:
            raise ReproHooksError(
                f"unexpected argument {hook_args[0]!r} (REMOTE URL go with --pre-push)"
            )
        git = Git.discover()
        if git.root is None:
            policy = server_policy(git, config_file).policy
        elif rev_range is not None and config_file is None:
            # the change under review must not set its own policy: the base's is in force
            policy, note = range_policy(git, rev_range)
            if note:
                click.echo(f"repro-hooks: {note}", err=True)
        else:
            from repro_hooks.policy.config import load_config

            policy = load_config(git.root, config_file).policy
        from repro_hooks.policy.config import with_max_size

        policy = with_max_size(policy, max_size)
        if baseline is not None and rev_range is not None and git.root is not None:
            # a baseline inside the repository is the base's too: a change cannot baseline
            # its own findings
            known, note = range_baseline(git, rev_range, baseline)
            if note:
                click.echo(f"repro-hooks: {note}", err=True)
        else:
            known = load_baseline(baseline) if baseline is not None else set()
        from repro_hooks import handoff

        stdin_text = sys.stdin.read() if pre_push else None
        plain = baseline is None and write_baseline is None and fmt == "text"
        # the shim run by pre-commit (pre-push.legacy) hands its verdict to pre-commit's own
        # scan-pushed-commits, which then does not print the same findings again
        shim_of_pre_commit = pre_push and plain and handoff.under_pre_commit_legacy(os.environ)
        if shim_of_pre_commit:
            handoff.clear(git.git_dir)
        elif plain and not pre_push and rev_range is None and not all_history:
            shim = handoff.take(git.git_dir)
            if handoff.covers(shim, os.environ, handoff.parent_identity(), policy):
                assert shim is not None
                if shim.findings:
                    click.echo(
                        f"repro-hooks: {shim.findings} finding(s), printed above by the pre-push "
                        "shim (pre-push.legacy), which scanned every ref of this push"
                    )
                ctx.exit(1 if shim.findings else 0)
        selection = select_commits(
            git,
            rev_range=rev_range,
            all_history=all_history,
            pre_push=hook_args if pre_push else None,
            stdin_text=stdin_text,
            env=os.environ,
        )
        if selection is None:
            finish(ctx, [], fmt)
            return
        # a push (or a change under review) has a total-size limit; a whole history has none
        push_total = not all_history and selection.rev_args != ["HEAD"]
        findings, sha_of = _scan_with_progress(git, policy, selection, push_total)
        keyed = baseline_keys(findings, sha_of)
        if write_baseline is not None:
            save_baseline(write_baseline, keyed)
            click.echo(f"repro-hooks: wrote {len(keyed)} findings to {write_baseline}", err=True)
            ctx.exit(0)
        findings = without_baselined(keyed, known)
        if shim_of_pre_commit:
            from repro_hooks.history.refs import parse_pre_push_lines

            tips = [u.new for u in parse_pre_push_lines(stdin_text or "") if not u.is_deletion]
            handoff.save(git.git_dir, handoff.shim_scan(hook_args, tips, policy, len(findings)))
        finish(ctx, findings, fmt, fix_hint=scan_fix_hint(findings))

    guarded(ctx, body)


def _scan_with_progress(
    git: Any, policy: Any, selection: Any, push_total: bool
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
