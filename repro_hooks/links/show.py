"""`repro-hooks show`'s core: a commit's runs, a run's commit and data, a model version's chain
(version -> run -> commit -> data, and where each DVC object is kept), as plain data rendered as
text for people or JSON for tools. Pure: the command (commands/show.py) gathers the facts.

JSON (`schema` "repro-hooks-show/1"; keys are stable, new keys may be added):
- every answer: `schema`, `kind` ("commit", "run" or "model"), `tracking_uri` (no credentials);
- kind "commit": `commit` (the commit object below), `runs` (run objects, newest first);
- kind "run": `run`, `commit` (null when the run is linked to no commit);
- kind "model": `model` {`name`, `version`, `aliases`, `run_id`}, `run` (null when the version
  has no run or its run is gone), `commit` (null when the run is linked to no commit);
- a run object: `run_id`, `experiment_id`, `experiment`, `status`, `start_time`, `end_time`
  (ms since the epoch, null while running), `commit` and `branch` (its link: `git.commit` and
  `git.branch`, null when unlinked), `stage` (`repro_hooks.stage`, null outside a stage),
  `evidence` (`repro_hooks.link`: stamp, mlflow-source, run-id, forced...), `parent_run_id`,
  `inputs` ([{`path`, `digest`}]: the DVC dataset inputs the link logged);
- a commit object: `sha`, `present` (the commit is in this repository), `data`: one entry per
  DVC output the commit records: `path`, `hash`, `source` (the DVC file), `used` (the run logged
  it as an input; null without a run), `tag` (the run's `dvc.<path>` tag value, null when
  absent), `storage` ("remote": kept in a DVC remote; "git": a `cache: false` output kept in
  git; "none": `push: false` or imported; null: not checked), `remote` (its DVC remote's name),
  `status` ("present", "missing", "missing-everywhere" (nor in the local DVC cache), "unknown"
  (a directory whose listing is nowhere), "differs" (a git-kept output whose committed blob has
  another hash), null: not checked).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from repro_hooks.links.inputs import STAGE_TAG
from repro_hooks.links.record import (
    BRANCH_TAG,
    COMMIT_TAG,
    EVIDENCE_TAG,
    RecordedOutput,
    dvc_tag_key,
)
from repro_hooks.tracking.port import PARENT_RUN_TAG, RunCandidate

SCHEMA = "repro-hooks-show/1"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    experiment: str
    status: str
    start_time: int
    end_time: int | None
    commit: str | None
    branch: str | None
    stage: str | None
    evidence: str | None
    parent_run_id: str | None
    inputs: tuple[tuple[str, str], ...] = ()  # (path, digest)

    def as_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "commit": self.commit,
            "branch": self.branch,
            "stage": self.stage,
            "evidence": self.evidence,
            "parent_run_id": self.parent_run_id,
            "inputs": [{"path": p, "digest": d} for p, d in self.inputs],
        }


def run_info(
    run: RunCandidate, experiment: str, inputs: Sequence[tuple[str, str, str]] = ()
) -> RunInfo:
    """A run as `show` presents it: `inputs` as the store lists them (name, digest, source)."""
    tags = run.tags
    return RunInfo(
        run_id=run.run_id,
        experiment_id=run.experiment_id,
        experiment=experiment,
        status=run.status,
        start_time=run.start_time,
        end_time=run.end_time,
        commit=tags.get(COMMIT_TAG) or None,
        branch=tags.get(BRANCH_TAG) or None,
        stage=tags.get(STAGE_TAG) or None,
        evidence=tags.get(EVIDENCE_TAG) or None,
        parent_run_id=tags.get(PARENT_RUN_TAG) or None,
        inputs=tuple((name, digest) for name, digest, _ in inputs),
    )


@dataclass(frozen=True)
class Storage:
    """Where one committed output is kept, and whether it is there."""

    storage: str | None = None  # remote, git, none
    remote: str | None = None
    status: str | None = None  # present, missing, missing-everywhere, unknown, differs


@dataclass(frozen=True)
class DataRow:
    path: str
    hash: str
    source: str
    used: bool | None = None
    tag: str | None = None
    kept: Storage = field(default_factory=Storage)

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "hash": self.hash,
            "source": self.source,
            "used": self.used,
            "tag": self.tag,
            "storage": self.kept.storage,
            "remote": self.kept.remote,
            "status": self.kept.status,
        }


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    present: bool
    data: tuple[DataRow, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {"sha": self.sha, "present": self.present, "data": [r.as_json() for r in self.data]}


def commit_info(
    sha: str,
    present: bool,
    outputs: Sequence[RecordedOutput],
    run: RunInfo | None = None,
    run_tags: Mapping[str, str] | None = None,
    kept: Mapping[str, Storage] | None = None,
) -> CommitInfo:
    """The commit's data, each output against the run's link (its tag, whether it is an input)
    and where it is kept (`kept`, by path) when that was checked."""
    used = {p for p, _ in run.inputs} if run is not None else set()
    rows = []
    for out in sorted(outputs, key=lambda o: o.path):
        rows.append(
            DataRow(
                out.path,
                out.hash_value,
                out.source,
                used=(out.path in used) if run is not None else None,
                tag=(run_tags or {}).get(dvc_tag_key(out.path)) if run_tags is not None else None,
                kept=(kept or {}).get(out.path, Storage()),
            )
        )
    return CommitInfo(sha, present, tuple(rows))


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
        }


# ---- rendering --------------------------------------------------------------------------------


def to_json(kind: str, tracking_uri: str, **parts: object) -> str:
    body: dict[str, object] = {"schema": SCHEMA, "kind": kind, "tracking_uri": tracking_uri}
    for key, value in parts.items():
        if isinstance(value, (RunInfo, CommitInfo, ModelInfo)):
            body[key] = value.as_json()
        elif isinstance(value, (list, tuple)):
            body[key] = [v.as_json() if isinstance(v, RunInfo) else v for v in value]
        else:
            body[key] = value
    return json.dumps(body, indent=2, sort_keys=True)


def _short(value: str | None, n: int = 12) -> str:
    return value[:n] if value else "-"


def run_lines(run: RunInfo, indent: str = "") -> list[str]:
    what = [f"experiment {run.experiment or run.experiment_id!r}", run.status or "unknown status"]
    if run.stage:
        what.append(f"stage {run.stage}")
    what.append(f"evidence {run.evidence or 'none'}")
    if run.parent_run_id:
        what.append(f"nested in {run.parent_run_id}")
    lines = [f"{indent}run {run.run_id}: " + ", ".join(what)]
    if run.inputs:
        shown = ", ".join(f"{p} ({_short(d)})" for p, d in run.inputs)
        lines.append(f"{indent}  inputs: {shown}")
    else:
        lines.append(f"{indent}  inputs: none logged")
    return lines


def _data_line(row: DataRow, indent: str) -> str:
    notes = []
    if row.used is not None:
        notes.append("input" if row.used else "not an input")
    if row.tag is not None and row.tag != row.hash:
        notes.append(f"the run's tag says {_short(row.tag)}")
    kept = row.kept
    if kept.storage == "remote":
        where = f"DVC remote {kept.remote!r}" if kept.remote else "its DVC remote"
        notes.append(
            {
                "present": f"in {where}",
                "missing": f"NOT in {where}",
                "missing-everywhere": f"NOT in {where}, nor in the local DVC cache",
                "unknown": f"directory listing in neither the local cache nor {where}",
            }.get(kept.status or "", f"{where}: not checked")
        )
    elif kept.storage == "git":
        notes.append(
            {
                "present": "in git (cache: false)",
                "differs": "in git, but the committed file has another hash",
                "missing": "NOT in the commit (cache: false: it belongs in git)",
            }.get(kept.status or "", "in git")
        )
    elif kept.storage == "none":
        notes.append("not pushed by DVC (push: false, or imported)")
    tail = f" [{'; '.join(notes)}]" if notes else ""
    return f"{indent}{row.path}: {_short(row.hash)} ({row.source}){tail}"


def commit_lines(info: CommitInfo, indent: str = "") -> list[str]:
    if not info.present:
        return [f"{indent}commit {info.sha}: not in this repository (fetch it to see its data)"]
    lines = [f"{indent}commit {info.sha}"]
    if not info.data:
        lines.append(f"{indent}  data: none recorded by DVC")
        return lines
    lines.append(f"{indent}  data:")
    for row in info.data:
        lines.append(_data_line(row, indent + "    "))
    return lines


def render_commit_text(commit: CommitInfo, runs: Sequence[RunInfo]) -> str:
    lines = commit_lines(commit)
    if not runs:
        lines.append("  runs: none linked")
        return "\n".join(lines)
    lines.append("  runs:")
    for run in runs:
        lines.extend(run_lines(run, "    "))
    return "\n".join(lines)


def render_run_text(run: RunInfo, commit: CommitInfo | None) -> str:
    lines = run_lines(run)
    if commit is None:
        lines.append("  commit: none linked")
    else:
        lines.extend(commit_lines(commit, "  "))
    return "\n".join(lines)


def render_model_text(
    model: ModelInfo, run: RunInfo | None, run_state: str, commit: CommitInfo | None
) -> str:
    aliases = f" (aliases: {', '.join(model.aliases)})" if model.aliases else ""
    lines = [f"{model.uri}{aliases}"]
    if model.run_id is None:
        lines.append("  run: none (registered without a run)")
        return "\n".join(lines)
    if run is None:
        lines.append(f"  run {model.run_id}: {run_state}")
        return "\n".join(lines)
    lines.extend(run_lines(run, "  "))
    if commit is None:
        lines.append("    commit: none linked")
    else:
        lines.extend(commit_lines(commit, "    "))
    return "\n".join(lines)
