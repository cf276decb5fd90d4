"""Large-file policy: size what git stores (the blob), never the working-tree file.

The core (`large_file_findings`) is pure: blobs, their sizes, LFS facts and a policy in; findings
out. `collect_blobs` and `check_large_files` are the thin layer that asks git, in batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Blob, Git, ObjectInfo
from repro_hooks.policy.config import Policy
from repro_hooks.policy.sizes import format_size
from repro_hooks.report import Finding, display_path

LARGEST = 1 << 62

LFS_POINTER_MAX = 1024  # git-lfs never writes a pointer larger than this
_LFS_HEADERS = (
    b"version https://git-lfs.github.com/spec/v1\n",
    b"version https://hawser.github.com/spec/v1\n",
)


def is_lfs_pointer(content: bytes) -> bool:
    """Whether a blob is a Git LFS pointer file (spec v1)."""
    return (
        len(content) < LFS_POINTER_MAX
        and content.startswith(_LFS_HEADERS)
        and b"\noid sha256:" in content
        and b"\nsize " in content
    )


@dataclass(frozen=True)
class LfsFacts:
    """Which paths git says are LFS-filtered, and which blobs really are LFS pointers."""

    filtered_paths: Collection[bytes] = frozenset()
    pointer_shas: Collection[str] = frozenset()


def large_file_findings(
    blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    policy: Policy,
    lfs: LfsFacts = LfsFacts(),
) -> list[Finding]:
    """Findings for blobs over their size limit, and raw blobs where an LFS pointer belongs.

    Gitlinks (submodules) have no blob and are skipped; symlinks are sized as git stores them
    (the link text); a blob that is an LFS pointer is never too large. Each (path, blob) is
    reported once, at the first commit that introduces it.
    """
    findings: dict[tuple[bytes, str], Finding] = {}
    for blob in blobs:
        obj = info.get(blob.sha)
        if obj is None or blob.is_gitlink or (blob.path, blob.sha) in findings:
            continue  # not sized (proven small, or a shallow clone's missing object), or seen
        path = display_path(blob.path)
        if policy.is_excluded(path):
            continue
        if blob.sha in lfs.pointer_shas:
            continue
        if blob.path in lfs.filtered_paths and obj.size > 0:
            findings[(blob.path, blob.sha)] = Finding(
                path, "lfs-pointer",
                f"stored raw ({format_size(obj.size)}) under a filter=lfs attribute: "
                "should be an LFS pointer (is git-lfs installed? `git lfs install`, then re-add it)",
                blob.commit, blob.path,
            )  # fmt: skip
            continue
        limit = policy.size_limit_for(path)
        if obj.size > limit:
            findings[(blob.path, blob.sha)] = Finding(
                path, "large-file",
                f"{format_size(obj.size)} in git, over the {format_size(limit)} size limit",
                blob.commit, blob.path,
            )  # fmt: skip
    return list(findings.values())


def start_lfs_filtered_paths(git: Git, blobs: Sequence[Blob]) -> Callable[[], set[bytes]]:
    """Start asking git which paths carry `filter=lfs` (working-tree attributes: git 2.39 has no
    `check-attr --source`); call the result to wait for the answer."""
    attributes = git.start_attributes(
        list(dict.fromkeys(b.path for b in blobs if not b.is_gitlink)), ["filter"]
    )
    return lambda: {p for p, a in attributes().items() if a.get("filter") == "lfs"}


def lfs_facts(
    git: Git, blobs: Sequence[Blob], info: Mapping[str, ObjectInfo], policy: Policy,
    filtered: Collection[bytes],
) -> LfsFacts:  # fmt: skip
    """Read the small blobs whose pointer status decides a verdict (LFS-filtered ones, and ones
    over a tiny size limit) and say which are LFS pointers."""
    candidates = [
        b.sha for b in blobs
        if (obj := info.get(b.sha)) is not None and 0 < obj.size < LFS_POINTER_MAX
        and (b.path in filtered or obj.size > policy.size_limit_for(display_path(b.path)))
    ]  # fmt: skip
    contents = git.read_blobs(candidates) if candidates else {}
    return LfsFacts(filtered, {sha for sha, c in contents.items() if is_lfs_pointer(c)})


def _all_plain(joined: str) -> bool:
    """Whether every path of a NUL-joined list is plainly root-relative and normal: not empty or
    absolute, no component starting with `.` (so no `.` or `..`), no doubled or trailing slash.
    Substring searches over the joined list: one pass in C for 20,000 paths."""
    return not (
        not joined
        or joined[0] in "/.\0"
        or joined[-1] in "/\0"
        or any(bad in joined for bad in ("//", "/.", "\0.", "\0/", "/\0", "\0\0"))
    )


def _relative_to_root(git: Git, path: str, cwd: Path, at_root: bool) -> bytes:
    """A command-line path as the index names it (relative to the root, POSIX bytes)."""
    assert git.root is not None
    if (
        at_root
        and path[:1] not in ("/", "")
        and path[-1:] != "/"
        and "/." not in "/" + path
        and "//" not in path
    ):
        # the common case, as pre-commit passes paths: root-relative and already normal
        # (not absolute, no `.`/`..` components, no doubled or trailing slash); anything else
        # is resolved below
        return os.fsencode(path)
    absolute = os.path.normpath(os.path.join(cwd, path))
    rel = os.path.relpath(absolute, git.root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise ReproHooksError(f"{path}: outside the repository {git.root}")
    return os.fsencode(rel).replace(os.sep.encode(), b"/")


def collect_blobs(
    git: Git,
    *,
    paths: Sequence[str] = (),
    check_all: bool = False,
    rev_args: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> list[Blob]:
    """The blobs to check: a commit range's introduced blobs, the whole index, the index entries
    of the given paths, or (default) what is staged."""
    if rev_args is not None:
        return git.introduced_blobs(rev_args)
    if check_all:
        return git.index_blobs()
    if paths:
        here = cwd or Path.cwd()
        at_root = here == git.root
        if at_root and _all_plain("\0".join(paths)):
            wanted = set(map(os.fsencode, paths))  # every path root-relative and normal
        else:
            wanted = {_relative_to_root(git, p, here, at_root) for p in paths}
        return git.index_blobs(only=wanted)
    return git.staged_blobs()


def check_large_files(git: Git, policy: Policy, blobs: Sequence[Blob]) -> list[Finding]:
    """Size the blobs (in batches) and apply the policy.

    Three batched questions: `git check-attr` for filter=lfs; a loose-object size bound (one
    fstatat each) that proves most small blobs are under their limit without inflating them;
    `git cat-file --batch-check` for the rest (and every LFS-filtered path)."""
    candidates = [b for b in blobs if not b.is_gitlink]
    lfs_filtered = start_lfs_filtered_paths(git, candidates)
    bounds = git.loose_size_bounds(b.sha for b in candidates)
    filtered = lfs_filtered()
    if policy.size_limits:
        to_size = [
            b.sha for b in candidates
            if b.path in filtered
            or bounds.get(b.sha, LARGEST) > policy.size_limit_for(display_path(b.path))
        ]  # fmt: skip
    else:  # one limit for every path: no need to spell each path out
        limit = policy.max_size
        to_size = [
            b.sha for b in candidates if b.path in filtered or bounds.get(b.sha, LARGEST) > limit
        ]
    info = git.object_info(to_size)
    return large_file_findings(blobs, info, policy, lfs_facts(git, blobs, info, policy, filtered))


def fix_hint(
    findings: Sequence[Finding],
    in_history: bool,
    *,
    root: Path | None = None,
    cwd: Path | None = None,
    fix_command: str | None = "repro-hooks check-large-files --fix",
) -> str:
    """The one short block that says how to fix the findings, as commands that run as printed
    in the shell that shows them (`root`/`cwd`: where that is; `fix_command`: None where
    `repro-hooks` is not on PATH, as under pre-commit)."""
    from repro_hooks.dvc.hints import Where, dvc_add_commands, is_notebook, notebook_commands

    if in_history:
        return (
            "These files are in commits being pushed. Remove them from those commits "
            "(git rebase -i, or git commit --amend), track them with DVC instead "
            "(dvc add <path>), then push again."
        )
    large = [f for f in findings if f.rule == "large-file"]
    if not large:
        return "Install git-lfs (git lfs install), then `git add` those files again."
    where = Where(root, cwd)
    # a name shown escaped (newline, invalid UTF-8) cannot be typed as printed: say so
    odd = [f.path for f in large if f.raw_path is not None and f.path != os.fsdecode(f.raw_path)]
    data = [f.path for f in large if not is_notebook(f.path) and f.path not in odd]
    notebooks = [f.path for f in large if is_notebook(f.path) and f.path not in odd]
    cd = where.prefix()  # once, in the first block: every path below is root-relative
    blocks = []
    if data:
        lines = dvc_add_commands(data, where, in_git=True)
        after_init = " (after dvc init)" if "dvc init" in lines else ""
        blocks.append(
            "Move large data to DVC:\n"
            + "\n".join("  " + line for line in [*cd, *lines])
            + (f"\nor let repro-hooks do it{after_init}: {fix_command}" if fix_command else "")
        )
        cd = []
    if notebooks:
        lines = notebook_commands(notebooks)
        blocks.append(
            "Notebooks are large because of their outputs: strip them (or use nbstripout), "
            "keep the notebook in git:\n" + "\n".join("  " + line for line in [*cd, *lines])
        )
    if odd:
        blocks.append(
            f"Names shown escaped ({', '.join(odd)}) cannot be typed as printed: rename them "
            "(git mv) and commit again" + (f", or run: {fix_command}" if fix_command else "")
        )
    return "\n".join(blocks)


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
