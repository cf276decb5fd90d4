"""Run links: what `tag-mlflow` writes on an MLflow run for a commit, and how it picks the run.

Everything here is pure or talks only to git: no mlflow import (the commit-stage command loads
this module). The MLflow side lives in repro_hooks.links.store; the queue in links.queue.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from repro_hooks.git import Git

# Tag keys this tool owns. Nothing else on a run is ever changed (mlflow.* least of all).
COMMIT_TAG = "git.commit"
BRANCH_TAG = "git.branch"
REPO_URL_TAG = "git.repo_url"
DVC_PREFIX = "dvc."
FINGERPRINT_TAG = "dvc.fingerprint"
SOURCE_COMMIT_TAG = "mlflow.source.git.commit"  # read, never written
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
class RecordedOutput:
    path: str
    hash_value: str
    source: str  # the .dvc file or dvc.lock that records it


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


def committed_outputs(git: Git, commit: str) -> tuple[list[RecordedOutput], list[str]]:
    """Every DVC output the commit's own `.dvc` files and `dvc.lock` outs describe.

    Read from the commit (one `git ls-tree -r -z`, one `git cat-file --batch`), never from the
    working tree. Returns the outputs sorted by path and one problem line per unreadable file.
    """
    from repro_hooks.dvc.files import DvcFileError, parse_dvc_file, parse_dvc_lock, parse_dvc_yaml

    listing = git.run("ls-tree", "-r", "-z", "--full-tree", commit)
    wanted: dict[str, str] = {}  # path -> blob sha
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha = meta.decode().split(" ")
        if kind != "blob" or mode == "120000":
            continue
        path = raw_path.decode("utf-8", "surrogateescape")
        name = posixpath.basename(path)
        if name.endswith(".dvc") or name in ("dvc.lock", "dvc.yaml"):
            wanted[path] = sha
    lock_dirs = {posixpath.dirname(p) for p in wanted if posixpath.basename(p) == "dvc.lock"}
    needed = {
        p: s
        for p, s in wanted.items()
        if posixpath.basename(p) != "dvc.yaml" or posixpath.dirname(p) in lock_dirs
    }
    contents = git.read_blobs(needed.values())
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
                        stages = parse_dvc_yaml(contents[needed[yaml_path]], yaml_path)
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


# ---- credentials ------------------------------------------------------------------------------

_SECRET_PARAM_RE = re.compile(
    r"(token|password|passwd|pwd|secret|key|auth|credential|signature|sig)", re.IGNORECASE
)
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]*@")


def strip_credentials(uri: str) -> str:
    """A URI without user:password@ and without credential-looking query parameters."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return _USERINFO_RE.sub("", uri)
    if not parts.scheme or (not parts.netloc and not parts.query):
        return uri
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
         if not _SECRET_PARAM_RE.search(k)]
    )  # fmt: skip
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_in(uri: str | None, env: Mapping[str, str]) -> list[str]:
    """Strings that must never be written anywhere: URI credentials and MLflow's secret env."""
    found: list[str] = []
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "DATABRICKS_TOKEN"):
        if env.get(name):
            found.append(env[name])
    for candidate in (uri, env.get("MLFLOW_TRACKING_URI")):
        if not candidate:
            continue
        try:
            parts = urlsplit(candidate)
        except ValueError:
            continue
        if parts.password:
            found.append(parts.password)
        if "@" in parts.netloc:
            found.append(parts.netloc.rpartition("@")[0])
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if value and _SECRET_PARAM_RE.search(key):
                found.append(value)
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """Text with every known secret and any `user:pass@` in a URL replaced by `***`."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _USERINFO_RE.sub("***@", text)


# ---- the tracking store -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingStore:
    uri: str  # may carry credentials: keep it in memory only
    origin: str  # "option", "config", "environment", "default"

    @property
    def safe_uri(self) -> str:
        return strip_credentials(self.uri)


def _mlruns_has_experiments(mlruns: Path) -> bool:
    # The same test MLflow's default-URI logic uses: a numeric directory with a meta.yaml.
    try:
        with os.scandir(mlruns) as entries:
            return any(
                e.is_dir() and e.name.isdigit() and os.path.lexists(Path(e.path) / "meta.yaml")
                for e in entries
            )
    except OSError:
        return False


def resolve_tracking_store(
    root: Path, option: str | None, configured: str | None, env: Mapping[str, str]
) -> TrackingStore | None:
    """Option, then config, then MLFLOW_TRACKING_URI; else the store MLflow would use for a
    script run from the repository root, but only if it already exists (None otherwise: nothing
    is ever created)."""
    if option:
        return TrackingStore(option, "option")
    if configured:
        return TrackingStore(configured, "config")
    if env.get("MLFLOW_TRACKING_URI"):
        return TrackingStore(env["MLFLOW_TRACKING_URI"], "environment")
    if _mlruns_has_experiments(root / "mlruns"):
        return TrackingStore((root / "mlruns").as_uri(), "default")
    db = root / "mlflow.db"
    if db.is_file():
        return TrackingStore(f"sqlite:///{db}", "default")
    return None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for other stores)."""
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:") :].lstrip("/")
    if not rest or rest.startswith(":memory:"):
        return None
    # sqlite:///rel.db is relative, sqlite:////abs.db absolute
    return Path("/" + rest) if uri.startswith("sqlite:////") else Path(rest.split("?")[0])


def anchored_uri(uri: str, root: Path) -> str:
    """A local store's URI with a relative path made absolute against the repository root
    (MLflow would resolve it against the current directory, and create a database there)."""
    db = sqlite_path(uri)
    if db is not None and not db.is_absolute():
        query = uri.partition("?")[2]
        return f"sqlite:///{root / db}" + (f"?{query}" if query else "")
    if "://" not in uri and not uri.startswith("file:") and not Path(uri).is_absolute():
        return (root / uri).as_uri()
    return uri


def missing_local_store(uri: str, cwd: Path) -> str | None:
    """Why a local store must not be opened (MLflow would create it), or None."""
    db = sqlite_path(uri)
    if db is not None:
        full = db if db.is_absolute() else cwd / db
        if not full.is_file():
            return f"{strip_credentials(uri)}: no such database (repro-hooks never creates one)"
        return None
    if uri.startswith("file:") or "://" not in uri:
        path = Path(urlsplit(uri).path) if uri.startswith("file:") else Path(uri)
        full = path if path.is_absolute() else cwd / path
        if not full.is_dir():
            return f"{uri}: no such directory (repro-hooks never creates one)"
    return None


def experiment_selection(
    option: Sequence[str], configured: Sequence[str], env: Mapping[str, str]
) -> tuple[str, ...]:
    """Experiments to search (names or ids); empty means every active experiment."""
    if option:
        return tuple(option)
    if configured:
        return tuple(configured)
    if env.get("MLFLOW_EXPERIMENT_ID"):
        return (env["MLFLOW_EXPERIMENT_ID"],)
    if env.get("MLFLOW_EXPERIMENT_NAME"):
        return (env["MLFLOW_EXPERIMENT_NAME"],)
    return ()


# ---- replays ----------------------------------------------------------------------------------

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


# ---- choosing the run ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCandidate:
    run_id: str
    experiment_id: str
    start_time: int  # ms
    linked_commit: str | None  # our git.commit tag
    source_commit: str | None  # mlflow.source.git.commit


@dataclass(frozen=True)
class RunChoice:
    run: RunCandidate | None
    reason: str  # why this run, or why none
    passed_over: tuple[str, ...] = ()


def choose_run(
    candidates: Iterable[RunCandidate],
    commit: str,
    is_ancestor: Callable[[str], bool],
) -> RunChoice:
    """The run a commit produced, from runs newest first (all started before the commit).

    A run already linked to this commit is the answer (delivery is idempotent). A run whose
    recorded start commit is neither this commit nor an ancestor is passed over (another branch
    or repository). A run linked to another commit is passed over; if that commit is an ancestor,
    the search stops there: every older run predates a commit that already has its run, so a
    second commit without a new run links nothing.
    """
    passed: list[str] = []
    for run in candidates:
        if run.linked_commit == commit:
            return RunChoice(run, "already linked to this commit", tuple(passed))
        if run.linked_commit is not None:
            if is_ancestor(run.linked_commit):
                return RunChoice(
                    None,
                    f"no new run since {run.linked_commit[:12]} (the newest run, "
                    f"{run.run_id}, is linked to it)",
                    tuple(passed),
                )
            passed.append(f"{run.run_id}: linked to another commit {run.linked_commit[:12]}")
            continue
        if run.source_commit and run.source_commit != commit and not is_ancestor(run.source_commit):
            passed.append(f"{run.run_id}: started from {run.source_commit[:12]}, not an ancestor")
            continue
        return RunChoice(run, "newest run started before the commit", tuple(passed))
    return RunChoice(None, "no run started before the commit", tuple(passed))
