"""Which run a commit links to, and writing the link: the body of one delivery job.

Plain functions over a `Git` and an `MlflowStore` (or anything with its methods), so the queue
and its deadlines (links.delivery) stay separate from the choice (links.core) and the writing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from repro_hooks.git import Git
from repro_hooks.links.core import (
    BRANCH_TAG,
    COMMIT_TAG,
    DVC_PREFIX,
    RunCandidate,
    choose_run,
    commit_record,
)
from repro_hooks.links.queue import Job

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


def write_link(store: Any, git: Git, run_id: str, commit: str, branch: str | None) -> str:
    """Write (or overwrite) the link of one run to `commit`; a line saying what was written."""
    record = commit_record(git, commit, branch)
    tags = record.tags()
    existing = store.tags(run_id)
    delete: list[str] = []
    if COMMIT_TAG in existing:  # our earlier link: drop our keys the new commit lacks
        delete = [
            k for k in existing
            if (k.startswith(DVC_PREFIX) or k == BRANCH_TAG) and k not in tags
        ]  # fmt: skip
    store.write_link(run_id, tags, record.outputs, delete, record.repo_url)
    note = "".join(f"; {p}" for p in record.problems)
    return f"{len(record.outputs)} DVC output(s){note}"


def link_commit(job: Job, git: Git, store: Any) -> str:
    """A "link" job: choose the commit's run and write the link; one line for the log."""
    from repro_hooks.links.store import StoreError

    assert job.commit is not None
    short = job.commit[:12]
    if git.try_run("cat-file", "-e", f"{job.commit}^{{commit}}") is None:
        return f"{short}: nothing linked: the commit no longer exists"
    if job.run_id:
        try:
            run = store.run(job.run_id)
        except StoreError as exc:
            return f"{short}: nothing linked: {exc}"
    else:
        ids, notes = store.experiment_ids(job.experiments)
        if not ids:
            why = "; ".join(notes) or "the tracking store has no experiment"
            return f"{short}: nothing linked: {why}"
        ancestry = Ancestry(git, job.commit)
        choice = choose_run(
            ancestry.candidates(store.candidates(ids, job.before_ms)), job.commit, ancestry
        )
        if choice.run is None:
            return f"{short}: nothing linked: {choice.reason}"
        run = choice.run
    detail = write_link(store, git, run.run_id, job.commit, job.branch)
    return f"{short}: linked to run {run.run_id} (experiment {run.experiment_id}): {detail}"


def relink_commit(job: Job, git: Git, store: Any) -> str:
    """A "relink" job: move links from rewritten commits to their new commits."""
    ids, _ = store.experiment_ids(job.experiments)
    lines = []
    for old, new in job.pairs:
        if old == new:
            continue
        for run_id in store.runs_linked_to(ids, old) if ids else []:
            detail = write_link(store, git, run_id, new, job.branch)
            lines.append(f"{old[:12]} -> {new[:12]}: run {run_id} relinked: {detail}")
    return "; ".join(lines) or f"{job.describe()}: no linked run to move"
