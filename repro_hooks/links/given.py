"""`tag-mlflow --run-id`: link one named run to a commit, in the foreground, under the same
evidence rules as an automatic link (the linker's judge). `--force` links a run the rules refuse,
and the link says so: `repro_hooks.link=forced`, who forced it and what the rules said.
`check-model` fails such a link unless told `--allow-forced` (deploy/gate.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from repro_hooks.git import Git
from repro_hooks.links.queue import Job
from repro_hooks.links.record import EVIDENCE_TAG
from repro_hooks.links.rules import Judge
from repro_hooks.tracking.port import RunCandidate, Tracker

FORCED = "forced"  # repro_hooks.link value of a link made against the rules
FORCED_BY_TAG = "repro_hooks.link.forced_by"  # `Name <email>` of whoever forced it
FORCED_REASON_TAG = "repro_hooks.link.forced_reason"  # what the rules said
# check-model (deploy/gate.py) also treats "run-id" (what --run-id wrote before the rules
# applied to it) and a link without repro_hooks.link (written by hand) as unverified
ENDED_BADLY = ("FAILED", "KILLED")
MAX_REASON = 500


@dataclass(frozen=True)
class GivenRunResult:
    linked: bool
    line: str


def refusal(run: RunCandidate, judge: Judge) -> str | None:
    """Why the evidence rules refuse to link `run` to the commit; None when they accept it. A
    run that failed or was killed made nothing worth linking, whatever its code and data."""
    status = (run.status or "").upper()
    if status in ENDED_BADLY:
        return f"the run ended {status}"
    why_not: str | None = judge(run)
    return why_not


def forcer(git: Git) -> str:
    """Who forces the link: git's committer identity here (`Name <email>`), else the login."""
    ident = git.try_run("var", "GIT_COMMITTER_IDENT")
    if ident:
        text = ident.decode("utf-8", "replace").strip()
        name, sep, _ = text.rpartition(">")
        if sep:
            return name + ">"
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name for this uid
        return "unknown"


def link_given_run(job: Job, git: Git, store: Tracker, *, force: bool = False) -> GivenRunResult:
    """Judge the job's run for the job's commit with the linker's rules; link it when they
    accept it, or when `force` (then mark the link forced). Nothing is written on a refusal."""
    from repro_hooks.links.linker import Evidence, _write_with_children
    from repro_hooks.tracking.port import StoreError

    assert job.commit is not None
    assert job.run_id is not None
    short = job.commit[:12]
    try:
        run = store.run(job.run_id)
    except StoreError as exc:
        return GivenRunResult(False, f"{short}: nothing linked: {exc}")
    evidence = Evidence(git, job, job.commit, store)
    why_not = refusal(run, evidence.judge)
    if why_not is not None and not force:
        return GivenRunResult(
            False,
            f"{short}: run {run.run_id} not linked: {why_not} (the commit does not record what "
            "the run used; --force links it anyway and marks the link forced, which "
            "check-model refuses without --allow-forced)",
        )
    kind = FORCED if why_not is not None else evidence.evidence_kind(run)
    detail = _write_with_children(store, git, run, job.commit, job.branch, kind)
    if why_not is None:
        if store.tags(run.run_id).keys() & {FORCED_BY_TAG, FORCED_REASON_TAG}:
            # an earlier forced link's marks
            store.delete_tags(run.run_id, (FORCED_BY_TAG, FORCED_REASON_TAG))
        return GivenRunResult(
            True,
            f"{short}: linked to run {run.run_id} (experiment {run.experiment_id}; "
            f"{EVIDENCE_TAG}={kind}): {detail}",
        )
    reason = why_not if len(why_not) <= MAX_REASON else why_not[: MAX_REASON - 3] + "..."
    who = forcer(git)
    for run_id in [run.run_id, *(c.run_id for c in store.children(run))]:
        store.set_tags(run_id, {FORCED_BY_TAG: who, FORCED_REASON_TAG: reason})
    return GivenRunResult(
        True,
        f"{short}: FORCED link to run {run.run_id} (experiment {run.experiment_id}) by {who}, "
        f"against the rules: {why_not}: {detail}",
    )
