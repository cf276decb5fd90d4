"""What a link writes for a commit: the commit record read from git (its DVC outputs, branch
and repository) and the tag keys it becomes on a run (`git.*`, `dvc.<output>`, the fingerprint).

Pure or git only: the commit-stage command loads this module; no tracker is imported.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from repro_hooks.git import SYMLINK_MODE, Blob, Git
from repro_hooks.tracking.credentials import strip_credentials
from repro_hooks.tracking.port import RecordedOutput

__all__ = ["RecordedOutput"]  # re-exported: a commit records these

# Tag keys this tool owns. Nothing else on a run is ever changed (mlflow.* least of all).
COMMIT_TAG = "git.commit"
BRANCH_TAG = "git.branch"
REPO_URL_TAG = "git.repo_url"
DVC_PREFIX = "dvc."
FINGERPRINT_TAG = "dvc.fingerprint"
EVIDENCE_TAG = "repro_hooks.link"  # how the link was justified: stamp, mlflow-source or run-id
DATASET_SOURCE_TYPE = "dvc"

MAX_TAG_KEY = 250
MAX_TAG_VALUE = 8000
MAX_DIGEST = 36
_KEY_CHAR_RE = re.compile(r"[/\w.\- ]")  # MLflow allows [/\w.\- :]; ':' is our escape mark
_HASH_SUFFIX = 16

# ---- tag keys ---------------------------------------------------------------------------------


def _escape(ch: str) -> str:
    return "".join(f":{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def dvc_tag_key(path: str) -> str:
    """The run tag key for a DVC output: `dvc.<path>`, mapped stably into MLflow's key rules.

    Characters MLflow rejects (and ':' itself, so the mapping stays one-to-one) become `:HH` per
    UTF-8 byte; the second dot of `..` and a `/` that would make `//` are escaped the same way.
    A key longer than 250 characters keeps its first part and ends in `::` plus 16 hex digits of
    the path's SHA-256, so it stays stable and distinct.
    """
    out: list[str] = []
    prev = "."  # the prefix ends in a dot
    for ch in path:
        if (
            not _KEY_CHAR_RE.fullmatch(ch)
            or (ch == "." and prev == ".")
            or (ch == "/" and prev == "/")
        ):
            piece = _escape(ch)
        else:
            piece = ch
        out.append(piece)
        prev = piece[-1]
    body = "".join(out)
    if path == "fingerprint":  # would collide with the fingerprint tag
        body = _escape("f") + body[1:]
    key = DVC_PREFIX + body
    if posixpath.normpath(key) != key:  # e.g. a trailing "/" or a "/./" component
        key = DVC_PREFIX + "".join(_escape(c) if c in "/." else c for c in body)
    if len(key) > MAX_TAG_KEY:
        digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_SUFFIX]
        head = key[: MAX_TAG_KEY - 2 - _HASH_SUFFIX]
        while head.endswith((".", "/")):  # keep `..`, `//` and `/.` out of the joint
            head = head[:-1]
        key = f"{head}::{digest}"
    return key


def fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """One SHA-256 over every (output path, recorded hash) pair, order-independent."""
    h = hashlib.sha256()
    for path, value in sorted(set(pairs)):
        h.update(path.encode("utf-8", "surrogatepass") + b"\0" + value.encode() + b"\n")
    return h.hexdigest()


# ---- what a commit records ----------------------------------------------------------------


@dataclass(frozen=True)
class CommitRecord:
    """What a link writes for one commit: git facts plus the committed DVC outputs."""

    commit: str
    branch: str | None
    repo_url: str | None
    outputs: tuple[RecordedOutput, ...]
    problems: tuple[str, ...] = ()  # DVC files that could not be read (reported, not fatal)

    def tags(self) -> dict[str, str]:
        tags = {COMMIT_TAG: self.commit}
        if self.branch:
            tags[BRANCH_TAG] = self.branch[:MAX_TAG_VALUE]
        if self.repo_url:
            tags[REPO_URL_TAG] = self.repo_url[:MAX_TAG_VALUE]
        for out in self.outputs:
            tags[dvc_tag_key(out.path)] = out.hash_value
        if self.outputs:
            tags[FINGERPRINT_TAG] = fingerprint((o.path, o.hash_value) for o in self.outputs)
        return tags


def committed_outputs(
    git: Git, commit: str, tree: Sequence[Blob] | None = None
) -> tuple[list[RecordedOutput], list[str]]:
    """Every DVC output the commit's own `.dvc` files and `dvc.lock` outs describe.

    Read from the commit (one `git ls-tree -r -z`, or its `tree` when the caller has listed it;
    one `git cat-file --batch`), never from the working tree. Returns the outputs sorted by path
    and one problem line per unreadable file.
    """
    from repro_hooks.dvc.commits import CommitFiles, may_template
    from repro_hooks.dvc.files import DvcFileError, parse_dvc_file, parse_dvc_lock, parse_dvc_yaml

    if tree is None:
        tree = git.tree(commit, endings=(b".dvc", b"dvc.lock", b"dvc.yaml"))
    wanted: dict[str, str] = {}  # path -> blob sha
    for blob in tree:
        if blob.is_gitlink or blob.mode == SYMLINK_MODE:
            continue
        path = blob.path.decode("utf-8", "surrogateescape")
        name = posixpath.basename(path)
        if name.endswith(".dvc") or name in ("dvc.lock", "dvc.yaml"):
            wanted[path] = blob.sha
    lock_dirs = {posixpath.dirname(p) for p in wanted if posixpath.basename(p) == "dvc.lock"}
    needed = {
        p: s
        for p, s in wanted.items()
        if posixpath.basename(p) != "dvc.yaml" or posixpath.dirname(p) in lock_dirs
    }
    contents = git.read_blobs(needed.values())
    # a templated dvc.yaml reads its vars files and DVC config from this same commit
    committed = CommitFiles(git)
    committed.prefetch(
        (commit, p, contents[s])
        for p, s in needed.items()
        if posixpath.basename(p) == "dvc.yaml" and s in contents and may_template(contents[s])
    )
    found: dict[str, RecordedOutput] = {}
    problems: list[str] = []
    for path in sorted(needed):
        name = posixpath.basename(path)
        data = contents.get(needed[path])
        if data is None or name == "dvc.yaml":
            continue
        try:
            if name == "dvc.lock":
                yaml_path = posixpath.join(posixpath.dirname(path), "dvc.yaml")
                wdirs: dict[str, str] = {}
                if yaml_path in needed and needed[yaml_path] in contents:
                    try:
                        load, parsing = committed.sources(commit, yaml_path)
                        content = contents[needed[yaml_path]]
                        stages = parse_dvc_yaml(content, yaml_path, load, parsing)
                        wdirs = {s.name: s.wdir for s in stages.values()}
                    except DvcFileError as exc:
                        problems.append(str(exc))
                outs = [o for st in parse_dvc_lock(data, path, wdirs).values() for o in st.outs]
            else:
                outs = parse_dvc_file(data, path).outs
        except DvcFileError as exc:
            problems.append(str(exc))
            continue
        for out in outs:
            if out.hash_value:
                found[out.path] = RecordedOutput(out.path, out.hash_value, out.source or path)
    return [found[p] for p in sorted(found)], problems


def first_remote_url(git: Git) -> str | None:
    """The URL of `origin`, else of the first remote by name; credentials stripped."""
    out = git.try_run("config", "-z", "--get-regexp", r"^remote\..*\.url$")
    if not out:
        return None
    urls: dict[str, str] = {}
    for entry in out.split(b"\0"):
        key, _, value = entry.decode("utf-8", "replace").partition("\n")
        if key:
            urls.setdefault(key[len("remote.") : -len(".url")], value)
    if not urls:
        return None
    name = "origin" if "origin" in urls else sorted(urls)[0]
    return strip_credentials(urls[name])


def commit_record(git: Git, commit: str, branch: str | None) -> CommitRecord:
    outputs, problems = committed_outputs(git, commit)
    return CommitRecord(commit, branch, first_remote_url(git), tuple(outputs), tuple(problems))


def code_changes(raw: bytes) -> dict[str, str | None]:
    """Code paths from `git diff --raw -z --no-renames --no-abbrev A B`: {path: blob in B, or
    None if B deletes it}."""
    return {p: new for p, (_, new) in code_change_pairs(raw).items()}


def code_change_pairs(raw: bytes) -> dict[str, tuple[str | None, str | None]]:
    """As `code_changes`, with the blob in A too: {path: (blob in A, blob in B)}."""
    from repro_hooks.links.stamp import is_code_path

    fields = raw.split(b"\0")
    out: dict[str, tuple[str | None, str | None]] = {}
    i = 0
    while i + 1 < len(fields):
        meta = fields[i].decode("ascii", "replace")
        path = fields[i + 1].decode("utf-8", "surrogateescape")
        i += 2
        if not meta.startswith(":"):
            continue
        parts = meta[1:].split(" ")
        if len(parts) < 5 or not is_code_path(path):
            continue
        old_sha, new_sha = parts[2], parts[3]
        out[path] = (
            None if set(old_sha) == {"0"} else old_sha,
            None if set(new_sha) == {"0"} else new_sha,
        )
    return out
