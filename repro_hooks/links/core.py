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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from repro_hooks.git import Git

if TYPE_CHECKING:
    from repro_hooks.dvc.files import LockStage

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
    from repro_hooks.dvc.commits import CommitFiles, may_template
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
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _SECRET_PARAM_RE.search(k)
        ]
    )
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


def store_to_open(
    root: Path, option: str | None, configured: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """(uri, uri without credentials) of the tracking store a reading command (`check-model`,
    `show`) opens: resolved as `resolve_tracking_store` does, a relative local store anchored at
    the repository root, and never one MLflow would create. Raises ReproHooksError otherwise."""
    from repro_hooks.errors import ReproHooksError

    store = resolve_tracking_store(root, option, configured, env)
    if store is None:
        raise ReproHooksError(
            "no tracking server: give --tracking-uri, set MLFLOW_TRACKING_URI, or "
            "[tool.repro-hooks.mlflow] tracking-uri"
        )
    why_not = missing_local_store(store.uri, root)
    if why_not:
        raise ReproHooksError(why_not)
    uri = anchored_uri(store.uri, root)
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri, store.safe_uri


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
    if is_local_uri(uri) and not uri.startswith("file:") and not Path(uri).is_absolute():
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
    if is_local_uri(uri):
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

PARENT_RUN_TAG = "mlflow.parentRunId"  # read, never written
USER_TAG = "mlflow.user"  # read, never written
SOURCE_NAME_TAG = "mlflow.source.name"  # read, never written
SOURCE_URL_TAG = "mlflow.source.git.repoURL"  # read, never written
EVIDENCE_TAG = "repro_hooks.link"  # how the link was justified: stamp, mlflow-source or run-id
LINK_POLICIES = ("latest", "all-since-previous-commit")
END_SLACK_S = 60.0  # an end state taken later than this after the run ended is not used


@dataclass(frozen=True)
class RunCandidate:
    run_id: str
    experiment_id: str
    start_time: int  # ms
    linked_commit: str | None  # our git.commit tag
    source_commit: str | None  # mlflow.source.git.commit
    end_time: int | None = None  # ms, None while running
    status: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def parent_run_id(self) -> str | None:
        return self.tags.get(PARENT_RUN_TAG)


@dataclass(frozen=True)
class RunChoice:
    runs: tuple[RunCandidate, ...]
    reason: str  # why these runs, or why none
    passed_over: tuple[str, ...] = ()

    @property
    def run(self) -> RunCandidate | None:
        return self.runs[0] if self.runs else None


Judge = Callable[[RunCandidate], str | None]  # None: the run qualifies; else why not


ENDED_BADLY = ("FAILED", "KILLED")
STAGE_RUN_TAG = "repro_hooks.stage"  # links.stamp.STAGE_TAG: the stage a run ran as


def is_finished(run: RunCandidate) -> bool:
    """Whether MLflow says the run finished cleanly (FINISHED, with an end time)."""
    return run.status.upper() == "FINISHED" and run.end_time is not None


def status_verdict(run: RunCandidate) -> str | None:
    """A run that failed or was killed made nothing worth linking, whatever its evidence."""
    status = (run.status or "").upper()
    if status in ENDED_BADLY:
        return f"the run ended {status}: a failed or killed run is never linked"
    return None


def choose_runs(
    candidates: Iterable[RunCandidate],
    commit: str,
    is_ancestor: Callable[[str], bool],
    judge: Judge,
    policy: str = "latest",
) -> RunChoice:
    """The top-level runs a commit links to, from runs newest first (all started before the
    commit). Nested runs are skipped here: they carry their top-level run's link.

    A run already linked to this commit is the answer (delivery is idempotent). A run linked to
    another commit is passed over; if that commit is an ancestor, the search stops there (every
    older run predates a commit that already has its run). Every other run must satisfy `judge`
    (the code and data rules). `latest` takes the newest qualifying FINISHED run; a qualifying
    run without an end (still running, or killed so hard MLflow never heard) is taken only when
    no finished run qualifies. When the newest is a stage run, the newest qualifying finished
    run of every other stage is taken too (a pipeline whose train and evaluate stages both log a
    run links both), down to the same stop. `all-since-previous-commit` takes every qualifying run down to
    that stop.
    """
    passed: list[str] = []
    chosen: list[RunCandidate] = []
    unfinished: RunCandidate | None = None  # the newest qualifying run that has not finished
    stages: set[str] = set()  # `latest` after a stage run: the newest run of each other stage
    for run in candidates:
        if run.parent_run_id:
            continue
        if run.linked_commit == commit:
            if policy == "latest" and not chosen:
                return RunChoice((run,), "already linked to this commit", tuple(passed))
            chosen.append(run)
            continue
        if run.linked_commit is not None:
            if is_ancestor(run.linked_commit):
                if chosen or unfinished is not None:
                    break
                return RunChoice(
                    (),
                    f"no qualifying run since {run.linked_commit[:12]} (run {run.run_id} "
                    "is linked to it)",
                    tuple(passed),
                )
            passed.append(f"{run.run_id}: linked to another commit {run.linked_commit[:12]}")
            continue
        if stages and (run.tags.get(STAGE_RUN_TAG) or "") in stages | {""}:
            continue  # an older run of a stage already chosen, or no stage run
        why_not = status_verdict(run) or judge(run)
        if why_not is not None:
            passed.append(f"{run.run_id}: {why_not}")
            continue
        if policy == "latest" and not is_finished(run):
            if not stages:
                unfinished = unfinished or run
                passed.append(f"{run.run_id}: qualifies but has not finished ({run.status or '?'})")
            continue
        chosen.append(run)
        if policy == "latest":
            address = run.tags.get(STAGE_RUN_TAG)
            if not address:
                break
            stages.add(address)  # `dvc repro` may log a run in several stages: one each
    if chosen:
        return RunChoice(tuple(chosen), "qualifying run started before the commit", tuple(passed))
    if unfinished is not None:
        rest = tuple(p for p in passed if not p.startswith(f"{unfinished.run_id}: "))
        why = "qualifying run started before the commit (no finished run qualifies)"
        return RunChoice((unfinished,), why, rest)
    if not passed:
        return RunChoice((), "no run started before the commit", ())
    return RunChoice((), "no qualifying run started before the commit", tuple(passed))


def code_verdict(
    changed_by_commit: Mapping[str, str | None],
    run_changes: Mapping[str, str | None],
    untracked: Iterable[str] = (),
) -> str | None:
    """The code rule: the commit records the code the run ran.

    `changed_by_commit`: code paths where the commit differs from the run's HEAD ({path: blob in
    the commit, None if the commit deletes it}). `run_changes`: code paths where the run's work
    tree differed from its HEAD ({path: blob, None if deleted, "?" if too large to hash}).
    Every path the commit changed must be in the run's tree exactly so; every tracked file the
    run had changed must be committed as the run saw it. An untracked file the commit leaves out
    is not code the commit claims (scratch files are common), so it does not count against it.
    """
    scratch = set(untracked)
    for path in sorted(changed_by_commit):
        if path not in run_changes:
            return f"{path}: changed by the commit, but the run ran the version at its HEAD"
        if run_changes[path] != changed_by_commit[path]:
            return f"{path}: the run ran another version than the commit records"
    for path in sorted(run_changes):
        if path not in changed_by_commit and path not in scratch:
            return f"{path}: the run ran an uncommitted change the commit does not record"
    return None


def _covers(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def data_verdict(
    outputs: Iterable[RecordedOutput],
    start: Mapping[str, str],
    end: Mapping[str, str] | None,
    written: Iterable[str] | None = None,
) -> str | None:
    """The data rule, per output the commit records.

    With `written` (the paths the training process opened for writing, from the stamp's audit
    hook): an output the run wrote (that path or a file inside it) must equal the commit's
    record at the run's end; every other output the stamp measured at the start is data the run
    may have read, and must equal the commit's record at the START (data that changed under a
    running run, then committed, is data the run never saw). An output the stamp did not know
    at the start (no DVC file recorded it yet) counts as today: seen at the end.

    Without `written` (a process without the hook): the run saw that hash at its start (it read
    it) or at its end (it wrote it). With an end state, an output that differs from it changed
    after the run ended; without one (the run is still running, or its process never exited
    cleanly), only the start counts."""
    wrote = None if written is None else list(written)
    for out in outputs:
        at_start = start.get(out.path)
        if wrote is not None and at_start is not None:
            if any(_covers(out.path, w) for w in wrote):
                if end is None:
                    return (
                        f"{out.path}: written by the run, whose end state is not recorded "
                        "(still running, or killed?)"
                    )
                at_end = end.get(out.path)
                if at_end == out.hash_value:
                    continue
                if at_end:
                    return (
                        f"{out.path}: changed after the run wrote it ({at_end[:12]} -> "
                        f"{out.hash_value[:12]})"
                    )
                return f"{out.path}: written by the run, but absent at its end"
            if at_start == out.hash_value:
                continue
            if at_start:
                return (
                    f"{out.path}: the run read another version ({at_start[:12]} at its start, "
                    f"{out.hash_value[:12]} in the commit) and did not write it"
                )
            return f"{out.path}: absent when the run started, and the run did not write it"
        if end is not None:
            at_end = end.get(out.path)
            if at_end == out.hash_value:
                continue
            if at_end is None and at_start == out.hash_value:
                continue
            seen = at_end or at_start
            if seen:
                return f"{out.path}: changed after the run ended ({seen[:12]} -> {out.hash_value[:12]})"
            return f"{out.path}: the run never saw it (absent at its start and end)"
        if at_start == out.hash_value:
            continue
        if at_start:
            return (
                f"{out.path}: changed since the run started ({at_start[:12]} -> "
                f"{out.hash_value[:12]}) and the run's end state is not recorded (still running?)"
            )
        return f"{out.path}: not present when the run started, and the run's end is not recorded"
    return None


def _same_value(run_value: Any, recorded: Any) -> bool:
    """A params value as the stamp stored it (JSON) equals the value dvc.lock records (DVC
    compares with ==: 1 == 1.0, a tuple reads as a list)."""
    import json

    try:
        norm = json.loads(json.dumps(recorded, sort_keys=True, default=repr))
    except (TypeError, ValueError):
        return False
    return bool(run_value == norm)


def _cmd_text(cmd: object) -> str:
    if isinstance(cmd, list):
        return "\n".join(str(c) for c in cmd)
    return str(cmd or "")


def stage_verdict(
    stage: Mapping[str, Any], lock: LockStage | None, end: Mapping[str, str] | None
) -> str | None:
    """The stage rule: a run DVC ran as a stage (`DVC_STAGE`) is justified by that stage alone.
    The commit's dvc.lock records the stage with the command the run's stage had; its deps and
    params there are what the stage had when the run started; its outs there are what they were
    when the run ended. Other stages' outputs and files no stage reads are not the run's
    business. `stage` is the stamp record's "stage" (deps hashes, params values, outs), `lock`
    the commit's dvc.lock entry for it."""
    name = str(stage.get("address") or stage.get("name") or "?")
    label = f"stage {name}"
    if lock is None:
        return f"{stage.get('file') or 'dvc.yaml'}: the commit's dvc.lock does not record {label}"
    if _cmd_text(lock.cmd) != _cmd_text(stage.get("cmd")):
        return f"{label}: the commit's dvc.lock records another command than the run ran"
    deps = stage.get("deps")
    deps = deps if isinstance(deps, Mapping) else {}
    recorded = {d.path for d in lock.deps}
    for dep in sorted(lock.deps, key=lambda d: d.path):
        seen = deps.get(dep.path)
        if seen is None:
            return f"{dep.path}: a dependency of {label} in the commit, not when the run ran"
        if dep.hash_value and seen != dep.hash_value:
            was = (seen or "absent")[:12]
            return (
                f"{dep.path}: {label} started from another version ({was} at the run's start, "
                f"{dep.hash_value[:12]} in the commit's dvc.lock)"
            )
    for path in sorted(deps):
        if path not in recorded:
            return f"{path}: a dependency of {label} when the run ran, not in the commit's dvc.lock"
    params = stage.get("params")
    params = params if isinstance(params, Mapping) else {}
    for pfile, values in sorted(lock.params.items()):
        had = params.get(pfile)
        if not isinstance(had, Mapping):
            return f"{pfile}: params of {label} not read when the run started"
        for key, value in sorted(values.items()):
            if key not in had:
                return f"{pfile}: param {key} of {label} absent when the run started"
            if not _same_value(had[key], value):
                return (
                    f"{pfile}: param {key}: the run started with {str(had[key])[:40]!r}, the "
                    f"commit's dvc.lock records {str(value)[:40]!r}"
                )
    outs = [o for o in lock.outs if o.hash_value]
    if outs and end is None:
        return f"{label}: the run's end state is not recorded (still running, or killed?)"
    for out in sorted(outs, key=lambda o: o.path):
        at_end = (end or {}).get(out.path)
        if at_end != out.hash_value:
            was = (at_end or "absent")[:12]
            return (
                f"{out.path}: output of {label}: {was} when the run ended, "
                f"{(out.hash_value or '')[:12]} in the commit's dvc.lock"
            )
    return None


def usable_end(
    record: Mapping[str, object], run: RunCandidate
) -> tuple[Mapping[str, str] | None, str | None]:
    """The end state of a stamp record if it may be used for this run, and a note if not."""
    end = record.get("end")
    ended = record.get("ended")
    if not isinstance(end, dict) or not isinstance(ended, (int, float)):
        return None, None
    if run.end_time is None:
        return None, "the run is still running"
    late = ended - run.end_time / 1000
    if late > END_SLACK_S:
        return None, f"its end state was taken {late:.0f}s after the run ended"
    return end, None


def stamp_verdict(
    run: RunCandidate,
    record: Mapping[str, object] | None,
    root: str,
    changed_by_commit: Mapping[str, str | None] | None,
    outputs: Sequence[RecordedOutput],
    *,
    run_changes: Mapping[str, str | None] | None = None,
    lock: LockStage | None = None,
) -> str | None:
    """Whether a run this clone stamped qualifies (None) or why not. A stage run (its record
    has a "stage") is judged by `stage_verdict` against `lock`, the commit's entry for that
    stage; any other run by the code and data rules (`run_changes`: the record's code changes,
    already cleared of what is not code; by default the record's own)."""
    if record is None:
        return "no local record of its stamp in this clone"
    if record.get("root") != root:
        return f"ran in another work tree ({record.get('root')})"
    end, _ = usable_end(record, run)
    stage = record.get("stage")
    if isinstance(stage, Mapping):
        return stage_verdict(stage, lock, end)
    if changed_by_commit is None:
        head = record.get("head")
        return f"its HEAD {head[:12] if isinstance(head, str) else '(none)'} is unknown here"
    code = record.get("code") if run_changes is None else run_changes
    untracked = record.get("untracked")
    why = code_verdict(
        changed_by_commit,
        code if isinstance(code, dict) else {},
        untracked if isinstance(untracked, list) else (),
    )
    if why:
        return why
    start = record.get("start")
    written = record.get("written")
    return data_verdict(
        outputs,
        start if isinstance(start, dict) else {},
        end,
        written if isinstance(written, list) else None,
    )


def fallback_verdict(
    run: RunCandidate,
    *,
    commit: str,
    parents: Sequence[str],
    user: str | None,
    root: str,
    repo_url: str | None,
    changed_by_commit: Mapping[str, str | None] | None,
    same_data: bool,
) -> str | None:
    """A run without a repro-hooks stamp, judged from what MLflow records. Conservative: it
    qualifies only if this OS user started it, from a script inside this work tree (an absolute
    `mlflow.source.name`), at the commit's parent (or the commit), it finished, and the commit
    changes neither code nor DVC-recorded data relative to that start commit."""
    tags = run.tags
    if tags.get("repro_hooks.clone"):
        return "stamped in another clone"
    if not tags.get(USER_TAG) or tags.get(USER_TAG) != user:
        return f"started by user {tags.get(USER_TAG)!r}, not {user!r}"
    source = tags.get(SOURCE_NAME_TAG) or ""
    if not os.path.isabs(source):
        return (
            f"no repro-hooks stamp, and MLflow's source name {source!r} does not prove which "
            "clone it ran in"
        )
    real_root = os.path.realpath(root)
    real = os.path.realpath(source)
    if not (real == real_root or real.startswith(real_root + os.sep)):
        return f"its script {source} is outside this work tree"
    url = tags.get(SOURCE_URL_TAG)
    if url and repo_url and strip_credentials(url) != repo_url:
        return f"recorded repository {strip_credentials(url)} is not this one"
    if run.source_commit not in (commit, *parents):
        return "no repro-hooks stamp, and it did not start from the commit's parent"
    if run.status != "FINISHED" or run.end_time is None:
        return f"no repro-hooks stamp, and it has not finished ({run.status or 'unknown'})"
    if changed_by_commit:
        first = sorted(changed_by_commit)[0]
        return (
            f"no repro-hooks stamp, and the commit changes code ({first}) after the run "
            "started: whether the run ran it is not proven"
        )
    if not same_data:
        return (
            "no repro-hooks stamp, and the commit changes DVC-recorded data after the run "
            "started: which data the run saw is not proven"
        )
    return None


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


def not_code(
    changes: Mapping[str, str | None], data_paths: Iterable[str], ignore: Sequence[str]
) -> dict[str, str | None]:
    """Code changes without what is not code: DVC outputs (a `cache: false` metrics file git
    tracks is data, judged by the data rule) and paths matching `link-ignore` globs
    (documentation and the like, which cannot change what a run computed)."""
    from repro_hooks.policy.globs import compile_any

    data = set(data_paths)
    matcher = compile_any(ignore)
    return {
        p: v
        for p, v in changes.items()
        if p not in data and not (matcher is not None and matcher.match(p))
    }


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


BARE_SCHEMES = frozenset({"databricks", "databricks-uc", "uc"})  # MLflow's own, without "://"


def is_local_uri(uri: str) -> bool:
    """Whether a tracking URI names a local path (no scheme, or file:). Every scheme MLflow
    accepts (databricks, databricks://profile, databricks-uc, http(s), sqlite and other
    SQLAlchemy URIs, plugin schemes) is a store, not a directory to check."""
    if uri.startswith("file:"):
        return True
    if uri in BARE_SCHEMES:
        return False
    scheme = urlsplit(uri).scheme if ":" in uri else ""
    return not scheme or len(scheme) == 1  # a Windows drive letter is a path
