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
    under them: `history.run.scan` itself, with the walk started before its imports. Raises what
    the command reports as an error (ReproHooksError, exit 2)."""
    git = git if git is not None else Git.discover()
    git.prefetch_walk(ALL_HISTORY, sources=True, commit_sizes=True)
    try:
        from repro_hooks.history.run import ScanOptions, Verdict, scan

        result = scan(ScanOptions(all_history=True), env={}, git=git)
    finally:
        git.drop_prefetched_walk()  # not read (an error came first): end it
    assert isinstance(result, Verdict)  # no baseline written, no push handed off
    return result.findings, result.hint
