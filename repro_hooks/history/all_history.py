"""`scan --all-history` with no other option: every commit reachable from any ref, under the
repository's policy (the server's on a bare repository), no baseline.

Its git processes start first: the history walk takes about as long as the whole of Python's
imports and configuration reading, so `git log` (and the sizer beside it) run while Python
imports the checks. This module therefore imports nothing heavy before `prefetch_walk`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repro_hooks.git import Git

if TYPE_CHECKING:
    from repro_hooks.report import Finding

# What `select_commits` selects for --all-history, known before importing it (its module
# brings dataclasses and the report): the walk starts with these, and is used if they agree.
ALL_HISTORY = ("--all",)


def scan_all_history(git: Git | None = None) -> tuple[list[Finding], str]:
    """The findings of `repro-hooks scan --all-history` in the repository around the current
    directory (or `git`'s), in the order the command prints them, and the fix hint it prints
    under them. Raises what the command reports as an error (ReproHooksError, exit 2)."""
    git = git if git is not None else Git.discover()
    git.prefetch_walk(ALL_HISTORY, sources=True, commit_sizes=True)
    try:
        from repro_hooks.history.baseline import baseline_keys, without_baselined
        from repro_hooks.history.refs import select_commits
        from repro_hooks.history.review import scan_commits, scan_fix_hint, server_policy
        from repro_hooks.policy.config import load_config

        if git.root is None:
            policy = server_policy(git, None).policy
        else:
            policy = load_config(git.root, None).policy
        selection = select_commits(
            git, rev_range=None, all_history=True, pre_push=None, stdin_text=None, env={}
        )
        assert selection is not None  # (only a push that deletes refs selects nothing)
        # a whole history has no total-size limit (a push has)
        findings, sha_of = scan_commits(
            git, policy, selection.rev_args, selection.ref_names, push_total=False
        )
    finally:
        git.drop_prefetched_walk()  # not read (an error came first): end it
    findings = without_baselined(baseline_keys(findings, sha_of), set())
    return findings, scan_fix_hint(findings)
