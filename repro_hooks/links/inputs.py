"""What a run used: the DVC data a link logs as the run's dataset inputs.

A link records everything the commit records as `dvc.*` tags (the deploy gate compares them
whole), but the run page's "Datasets used" must list only the data the run *read*, never what
it made (a notebook run must not show another stage's `model.pkl` as a dataset it used):

- a stage run (`repro_hooks.stage`, from DVC_STAGE): the data among its stage's deps, as the
  commit's dvc.lock records them;
- any other stamped run: each output the commit records that the run did not write (the stamp's
  audit record), that it saw at its start exactly as the commit records it (or, for data that
  became a DVC output only after the run, `dvc add` after training, at its end), and that did not
  change while it ran; when the stamp knows which files the run opened for reading, only those;
- a run without a local stamp record (unstamped, or stamped in another clone): every output the
  commit records (nothing better is known).

Pure, but for `committed_lock_stage`, which reads one commit's dvc.lock through git.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from repro_hooks.links.record import RecordedOutput

if TYPE_CHECKING:
    from repro_hooks.dvc.files import LockStage
    from repro_hooks.git import Git

STAGE_TAG = "repro_hooks.stage"  # the stage address a stage run ran as (DVC_STAGE): read here
SHORT_COMMIT_TAG = "commit"  # the commit at a glance on the run page: "<12 hex> (<branch>)"
SHORT_SHA = 12


def stage_address(address: str) -> tuple[str, str]:
    """(dvc.yaml path, stage name) of a stage address as DVC writes it in DVC_STAGE:
    `train` -> (dvc.yaml, train), `sub/dvc.yaml:train` -> (sub/dvc.yaml, train), `prep@a` ->
    (dvc.yaml, prep@a)."""
    file, colon, name = address.rpartition(":")
    if not colon:
        return "dvc.yaml", address
    file = posixpath.normpath(file.replace("\\", "/"))
    return ("dvc.yaml" if file in ("", ".") else file), name


def _covers(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def _touched(path: str, paths: Collection[str]) -> bool:
    """Whether any of `paths` is `path` or a file inside it (a directory output)."""
    return path in paths or any(_covers(path, p) for p in paths)


def stage_inputs(
    deps: Iterable[RecordedOutput], outputs: Sequence[RecordedOutput]
) -> list[RecordedOutput]:
    """A stage's data deps: the deps a DVC output of the commit covers, is, or lies inside
    (code and params files are deps too, but they are code)."""
    found = []
    for dep in deps:
        if any(_covers(o.path, dep.path) or _covers(dep.path, o.path) for o in outputs):
            found.append(dep)
    return sorted(found, key=lambda d: d.path)


def run_inputs(
    outputs: Sequence[RecordedOutput],
    *,
    start: Mapping[str, str] | None = None,
    end: Mapping[str, str] | None = None,
    written: Collection[str] | None = None,
    read: Collection[str] | None = None,
) -> list[RecordedOutput]:
    """The outputs a run outside any stage used (see the module docstring). Without a stamp
    record (`start` None) every output counts."""
    found = []
    for out in outputs:
        if written is not None and _touched(out.path, written):
            continue  # it made it
        if read is not None and not _touched(out.path, read):
            continue  # it never opened it
        if start is not None:
            at_start = start.get(out.path)
            at_end = end.get(out.path) if end is not None else None
            if at_start is None:
                # no DVC output yet when the run started (`dvc add` after training): there at
                # the end as the commit records it, and not written by the run (`written`)
                if end is not None and at_end != out.hash_value:
                    continue
            elif at_start != out.hash_value:
                continue  # not what it read: it made it, or it read another version
            elif at_end and at_end != at_start:
                continue  # changed while it ran: written, by it or beside it
        found.append(out)
    return found


def _paths(value: object) -> list[str] | None:
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        return list(value)
    if isinstance(value, dict) and all(isinstance(p, str) for p in value):
        return list(value)
    return None


def inputs_of_run(
    outputs: Sequence[RecordedOutput],
    tags: Mapping[str, str],
    record: Mapping[str, Any] | None,
    stage_deps: Sequence[RecordedOutput] | None,
) -> list[RecordedOutput]:
    """The dataset inputs a link logs for a run: its stage's data deps when it is a stage run
    whose stage the commit's dvc.lock records (`stage_deps`), else `run_inputs` over its local
    stamp record (`record`, as links.stamp.load_record returns it), else every output."""
    if tags.get(STAGE_TAG) and stage_deps is not None:
        return stage_inputs(stage_deps, outputs)
    if record is None:
        return list(outputs)
    start = record.get("start")
    end = record.get("end")
    return run_inputs(
        outputs,
        start=start if isinstance(start, dict) else {},
        end=end if isinstance(end, dict) else None,
        written=_paths(record.get("written")),
        read=_paths(record.get("read")),
    )


def committed_lock_stage(git: Git, commit: str, address: str) -> LockStage | None:
    """The stage `address` as the commit's dvc.lock records it (paths resolved against the
    stage's wdir from the commit's dvc.yaml), or None when the commit does not record it."""
    from repro_hooks.dvc.commits import CommitFiles, may_template
    from repro_hooks.dvc.files import DvcFileError, parse_dvc_lock, parse_dvc_yaml

    yaml_path, name = stage_address(address)
    if yaml_path.startswith(("../", "/")):
        return None
    lock_path = posixpath.join(posixpath.dirname(yaml_path), "dvc.lock")
    lock, yaml = git.read_objects([f"{commit}:{lock_path}", f"{commit}:{yaml_path}"])
    if lock is None:
        return None
    wdirs: dict[str, str] = {}
    if yaml is not None:
        committed = CommitFiles(git)
        if may_template(yaml):
            committed.prefetch([(commit, yaml_path, yaml)])
        load, parsing = committed.sources(commit, yaml_path)
        try:
            wdirs = {
                s.name: s.wdir for s in parse_dvc_yaml(yaml, yaml_path, load, parsing).values()
            }
        except DvcFileError:
            wdirs = {}
    try:
        return parse_dvc_lock(lock, lock_path, wdirs).get(name)
    except DvcFileError:
        return None


def stage_deps_of(git: Git, commit: str, address: str) -> list[RecordedOutput] | None:
    """The deps (with their recorded hashes) of a stage as the commit's dvc.lock has them."""
    stage = committed_lock_stage(git, commit, address)
    if stage is None:
        return None
    yaml_path, _ = stage_address(address)
    source = posixpath.join(posixpath.dirname(yaml_path), "dvc.lock")
    return [
        RecordedOutput(d.path, d.hash_value, d.source or source) for d in stage.deps if d.hash_value
    ]


def short_commit(commit: str, branch: str | None) -> str:
    """The value of the at-a-glance tag: `<12 hex>` and the branch in parentheses."""
    return commit[:SHORT_SHA] + (f" ({branch})" if branch else "")


def owns_short_commit(existing: Mapping[str, str]) -> bool:
    """Whether the run's `commit` tag may be written: absent, or one this tool wrote (it starts
    with the short form of the run's current `git.commit`). A user's own `commit` tag stays."""
    from repro_hooks.links.record import COMMIT_TAG

    value = existing.get(SHORT_COMMIT_TAG)
    if value is None:
        return True
    linked = existing.get(COMMIT_TAG, "")
    return bool(linked) and value.split(" ", 1)[0] == linked[:SHORT_SHA]
