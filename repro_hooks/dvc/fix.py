"""`check-large-files --fix`: move offending files out of git and into DVC with `dvc add`.

Order of operations, so that nothing is lost: unstage (`git rm --cached`, the file stays on disk),
`dvc add` (DVC writes `<path>.dvc` and a `.gitignore` entry, caches the data), stage the DVC
files. If `dvc add` fails, the exact index entries are put back. The data file itself is never
deleted or altered.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import replace

from repro_hooks.dvc.runner import INSTALL_HINT, dvc_command, last_error_line, run_dvc
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.report import Finding


def move_to_dvc(git: Git, findings: Sequence[Finding]) -> list[Finding]:
    """Move each `large-file` finding's path into DVC. Returns the findings, reworded to say what
    was done (the commit must be re-run). Raises ReproHooksError, changing nothing, when DVC is
    missing or the repository has no `.dvc/` directory."""
    assert git.root is not None
    movable = [f for f in findings if f.rule == "large-file" and f.raw_path is not None]
    if not movable:
        return list(findings)
    if dvc_command() is None:
        raise ReproHooksError(
            f"--fix needs DVC, which is not installed ({INSTALL_HINT}); nothing was changed"
        )
    if not (git.root / ".dvc").is_dir():
        raise ReproHooksError(
            f"--fix: {git.root} is not a DVC repository (run `dvc init` first); nothing was changed"
        )
    raw = [f.raw_path for f in movable if f.raw_path is not None]
    root = os.path.realpath(git.root)
    for path in raw:
        full = git.root / os.fsdecode(path)
        real = os.path.realpath(full)
        if os.path.commonpath([root, real]) != root:
            raise ReproHooksError(
                f"--fix: {os.fsdecode(path)}: a symbolic link in its directories leads outside "
                f"the repository; nothing was changed"
            )
        if full.is_symlink() or not full.is_file():
            raise ReproHooksError(
                f"--fix: {os.fsdecode(path)}: not a regular file in the working tree; nothing was changed"
            )
    saved_index = git.run("ls-files", "-s", "-z", "--", *(os.fsdecode(p) for p in raw))
    git.run("rm", "--cached", "-q", "--pathspec-from-file=-", "--pathspec-file-nul",
            input=b"\0".join(raw) + b"\0")  # fmt: skip
    proc = run_dvc(["add", "--", *(os.fsdecode(p) for p in raw)], git.root, what="--fix")
    if proc.returncode != 0:
        _restore_index(git, saved_index)
        raise ReproHooksError(
            f"--fix: dvc add failed: {last_error_line(proc)}; the index was restored"
        )
    to_stage = []
    for path in raw:
        name = os.fsdecode(path)
        to_stage.append(name + ".dvc")
        ignore = posixpath.join(posixpath.dirname(name), ".gitignore")
        if (git.root / ignore).is_file():
            to_stage.append(ignore)
    git.run("add", "--pathspec-from-file=-", "--pathspec-file-nul",
            input="\0".join(dict.fromkeys(to_stage)).encode("utf-8", "surrogateescape") + b"\0")  # fmt: skip
    moved = {f.raw_path for f in movable}
    return [
        replace(f, message=f"{f.message}: moved into DVC ({f.path}.dvc staged); review and commit again")
        if f.raw_path in moved else f
        for f in findings
    ]  # fmt: skip


def _restore_index(git: Git, ls_files_output: bytes) -> None:
    """Put back index entries exactly as `git ls-files -s -z` listed them."""
    info = []
    for record in ls_files_output.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, sha, _stage = meta.decode().split(" ")
            info.append(f"{mode} {sha}\t".encode() + path)
    if info:
        git.run("update-index", "-z", "--index-info", input=b"\0".join(info) + b"\0")
