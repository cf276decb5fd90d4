"""How the commit that just happened came about, from git's own files (no git process): HEAD's
branch, the branch a rebase is rewriting, and whether the commit is a replay (rebase, amend,
cherry-pick, revert) whose post-commit must not grab the latest run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_REPLAY_ACTIONS = ("rebase", "cherry-pick", "revert", "commit (amend)", "am:")


def replay_reason(git_dir: Path, env: Mapping[str, str]) -> str | None:
    """Why the commit that just happened is a replay (rebase, amend, cherry-pick, revert) whose
    post-commit must not grab the latest run, or None for an ordinary commit."""
    for state in ("rebase-merge", "rebase-apply"):
        if (git_dir / state).exists():
            return "a rebase is in progress"
    if (git_dir / "sequencer").exists() or (git_dir / "CHERRY_PICK_HEAD").exists():
        return "a cherry-pick or revert is in progress"
    action = env.get("GIT_REFLOG_ACTION", "")
    if action.startswith(_REPLAY_ACTIONS[:4]):
        return f"git is replaying commits ({action.split(' ')[0]})"
    last = last_reflog_message(git_dir)
    if last is not None:
        for prefix in _REPLAY_ACTIONS:
            if last.startswith(prefix):
                what = {"commit (amend)": "an amend", "am:": "git am"}.get(prefix, prefix)
                return f"the commit comes from {what}"
    return None


def last_reflog_message(git_dir: Path) -> str | None:
    """The message of HEAD's newest reflog entry, read from the file (no git process)."""
    try:
        with (git_dir / "logs" / "HEAD").open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            tail = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    except OSError:
        return None
    _, tab, message = tail.partition(b"\t")
    return message.decode("utf-8", "replace") if tab else None


def current_branch(git_dir: Path) -> str | None:
    """The branch HEAD points to (None on a detached HEAD), read from the HEAD file."""
    try:
        head = (git_dir / "HEAD").read_text("utf-8", "replace").strip()
    except OSError:
        return None
    if head.startswith("ref: refs/heads/"):
        return head[len("ref: refs/heads/") :]
    return None


def rebase_branch(git_dir: Path) -> str | None:
    """The branch being rebased (HEAD is detached meanwhile), from rebase's own state."""
    for state in ("rebase-merge", "rebase-apply"):
        try:
            ref = (git_dir / state / "head-name").read_text("utf-8", "replace").strip()
        except OSError:
            continue
        if ref.startswith("refs/heads/"):
            return ref[len("refs/heads/") :]
    return None


def job_branch(git_dir: Path) -> str | None:
    """The branch a link names: HEAD's branch, else the branch a rebase is rewriting."""
    return current_branch(git_dir) or rebase_branch(git_dir)
