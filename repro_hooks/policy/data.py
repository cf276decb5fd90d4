"""The `data-in-git` rule's one decision: is a file stored in git data that belongs in DVC?

Every stage asks it: check-dvc over the index, the history scans over the blobs commits
introduce, the deploy gate over a commit's tree. Each passes what it knows about the file; the
message differs only by what a stage measured (a history blob's size, a symlink blob judged as
the file it is); the commit and ref a history finding names are the finding's own fields.
"""

from __future__ import annotations

from collections.abc import Callable

from repro_hooks.policy.sizes import format_size

# a mode-120000 blob that is not a link target a system could create
AS_SYMLINK = " as a symbolic link (a regular file where symlinks are off)"


def data_in_git(
    path: str,
    is_data: Callable[[str], bool],
    *,
    size: int | None = None,
    output: tuple[str, bool, str] | None = None,
    as_symlink: bool = False,
) -> str | None:
    """What is wrong with `path` being in git (the finding's message), or None when nothing is.

    `is_data`: the policy's data patterns less `data-exclude` and `exclude` (Policy.is_data, or a
    faster equivalent). `size`: the blob's size where the stage read it (an empty blob holds no
    data); None where it did not (the commit stage reports any index entry at a data pattern).
    `output`: the DVC output the path is or is under, as (output, cache, declaring file): a
    cached one must not also be in git; a `cache: false` one lives in git by design, whatever
    its name. `as_symlink`: a symlink blob that is no link target, judged as the file it is.
    (An LFS pointer or a real symbolic link is not data stored in git: callers skip those.)"""
    if output is not None:
        out, cache, declared = output
        return f"in git and also a DVC output ({out}, {declared})" if cache else None
    if size == 0 or not is_data(path):
        return None
    how = AS_SYMLINK if as_symlink else ""
    if size is None:
        return f"data file stored in git{how}"
    return f"data file stored in git{how} ({format_size(size)}): track it with DVC"
