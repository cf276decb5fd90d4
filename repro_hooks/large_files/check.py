"""Large-file policy: size what git stores (the blob), never the working-tree file.

The core (`large_file_findings`) is pure: blobs, their sizes, LFS facts and a policy in; findings
out. `collect_blobs` and `check_large_files` are the thin layer that asks git, in batches.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Blob, Git, ObjectInfo
from repro_hooks.git.objects import DEFLATE_MAX_RATIO, GITLINK_MODE
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


# PATH_MAX (4096 on Linux) less its NUL: no system can create a symbolic link to a longer target.
SYMLINK_TARGET_MAX = 4095


def is_link_target(content: bytes) -> bool:
    """Whether a mode-120000 blob reads as a link target a system could create: at most
    SYMLINK_TARGET_MAX bytes, no NUL, one line. Anything else is a file stored as a "symlink":
    where symlinks are off (`core.symlinks=false`, Git for Windows' default) git checks it out
    as a regular file holding those bytes, so every rule judges it as one."""
    return len(content) <= SYMLINK_TARGET_MAX and b"\0" not in content and b"\n" not in content


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
                path,
                "lfs-pointer",
                f"stored raw ({format_size(obj.size)}) under a filter=lfs attribute: "
                "should be an LFS pointer (is git-lfs installed? `git lfs install`, then re-add it)",
                blob.commit,
                blob.path,
            )
            continue
        limit = policy.size_limit_for(path)
        if obj.size > limit:
            findings[(blob.path, blob.sha)] = Finding(
                path,
                "large-file",
                f"{format_size(obj.size)} in git, over the {format_size(limit)} size limit",
                blob.commit,
                blob.path,
            )
    return list(findings.values())


def start_lfs_filtered_paths(git: Git, blobs: Sequence[Blob]) -> Callable[[], set[bytes]]:
    """Start asking git which paths carry `filter=lfs` (working-tree attributes: git 2.39 has no
    `check-attr --source`); call the result to wait for the answer."""
    attributes = git.start_attributes(
        list(dict.fromkeys(b.path for b in blobs if not b.is_gitlink)), ["filter"]
    )
    return lambda: {p for p, a in attributes().items() if a.get("filter") == "lfs"}


def lfs_facts(
    git: Git,
    blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    policy: Policy,
    filtered: Collection[bytes],
) -> LfsFacts:
    """Read the small blobs whose pointer status decides a verdict (LFS-filtered ones, and ones
    over a tiny size limit) and say which are LFS pointers."""
    candidates = [
        b.sha
        for b in blobs
        if (obj := info.get(b.sha)) is not None
        and 0 < obj.size < LFS_POINTER_MAX
        and (b.path in filtered or obj.size > policy.size_limit_for(display_path(b.path)))
    ]
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


# ---- the commit stage under pre-commit, and user paths ----------------------------


def _root_relative(git: Git, paths: Sequence[str], cwd: Path) -> list[bytes]:
    at_root = cwd == git.root
    joined = "\0".join(paths)
    if at_root and _all_plain(joined):  # every path root-relative and normal: os.fsencode each,
        # in one C call (a name holds no NUL, so splitting the encoded whole gives each one)
        encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
        return joined.encode(encoding, errors).split(b"\0")
    return [_relative_to_root(git, p, cwd, at_root) for p in paths]


def passable_by_pre_commit(root: Path, path: bytes) -> bool:
    """Whether pre-commit could pass this staged path to a hook: it passes only names that exist
    (`os.path.lexists`) and, by the default `types: [file]`, only regular files (identify tags a
    symlink `symlink`, not `file`)."""
    try:
        return stat.S_ISREG(os.lstat(os.path.join(os.fsencode(root), path)).st_mode)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Selection:
    """What one run checks: `blobs` against the size limits, and `staged` (None: not a commit)
    against the commit's total-size limit."""

    blobs: list[Blob]
    staged: list[Blob] | None = None


def _under(entries: Sequence[Blob], names: Sequence[bytes], rel: bytes) -> Sequence[Blob]:
    """The entries (sorted by path, `names` their paths) at `rel` or under the directory `rel`
    (`b""` or `b"."`: the whole index)."""
    import bisect

    rel = b"" if rel == b"." else rel
    at = bisect.bisect_left(names, rel)
    if rel and at < len(names) and names[at] == rel:
        return entries[at : at + 1]
    prefix = rel + b"/" if rel else b""
    start = at = bisect.bisect_left(names, prefix)
    while at < len(names) and names[at].startswith(prefix):
        at += 1
    return entries[start:at]


def hook_passes_no_filenames(root: Path) -> bool:
    """Whether the repository's `.pre-commit-config.yaml` runs check-large-files with
    `pass_filenames: false`: then an empty name list is no filter's verdict and everything
    staged is checked. Unreadable or absent: False."""
    import yaml

    try:
        config = yaml.safe_load((root / ".pre-commit-config.yaml").read_bytes())
        hooks = [h for r in config["repos"] for h in r["hooks"]]
        return any(
            h.get("pass_filenames") is False
            and (h.get("id") == "block-large-files" or "check-large-files" in str(h.get("entry")))
            for h in hooks
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return False


def pre_commit_selection(git: Git, names: Sequence[str], cwd: Path) -> Selection:
    """Under the pre-commit framework (PRE_COMMIT=1), names are the files it passed, already
    filtered by the hook's `files`/`exclude`/`types` and the config's top-level ones; an empty
    list means every staged file was filtered out (the hook is `always_run`), unless the hook
    is configured with `pass_filenames: false`. Checked: the index entries of the names (a name
    that is a directory in the index, as given in `args:`, stands for every file under it),
    plus every staged blob pre-commit could never pass (no file on disk, as with skip-worktree,
    assume-unchanged or a file deleted after `git add`; or not a regular file on disk), so no
    filter can hide those. Names not in the index at all are ignored."""
    assert git.root is not None
    wanted = set(_root_relative(git, names, cwd)) if names else set()
    seen_by_pre_commit = git.start_paths_pre_commit_sees()
    staged = git.staged_paths()
    every: list[Blob] | None = None
    if staged is None:  # no HEAD yet: the whole index is staged
        every = git.index_blobs()
        staged = {b.path for b in every}
    if not names and hook_passes_no_filenames(git.root):
        wanted = staged
    unpassed = staged - wanted
    unpassable = {p for p in unpassed if not passable_by_pre_commit(git.root, p)}
    if seen_by_pre_commit is not None:  # a replace ref: what pre-commit never saw, it never passed
        seen = seen_by_pre_commit()
        unpassable |= unpassed - seen if seen is not None else unpassed
    only = wanted | unpassed if unpassed else wanted
    if every is None:
        entries = git.index_blobs(only=only)
    elif not unpassed:  # every index entry was staged, and passed
        entries = every
    else:
        entries = [b for b in every if b.path in only]
    if unpassed:
        chosen = [b for b in entries if b.path in wanted or b.path in unpassable]
        staged_blobs = [b for b in entries if b.path in staged]
    else:  # the common case: pre-commit passed every staged name
        chosen = entries
        staged_blobs = (
            entries if len(entries) == len(staged) else [b for b in entries if b.path in staged]
        )
    # names that are no file in the index (when none were unpassed, entries are all wanted)
    missing = (
        set()
        if not unpassed and len(entries) == len(wanted)
        else (wanted - {b.path for b in entries})
    )
    if missing:  # a directory given in the hook's args, or a name git does not track
        every = git.index_blobs() if every is None else every
        paths = [b.path for b in every]
        chosen = [*chosen]  # a copy: `chosen` may be the staged list itself
        seen = {b.path for b in chosen}
        for rel in sorted(missing):
            chosen.extend(b for b in _under(every, paths, rel) if b.path not in seen)
            seen.update(b.path for b in chosen)
    return Selection(chosen, staged_blobs)


def user_path_selection(git: Git, paths: Sequence[str], cwd: Path) -> Selection:
    """Paths a person gives: each names a file in the index or a directory (everything in the
    index under it); taken literally (no globs, no pathspec magic). A path that matches nothing
    in the index is a usage error, never a silent pass."""
    wanted = _root_relative(git, paths, cwd)
    exact = git.index_blobs(only=set(wanted))
    if len(exact) == len(set(wanted)):
        return Selection(exact)  # every path a file in the index (as a file list gives them)
    entries = git.index_blobs()
    names = [b.path for b in entries]  # git keeps the index sorted by path bytes
    chosen: dict[bytes, Blob] = {}
    for shown, rel in zip(paths, wanted, strict=True):
        found = _under(entries, names, rel)
        if not found:
            raise ReproHooksError(
                f"{shown}: matches no file in the index (give a tracked or staged file or a "
                "directory; globs are not expanded)"
            )
        chosen.update((b.path, b) for b in found)
    return Selection([chosen[p] for p in sorted(chosen)])


def commit_total_finding(
    staged: Sequence[Blob], stored: Mapping[str, int], policy: Policy
) -> Finding | None:
    """The commit's total-size finding: the bytes git stores for its distinct staged blobs
    (`stored`: sha -> size as stored), over `max-commit-total`. Excluded paths, gitlinks and
    unsized blobs do not count."""
    counted = {b.sha: b for b in staged if b.mode != GITLINK_MODE and b.sha in stored}
    if policy.exclude:
        kept = [b for b in staged if not policy.is_excluded(display_path(b.path))]
        counted = {b.sha: b for b in kept if b.mode != GITLINK_MODE and b.sha in stored}
    total = sum(stored[sha] for sha in counted)
    if total <= policy.max_commit_total:
        return None
    files = sum(1 for b in staged if b.sha in counted)
    return Finding(
        "(commit)",
        "total-size",
        f"{files} staged files take {format_size(total)} in git, over the "
        f"{format_size(policy.max_commit_total)} total-size limit of a commit (max-commit-total)",
    )


def check_large_files(
    git: Git, policy: Policy, blobs: Sequence[Blob], staged: Sequence[Blob] | None = None
) -> list[Finding]:
    """Size the blobs (in batches) and apply the policy; with `staged`, also the commit's
    total-size limit over those blobs.

    Three batched questions: `git check-attr` for filter=lfs; a loose-object size bound (one
    fstatat each) that proves most small blobs are under their limit without inflating them;
    `git cat-file --batch-check` for the rest (and every LFS-filtered path). The total counts a
    loose blob's compressed file size (the same fstatat) and a packed blob's full size."""
    candidates = [b for b in blobs if not b.is_gitlink]
    lfs_filtered = start_lfs_filtered_paths(git, candidates)
    total_shas = [] if staged is None else [b.sha for b in staged if b.mode != GITLINK_MODE]
    if staged is None or staged is blobs:  # the common case: the blobs checked are the staged
        bounds = git.loose_size_bounds(b.sha for b in candidates)
    else:
        bounds = git.loose_size_bounds(dict.fromkeys([*(b.sha for b in candidates), *total_shas]))
    filtered = lfs_filtered()
    if policy.size_limits:
        to_size = [
            b.sha
            for b in candidates
            if b.path in filtered
            or bounds.get(b.sha, LARGEST) > policy.size_limit_for(display_path(b.path))
        ]
    else:  # one limit for every path: no need to spell each path out
        limit = policy.max_size
        to_size = [
            b.sha for b in candidates if b.path in filtered or bounds.get(b.sha, LARGEST) > limit
        ]
    packed = list(dict.fromkeys(sha for sha in total_shas if sha not in bounds))
    info = git.object_info([*to_size, *packed])
    findings = large_file_findings(
        blobs, info, policy, lfs_facts(git, blobs, info, policy, filtered)
    )
    if staged is not None:
        # a loose object's bound is its file size times DEFLATE_MAX_RATIO: sum first (in C),
        # spell out per blob only when the sum is over the limit
        loose = bounds.keys() & set(total_shas)
        upper = sum(map(bounds.__getitem__, loose)) // DEFLATE_MAX_RATIO
        upper += sum(info[sha].size for sha in packed if sha in info)
        if upper > policy.max_commit_total:
            stored = {sha: bounds[sha] // DEFLATE_MAX_RATIO for sha in loose}
            stored.update((sha, info[sha].size) for sha in packed if sha in info)
            total = commit_total_finding(staged, stored, policy)
            if total is not None:
                findings.append(total)
    return findings


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
    from repro_hooks.dvc.hints import (
        Where,
        dvc_add_commands,
        gitignore_entry,
        is_notebook,
        notebook_commands,
        stage_outputs,
        untrack_commands,
    )
    from repro_hooks.rules import rule  # lazy, as the hints: a clean commit never needs them

    if in_history:
        return "These files are in commits being pushed. " + rule("large-file").history_fix
    large = [f for f in findings if f.rule == "large-file"]
    if not large and any(f.rule == "total-size" for f in findings):
        return rule("total-size").fix
    if not large:
        return rule("lfs-pointer").fix
    where = Where(root, cwd)
    # a name shown escaped (newline, invalid UTF-8) cannot be typed as printed: say so
    odd = [f.path for f in large if f.raw_path is not None and f.path != os.fsdecode(f.raw_path)]
    data = [f.path for f in large if not is_notebook(f.path) and f.path not in odd]
    notebooks = [f.path for f in large if is_notebook(f.path) and f.path not in odd]
    cd = where.prefix()  # once, in the first block: every path below is root-relative
    blocks = []
    outputs = stage_outputs(root, data) if root is not None else {}  # dvc add refuses these
    if outputs:
        data = [p for p in data if p not in outputs]
        blocks.append(
            "dvc.yaml stage outputs: take them out of git (dvc repro or dvc commit records "
            "them in dvc.lock; dvc add refuses them):\n"
            + "\n".join("  " + line for line in [*cd, *untrack_commands(list(outputs))])
            + (f"\nor let repro-hooks do it: {fix_command}" if fix_command and not data else "")
        )
        cd = []
    if data:
        lines = dvc_add_commands(data, where)
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
        # --fix refuses a name no .gitignore line can say (a newline, a final carriage return)
        fixable = [
            f
            for f in large
            if f.path in odd
            and f.raw_path is not None
            and gitignore_entry(os.fsdecode(f.raw_path).rsplit("/", 1)[-1]) is not None
        ]
        blocks.append(
            f"Names shown escaped ({', '.join(odd)}) cannot be typed as printed: rename them "
            "(git mv) and commit again"
            + (f", or run: {fix_command}" if fix_command and fixable else "")
        )
    return "\n".join(blocks)
