"""`show`'s questions, asked of the tracker, git and DVC: a commit's runs, a run's commit and
data, a model version's chain (version -> run -> commit -> data, and whether each DVC object is
kept where it belongs). The answers' shape and rendering are links/show.py's (pure); the click
command (commands/show.py) parses the options, calls `answer` and prints it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.dvc.files import Output
    from repro_hooks.git import Blob, Git
    from repro_hooks.links.show import CommitInfo, RunInfo, Storage
    from repro_hooks.policy.config import Config
    from repro_hooks.tracking.port import RunCandidate, Tracker

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ShowRequest:
    """What `show` was asked: one of `rev`, `run_id` and `model` (none: HEAD's runs)."""

    rev: str | None = None
    run_id: str | None = None
    model: str | None = None
    tracking_uri: str | None = None
    experiments: tuple[str, ...] = ()
    timeout: float | None = None
    fmt: str = "text"


def answer(request: ShowRequest) -> str:
    """The answer, as text for people or JSON for tools (request.fmt)."""
    from repro_hooks.git import Git
    from repro_hooks.policy.config import load_config

    rev, run_id, model, fmt = request.rev, request.run_id, request.model, request.fmt
    if sum(x is not None for x in (rev, run_id, model)) > 1:
        raise ReproHooksError("show: give one of COMMIT, --run and --model")
    git = Git.discover()
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: show needs a work tree of the repository")
    config = load_config(git.root)
    seconds = request.timeout if request.timeout is not None else DEFAULT_TIMEOUT
    uri, safe_uri = _tracking_uri(Path(git.root), request.tracking_uri, config)
    if model is not None:
        return _show_model(git, uri, safe_uri, model, seconds, fmt)
    if run_id is not None:
        return _show_run(git, uri, safe_uri, run_id, seconds, fmt)
    selection = _selection(request.experiments, config)
    return _show_commit(git, uri, safe_uri, rev or "HEAD", selection, seconds, fmt)


# ---- the tracking store, bounded --------------------------------------------------------------


def _tracking_uri(root: Path, option: str | None, config: Config) -> tuple[str, str]:
    from repro_hooks.tracking.mlflow import store_to_open

    return store_to_open(root, option, config.mlflow.tracking_uri, os.environ)


def _selection(experiments: tuple[str, ...], config: Config) -> tuple[str, ...]:
    from repro_hooks.tracking.mlflow import experiment_selection

    return experiment_selection(experiments, config.mlflow.experiments, os.environ)


def _asking(safe_uri: str, seconds: float, what: str) -> contextlib.AbstractContextManager[None]:
    from repro_hooks.links.registry import asking

    return asking(safe_uri, seconds, what, needs="show")


def _store(uri: str) -> Tracker:
    from repro_hooks.tracking.adapters import open_tracker

    return open_tracker(uri)


def _run_info(store: Tracker, run: RunCandidate) -> RunInfo:
    from repro_hooks.links.show import run_info

    return run_info(run, store.experiment_name(run.experiment_id), store.run_inputs(run.run_id))


# ---- the three questions ------------------------------------------------------------------------


def _resolve_commit(git: Git, rev: str) -> str:
    if rev.startswith("-"):
        raise ReproHooksError(f"{rev}: expected a commit")
    sha = git.try_run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if sha:
        return sha.decode().strip()
    lowered = rev.strip().lower()
    if len(lowered) == 40 and all(c in "0123456789abcdef" for c in lowered):
        return lowered  # a commit this clone lacks: its runs can still be listed
    raise ReproHooksError(f"{rev}: no such commit here")


def _commit_info(
    git: Git,
    sha: str,
    run: RunInfo | None,
    run_tags: dict[str, str] | None,
    check_storage: bool = False,
) -> CommitInfo:
    from repro_hooks.links.record import committed_outputs
    from repro_hooks.links.show import commit_info

    present = git.try_run("cat-file", "-e", f"{sha}^{{commit}}") is not None
    if not present:
        return commit_info(sha, False, ())
    outputs, _problems = committed_outputs(git, sha)
    kept = committed_storage(git, sha) if check_storage else None
    return commit_info(sha, True, outputs, run, run_tags, kept)


def _show_commit(
    git: Git,
    uri: str,
    safe_uri: str,
    rev: str,
    selection: tuple[str, ...],
    seconds: float,
    fmt: str,
) -> str:
    from repro_hooks.links.show import render_commit_text, to_json

    sha = _resolve_commit(git, rev)
    with _asking(safe_uri, seconds, f"listing the runs linked to {sha[:12]}"):
        store = _store(uri)
        ids, _notes = store.experiment_ids(selection)
        runs = [_run_info(store, r) for r in store.linked_runs(ids, sha)] if ids else []
    info = _commit_info(git, sha, None, None)
    if fmt == "json":
        return to_json("commit", safe_uri, commit=info, runs=runs)
    return render_commit_text(info, runs)


def _show_run(git: Git, uri: str, safe_uri: str, run_id: str, seconds: float, fmt: str) -> str:
    from repro_hooks.links.show import render_run_text, to_json
    from repro_hooks.tracking.port import StoreError

    with _asking(safe_uri, seconds, f"reading run {run_id}"):
        store = _store(uri)
        try:
            run = store.run(run_id)
        except StoreError as exc:
            raise ReproHooksError(f"{safe_uri}: {exc}") from None
        info = _run_info(store, run)
    commit = _commit_info(git, info.commit, info, dict(run.tags)) if info.commit else None
    if fmt == "json":
        return to_json("run", safe_uri, run=info, commit=commit)
    return render_run_text(info, commit)


def _show_model(git: Git, uri: str, safe_uri: str, text: str, seconds: float, fmt: str) -> str:
    from repro_hooks.deploy.gate import parse_model_uri
    from repro_hooks.links.show import ModelInfo, render_model_text, to_json
    from repro_hooks.tracking.adapters import open_registry

    ref = parse_model_uri(text if text.startswith("models:/") else f"models:/{text}")
    run: RunInfo | None = None
    tags: dict[str, str] = {}
    state = "none"
    with _asking(safe_uri, seconds, f"reading {ref.uri}"):
        registry = open_registry(uri)
        if ref.alias is not None:
            version = registry.by_alias(ref.name, ref.alias, ref.uri)
        else:
            assert ref.version is not None
            version = registry.version(ref.name, ref.version, ref.uri)
        if version.run_id is not None:
            record = registry.run(version.run_id)
            state = {"missing": "not in the tracking store", "deleted": "deleted"}.get(
                record.state, record.state
            )
            if record.state == "active":
                store = _store(uri)
                candidate = store.run(version.run_id)
                tags = dict(candidate.tags)
                run = _run_info(store, candidate)
    info = ModelInfo(version.name, version.version, version.aliases, version.run_id)
    commit = None
    if run is not None and run.commit:
        commit = _commit_info(git, run.commit, run, tags, check_storage=True)
    if fmt == "json":
        return to_json("model", safe_uri, model=info, run=run, commit=commit)
    return render_model_text(info, run, state, commit)


# ---- where each committed output is kept --------------------------------------------------------


def records_output_hashes(path: str) -> bool:
    """A .dvc file or a dvc.lock: the DVC files that record what each output's hash is."""
    from repro_hooks.dvc.names import is_dvc_file

    return is_dvc_file(path) and posixpath.basename(path) != "dvc.yaml"


def committed_storage(git: Git, commit: str) -> dict[str, Storage]:
    """{output path: where it is kept and whether it is there}: a `cache: false` output must be
    in the commit itself (git), never asked of a DVC remote; a pushed output must be in its DVC
    remote (DVC's own remote code, repro_hooks.dvc.remote). A remote that cannot be asked (no
    DVC, no remote configured) leaves the status unknown (null) rather than failing `show`."""
    from repro_hooks.dvc.commits import CommitFiles, may_template
    from repro_hooks.dvc.files import (
        DvcFileError,
        parse_dvc_file,
        parse_dvc_lock,
        parse_dvc_yaml,
    )
    from repro_hooks.dvc.remote import missing_from_remotes, referenced_outputs
    from repro_hooks.links.show import Storage
    from repro_hooks.report import display_path

    blobs = [b for b in git.tree(commit, commit=commit) if not b.is_gitlink]
    by_path = {display_path(b.path): b for b in blobs}
    dvc_blobs = [b for p, b in by_path.items() if records_output_hashes(p)]
    yamls = {
        p: b
        for p, b in by_path.items()
        if posixpath.basename(p) == "dvc.yaml"
        and posixpath.join(posixpath.dirname(p), "dvc.lock") in by_path
    }
    contents = git.read_blobs(b.sha for b in [*dvc_blobs, *yamls.values()])
    # dvc.lock records no `cache:` flag: dvc.yaml does (and each stage's wdir)
    not_cached: set[str] = set()
    wdirs: dict[str, dict[str, str]] = {}
    committed = CommitFiles(git)
    for path, blob in yamls.items():
        content = contents.get(blob.sha)
        if content is None:
            continue
        if may_template(content):
            committed.prefetch([(commit, path, content)])
        load, parsing = committed.sources(commit, path)
        try:
            stages = parse_dvc_yaml(content, path, load, parsing)
        except DvcFileError:
            continue
        wdirs[posixpath.dirname(path)] = {st.name: st.wdir for st in stages.values()}
        not_cached.update(o.path for st in stages.values() for o in st.outs if not o.cache)
    outs: dict[str, Output] = {}
    for blob in dvc_blobs:
        path = display_path(blob.path)
        content = contents.get(blob.sha)
        if content is None:
            continue
        try:
            if posixpath.basename(path) == "dvc.lock":
                lock = parse_dvc_lock(content, path, wdirs.get(posixpath.dirname(path), {}))
                parsed = [o for st in lock.values() for o in st.outs]
            else:
                parsed = parse_dvc_file(content, path).outs
        except DvcFileError:
            continue
        for out in parsed:
            if out.hash_value:
                outs[out.path] = out
    kept: dict[str, Storage] = {}
    in_git = {p: o for p, o in outs.items() if not o.cache or p in not_cached}
    git_contents = git.read_blobs(by_path[p].sha for p in in_git if p in by_path)
    for path, out in in_git.items():
        kept[path] = Storage("git", None, _git_kept_status(path, out, by_path, git_contents))
    referenced = [r for r in referenced_outputs(dvc_blobs, contents) if r.output.path not in in_git]
    pushed = {r.output.path for r in referenced}
    for path in outs:
        if path not in in_git and path not in pushed:
            kept[path] = Storage("none")
    default = _default_remote(Path(git.root)) if git.root else None
    missing: dict[str, tuple[str, bool]] = {}  # path -> (remote, also missing locally)
    unknown: set[str] = set()
    checked = False
    if referenced and git.root is not None:
        try:
            checks = missing_from_remotes(Path(git.root), referenced)
            checked = True
        except ReproHooksError:
            checks = []
        for check in checks:
            for ref in check.missing:
                missing[ref.output.path] = (check.remote, ref in check.not_cached)
            for ref in check.unknown_listing:
                unknown.add(ref.output.path)
    for ref in referenced:
        path = ref.output.path
        remote = ref.output.remote or default
        if not checked:
            kept[path] = Storage("remote", remote, None)
        elif path in missing:
            name, nowhere = missing[path]
            kept[path] = Storage("remote", name, "missing-everywhere" if nowhere else "missing")
        elif path in unknown:
            kept[path] = Storage("remote", remote, "unknown")
        else:
            kept[path] = Storage("remote", remote, "present")
    return kept


def _git_kept_status(
    path: str, out: Output, by_path: dict[str, Blob], contents: dict[str, bytes]
) -> str:
    blob = by_path.get(path)
    if blob is None:
        inside = any(p.startswith(path.rstrip("/") + "/") for p in by_path)
        return "present" if inside and out.is_dir else "missing"
    content = contents.get(blob.sha)
    if content is None or out.algorithm != "md5" or out.is_dir:
        return "present"
    return "present" if hashlib.md5(content).hexdigest() == out.hash_value else "differs"


def _default_remote(root: Path) -> str | None:
    from repro_hooks.dvc.params import config_sections

    texts = []
    for name in ("config", "config.local"):
        try:
            texts.append((root / ".dvc" / name).read_text("utf-8", "replace"))
        except OSError:
            continue
    return config_sections(texts).get("core", {}).get("remote") or None
