"""The link rules: which run a commit links to (`choose_runs`) and the verdicts that judge one
run against a commit (status, code, data, stage, stamp, and the unstamped fallback).

Pure: plain data in, a verdict out (None: the run qualifies; else why not). The facts come from
links/linker.py's Evidence; the tracker's runs from tracking/port.py's RunCandidate.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro_hooks.links.record import RecordedOutput
from repro_hooks.tracking.credentials import strip_credentials
from repro_hooks.tracking.port import SOURCE_NAME_TAG, SOURCE_URL_TAG, USER_TAG, RunCandidate

if TYPE_CHECKING:
    from repro_hooks.dvc.files import LockStage

END_SLACK_S = 60.0  # an end state taken later than this after the run ended is not used


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
