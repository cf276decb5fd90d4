"""Which run a commit links to, and writing the link: the body of one delivery job.

Plain functions over a `Git` and an `MlflowStore` (or anything with its methods), so the queue
and its deadlines (links.delivery) stay separate from the choice (links.core) and the writing.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from repro_hooks.git import Git
from repro_hooks.links.core import (
    BRANCH_TAG,
    COMMIT_TAG,
    DVC_PREFIX,
    EVIDENCE_TAG,
    SOURCE_COMMIT_TAG,
    RecordedOutput,
    RunCandidate,
    RunChoice,
    choose_runs,
    code_changes,
    commit_record,
    committed_outputs,
    fallback_verdict,
    first_remote_url,
    stamp_verdict,
)
from repro_hooks.links.inputs import (
    SHORT_COMMIT_TAG,
    STAGE_TAG,
    inputs_of_run,
    owns_short_commit,
    short_commit,
    stage_deps_of,
)
from repro_hooks.links.queue import Job
from repro_hooks.links.registry import propagation_note
from repro_hooks.links.stamp import CLONE_TAG, STAMP_TAG, load_record, read_clone_id

_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")


class Ancestry:
    """`git merge-base --is-ancestor` answers for one commit, cached per SHA."""

    def __init__(self, git: Git, commit: str) -> None:
        self.git = git
        self.commit = commit
        self.cache: dict[str, bool] = {}

    def prefetch(self, shas: Iterable[str | None]) -> None:
        """One `git cat-file --batch-check` for a page of SHAs: those that are no commit here
        (runs from other repositories, the common case) are answered without merge-base."""
        todo = [
            s.strip().lower() for s in shas
            if s and _SHA_RE.match(s.strip().lower()) and s.strip().lower() not in self.cache
        ]  # fmt: skip
        if not todo:
            return
        info = self.git.object_info(todo)
        for sha in todo:
            found = info.get(sha)
            if found is None or found.type != "commit":
                self.cache[sha] = False

    def candidates(self, runs: Iterable[RunCandidate], page: int = 50) -> Iterator[RunCandidate]:
        """Pass runs through, prefetching each page's commits in one git process."""
        batch: list[RunCandidate] = []
        for run in runs:
            batch.append(run)
            if len(batch) >= page:
                self.prefetch(s for r in batch for s in (r.linked_commit, r.source_commit))
                yield from batch
                batch = []
        self.prefetch(s for r in batch for s in (r.linked_commit, r.source_commit))
        yield from batch

    def __call__(self, sha: str) -> bool:
        sha = sha.strip().lower()
        if not _SHA_RE.match(sha):
            return False
        if sha not in self.cache:
            self.cache[sha] = (
                self.git.try_run("merge-base", "--is-ancestor", sha, self.commit) is not None
            )
        return self.cache[sha]


class Evidence:
    """What the rules need to judge runs for one commit, asked of git once and cached."""

    def __init__(self, git: Git, job: Job, commit: str) -> None:
        self.git = git
        self.job = job
        self.commit = commit
        self.common_dir = str(git.common_dir)
        self.clone = read_clone_id(self.common_dir)
        self._outputs: list[RecordedOutput] | None = None
        self._diffs: dict[str, dict[str, str | None] | None] = {}
        self._data: dict[str, dict[str, str]] = {}
        self._parents: list[str] | None = None
        self._repo_url: str | None = None
        self._user: str | None = None

    @property
    def parents(self) -> list[str]:
        if self._parents is None:
            out = self.git.try_run("rev-parse", f"{self.commit}^@")
            self._parents = out.decode().split() if out else []
        return self._parents

    @property
    def outputs(self) -> list[RecordedOutput]:
        if self._outputs is None:
            self._outputs = committed_outputs(self.git, self.commit)[0]
        return self._outputs

    def code_diff(self, base: str | None) -> dict[str, str | None] | None:
        """Code paths where the commit differs from `base`; None if `base` is unknown here."""
        if not base or not _SHA_RE.match(base):
            return None
        if base not in self._diffs:
            raw = self.git.try_run(
                "diff", "--raw", "-z", "--no-renames", "--no-abbrev", base, self.commit, "--"
            )
            self._diffs[base] = None if raw is None else code_changes(raw)
        return self._diffs[base]

    def recorded_data(self, commit: str) -> dict[str, str]:
        if commit not in self._data:
            self._data[commit] = {
                o.path: o.hash_value for o in committed_outputs(self.git, commit)[0]
            }
        return self._data[commit]

    def user(self) -> str | None:
        if self._user is None:
            import getpass

            try:
                self._user = getpass.getuser()
            except Exception:  # no user name for this uid: nothing is proven
                self._user = ""
        return self._user or None

    def judge(self, run: RunCandidate) -> str | None:
        if run.tags.get(CLONE_TAG):
            if run.tags[CLONE_TAG] != self.clone:
                return "stamped in another clone"
            record = load_record(self.common_dir, run.tags.get(STAMP_TAG, ""))
            head = record.get("head") if record else None
            return stamp_verdict(
                run, record, self.job.root,
                self.code_diff(head if isinstance(head, str) else None), self.outputs,
            )  # fmt: skip
        if self._repo_url is None:
            self._repo_url = first_remote_url(self.git) or ""
        source = run.source_commit
        same_data = bool(source) and self.recorded_data(source or "") == {
            o.path: o.hash_value for o in self.outputs
        }
        return fallback_verdict(
            run, commit=self.commit, parents=self.parents, user=self.user(), root=self.job.root,
            repo_url=self._repo_url or None,
            changed_by_commit=self.code_diff(source) if source else None, same_data=same_data,
        )  # fmt: skip

    def evidence_kind(self, run: RunCandidate) -> str:
        return "stamp" if run.tags.get(CLONE_TAG) else "mlflow-source"


def _newest_first(*streams: Iterable[RunCandidate]) -> Iterator[RunCandidate]:
    seen: set[str] = set()
    for run in heapq.merge(*streams, key=lambda r: -r.start_time):
        if run.run_id not in seen:
            seen.add(run.run_id)
            yield run


def write_link(
    store: Any, git: Git, run_id: str, commit: str, branch: str | None, evidence: str = ""
) -> str:
    """Write (or overwrite) the link of one run to `commit`; a line saying what was written.
    Without a branch (a detached HEAD) an existing git.branch is kept."""
    record = commit_record(git, commit, branch)
    tags = record.tags()
    if evidence:
        tags[EVIDENCE_TAG] = evidence
    existing = store.tags(run_id)
    if owns_short_commit(existing):  # the commit at a glance (a user's own `commit` tag stays)
        tags[SHORT_COMMIT_TAG] = short_commit(commit, branch or existing.get(BRANCH_TAG))
    delete: list[str] = []
    if COMMIT_TAG in existing:  # our earlier link: drop our keys the new commit lacks
        delete = [
            k for k in existing
            if (k.startswith(DVC_PREFIX) or (k == BRANCH_TAG and branch)) and k not in tags
        ]  # fmt: skip
    inputs = _run_inputs(git, existing, commit, record.outputs)
    store.write_link(run_id, tags, inputs, delete, record.repo_url)
    note = "".join(f"; {p}" for p in record.problems)
    # the link follows the run's models into the registry (a detached HEAD keeps the branch)
    carried = dict(tags)
    if BRANCH_TAG not in carried and BRANCH_TAG in existing:
        carried[BRANCH_TAG] = existing[BRANCH_TAG]
    note += propagation_note(store.client, run_id, carried)
    return f"{len(record.outputs)} DVC output(s){note}"


def _run_inputs(
    git: Git, tags: Mapping[str, str], commit: str, outputs: Sequence[RecordedOutput]
) -> list[RecordedOutput]:
    """The committed data the run used (links.inputs): its dataset inputs on the run page."""
    address = tags.get(STAGE_TAG)
    deps = stage_deps_of(git, commit, address) if address else None
    record = None
    common_dir = str(git.common_dir)
    clone = tags.get(CLONE_TAG)
    if clone and clone == read_clone_id(common_dir):
        record = load_record(common_dir, tags.get(STAMP_TAG, ""))
    return inputs_of_run(outputs, tags, record, deps)


def _write_with_children(
    store: Any, git: Git, run: RunCandidate, commit: str, branch: str | None, evidence: str
) -> str:
    detail = write_link(store, git, run.run_id, commit, branch, evidence)
    children = store.children(run)
    for child in children:
        write_link(store, git, child.run_id, commit, branch, evidence)
    nested = f"; {len(children)} nested run(s) carry the same link" if children else ""
    return detail + nested


def _passed(choice: RunChoice, limit: int = 3) -> str:
    if not choice.passed_over:
        return ""
    shown = "; ".join(choice.passed_over[:limit])
    more = len(choice.passed_over) - limit
    return f" (passed over: {shown}{f'; and {more} more' if more > 0 else ''})"


def link_commit(job: Job, git: Git, store: Any) -> str:
    """A "link" job: choose the commit's run(s) and write the link; one line for the log."""
    from repro_hooks.links.store import StoreError, tag_equals

    assert job.commit is not None
    short = job.commit[:12]
    if git.try_run("cat-file", "-e", f"{job.commit}^{{commit}}") is None:
        return f"{short}: nothing linked: the commit no longer exists"
    if job.run_id:
        try:
            run = store.run(job.run_id)
        except StoreError as exc:
            return f"{short}: nothing linked: {exc}"
        detail = _write_with_children(store, git, run, job.commit, job.branch, "run-id")
        return f"{short}: linked to run {run.run_id} (experiment {run.experiment_id}): {detail}"
    ids, notes = store.experiment_ids(job.experiments)
    if not ids:
        why = "; ".join(notes) or "the tracking store has no experiment"
        return f"{short}: nothing linked: {why}"
    evidence = Evidence(git, job, job.commit)
    streams = []
    if evidence.clone:
        streams.append(store.candidates(ids, job.before_ms, tag_equals(CLONE_TAG, evidence.clone)))
    for parent in evidence.parents:  # unstamped runs: only those started from a parent
        streams.append(store.candidates(ids, job.before_ms, tag_equals(SOURCE_COMMIT_TAG, parent)))
    ancestry = Ancestry(git, job.commit)
    policy = str(job.extra.get("link") or "latest")
    choice = choose_runs(
        ancestry.candidates(_newest_first(*streams)), job.commit, ancestry, evidence.judge, policy
    )
    if not choice.runs:
        return f"{short}: nothing linked: {choice.reason}{_passed(choice)}"
    lines = []
    for run in choice.runs:
        detail = _write_with_children(
            store, git, run, job.commit, job.branch, evidence.evidence_kind(run)
        )
        lines.append(f"linked to run {run.run_id} (experiment {run.experiment_id}): {detail}")
    return f"{short}: " + "; ".join(lines)


def relink_commit(job: Job, git: Git, store: Any) -> str:
    """A "relink" job: move links from rewritten commits to their new commits, but only where
    the new commit records the code and data the run saw; otherwise the run keeps its link."""
    ids, _ = store.experiment_ids(job.experiments)
    lines = []
    for old, new in job.pairs:
        if old == new or not ids:
            continue
        linked = [store.run(r) for r in store.runs_linked_to(ids, old)]
        moved: set[str] = set()
        evidence = Evidence(git, job, new)
        for run in sorted(linked, key=lambda r: r.parent_run_id is not None):
            if run.parent_run_id in moved:
                moved.add(run.run_id)  # carried by its parent's link (written with it)
                continue
            if run.parent_run_id and any(r.run_id == run.parent_run_id for r in linked):
                continue  # its parent stays: so does it
            why_not = evidence.judge(run) if run.tags.get(EVIDENCE_TAG) != "run-id" else None
            if why_not is not None:
                lines.append(
                    f"{old[:12]} -> {new[:12]}: run {run.run_id} keeps its link: {why_not}"
                )
                continue
            kind = run.tags.get(EVIDENCE_TAG) or evidence.evidence_kind(run)
            detail = _write_with_children(store, git, run, new, job.branch, kind)
            moved.add(run.run_id)
            lines.append(f"{old[:12]} -> {new[:12]}: run {run.run_id} relinked: {detail}")
    return "; ".join(lines) or f"{job.describe()}: no linked run to move"
