"""Which run a commit links to, and writing the link: the body of one delivery job.

Plain functions over a `Git` and a `Tracker` (tracking/port.py), so the queue and its deadlines
(links.delivery) stay separate from the choice (links.rules) and the writing.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from repro_hooks.git import Git
from repro_hooks.links.inputs import (
    SHORT_COMMIT_TAG,
    STAGE_TAG,
    inputs_of_run,
    owns_short_commit,
    short_commit,
    stage_deps_of,
)
from repro_hooks.links.queue import Job
from repro_hooks.links.record import (
    BRANCH_TAG,
    COMMIT_TAG,
    DVC_PREFIX,
    EVIDENCE_TAG,
    CommitRecord,
    RecordedOutput,
    code_change_pairs,
    commit_record,
    committed_outputs,
    first_remote_url,
)
from repro_hooks.links.registry import propagation_note
from repro_hooks.links.rules import (
    RunChoice,
    choose_runs,
    fallback_verdict,
    not_code,
    stamp_verdict,
    status_verdict,
)
from repro_hooks.links.stamp import CLONE_TAG, STAMP_TAG, load_record, read_clone_id
from repro_hooks.tracking.port import SOURCE_COMMIT_TAG, RunCandidate

if TYPE_CHECKING:
    from repro_hooks.dvc.files import LockStage
    from repro_hooks.tracking.port import Tracker

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
            s.strip().lower()
            for s in shas
            if s and _SHA_RE.match(s.strip().lower()) and s.strip().lower() not in self.cache
        ]
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


EMPTY_TREES = {
    40: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    64: "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}


class Evidence:
    """What the rules need to judge runs for one commit, asked of git once and cached.

    `judge(run)` is the whole rule set for one run against this commit (None: it qualifies,
    else why not): a FAILED/KILLED run never; a stage run by its stage (rules.stage_verdict);
    another stamped run by the code and data rules; an unstamped run by what MLflow proves.
    `tag-mlflow --run-id` calls it too (links/given.py)."""

    def __init__(self, git: Git, job: Job, commit: str, store: Tracker | None = None) -> None:
        self.git = git
        self.job = job
        self.commit = commit
        self.store = store  # asked which runs carry a stamp (a copied stamp never qualifies)
        self._holders: dict[str, list[str] | None] = {}
        self.common_dir = str(git.common_dir)
        self.clone = read_clone_id(self.common_dir)
        self._outputs: list[RecordedOutput] | None = None
        self._diffs: dict[str, dict[str, tuple[str | None, str | None]] | None] = {}
        self._data: dict[str, dict[str, str]] = {}
        self._parents: list[str] | None = None
        self._repo_url: str | None = None
        self._user: str | None = None
        self._ignore: tuple[str, ...] | None = None
        self._locks: dict[str, LockStage | None] = {}

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

    @property
    def ignore(self) -> tuple[str, ...]:
        """The `link-ignore` globs of the work tree's configuration (defaults if unreadable)."""
        if self._ignore is None:
            from pathlib import Path

            from repro_hooks.errors import ReproHooksError
            from repro_hooks.policy.config import DEFAULT_LINK_IGNORE, load_config

            try:
                self._ignore = load_config(Path(self.job.root), None).mlflow.link_ignore
            except (ReproHooksError, OSError):
                self._ignore = DEFAULT_LINK_IGNORE
        return self._ignore

    def _pairs(self, base: str | None) -> dict[str, tuple[str | None, str | None]] | None:
        if base is None:  # the run started before the first commit: from the empty tree
            base = EMPTY_TREES.get(len(self.commit), EMPTY_TREES[40])
        if not _SHA_RE.match(base):
            return None
        if base not in self._diffs:
            raw = self.git.try_run(
                "diff", "--raw", "-z", "--no-renames", "--no-abbrev", base, self.commit, "--"
            )
            self._diffs[base] = None if raw is None else code_change_pairs(raw)
        return self._diffs[base]

    def code_diff(self, base: str | None) -> dict[str, str | None] | None:
        """Code paths where the commit differs from `base` (None: the empty tree); None if
        `base` is unknown here. Raw: nothing left out (see `code_maps`)."""
        pairs = self._pairs(base)
        return None if pairs is None else {p: new for p, (_, new) in pairs.items()}

    def code_maps(
        self,
        base: str | None,
        run_code: Mapping[str, str | None],
        data_paths: Iterable[str] = (),
    ) -> tuple[dict[str, str | None], dict[str, str | None]] | None:
        """(code the commit changed since `base`, code the run had changed) with what is not
        code left out of both: DVC outputs (the commit's, and `data_paths`), `link-ignore`
        paths, and notebooks whose cells (outputs, counts and metadata aside) are the same.
        None if `base` is unknown here."""
        from repro_hooks.links.stamp import NOTEBOOK_PREFIX, notebook_digest

        pairs = self._pairs(base)
        if pairs is None:
            return None
        commit_map = {p: new for p, (_, new) in pairs.items()}
        run_map = dict(run_code)
        notebooks = sorted(p for p in {*commit_map, *run_map} if p.endswith(".ipynb"))
        if notebooks:
            shas = {s for p in notebooks for s in pairs.get(p, (None, None)) if s}
            blobs = self.git.read_blobs(shas) if shas else {}
            unchanged = [p for p in notebooks if p not in pairs]
            at_base: dict[str, bytes | None] = {}
            if unchanged and base is not None:
                found = self.git.read_objects([f"{base}:{p}" for p in unchanged])
                at_base = dict(zip(unchanged, found, strict=True))

            def digest(data: bytes | None) -> str | None:
                return None if data is None else notebook_digest(data)

            for path in notebooks:
                old, new = pairs.get(path, (None, None))
                if path in pairs:
                    base_d = digest(blobs.get(old)) if old else None
                    commit_d = digest(blobs.get(new)) if new else None
                else:
                    base_d = commit_d = digest(at_base.get(path))
                if commit_d == base_d:
                    commit_map.pop(path, None)
                else:
                    commit_map[path] = commit_d
                run_d = run_map.get(path, base_d)
                if isinstance(run_d, str) and not run_d.startswith((NOTEBOOK_PREFIX, "?")):
                    run_d = digest(self.git.read_blobs([run_d]).get(run_d)) or run_d
                if run_d == base_d:
                    run_map.pop(path, None)
                else:
                    run_map[path] = run_d
        data = {o.path for o in self.outputs} | set(data_paths)
        return not_code(commit_map, data, self.ignore), not_code(run_map, data, self.ignore)

    def recorded_data(self, commit: str) -> dict[str, str]:
        if commit not in self._data:
            self._data[commit] = {
                o.path: o.hash_value for o in committed_outputs(self.git, commit)[0]
            }
        return self._data[commit]

    def lock_stage(self, address: str) -> LockStage | None:
        """The commit's dvc.lock entry for a stage address (None: not recorded)."""
        if address not in self._locks:
            from repro_hooks.links.inputs import committed_lock_stage

            self._locks[address] = committed_lock_stage(self.git, self.commit, address)
        return self._locks[address]

    def user(self) -> str | None:
        if self._user is None:
            import getpass

            try:
                self._user = getpass.getuser()
            except Exception:  # no user name for this uid: nothing is proven
                self._user = ""
        return self._user or None

    def judge(self, run: RunCandidate) -> str | None:
        failed = status_verdict(run)
        if failed:
            return failed
        if run.tags.get(CLONE_TAG):
            if run.tags[CLONE_TAG] != self.clone:
                return "stamped in another clone"
            record = load_record(self.common_dir, run.tags.get(STAMP_TAG, ""))
            if record is None:
                return stamp_verdict(run, None, self.job.root, None, self.outputs)
            copied = self.copied_stamp(run, record)
            if copied:
                return copied
            stage = record.get("stage")
            if isinstance(stage, dict):
                lock = self.lock_stage(str(stage.get("address") or ""))
                return stamp_verdict(run, record, self.job.root, None, self.outputs, lock=lock)
            head = record.get("head")
            code = record.get("code")
            start = record.get("start")
            maps = None
            if head is None or isinstance(head, str):
                maps = self.code_maps(
                    head if isinstance(head, str) and head else None,
                    code if isinstance(code, dict) else {},
                    start if isinstance(start, dict) else (),
                )
            commit_code, run_code = maps if maps else (None, None)
            return stamp_verdict(
                run, record, self.job.root, commit_code, self.outputs, run_changes=run_code
            )
        if self._repo_url is None:
            self._repo_url = first_remote_url(self.git) or ""
        source = run.source_commit
        same_data = bool(source) and self.recorded_data(source or "") == {
            o.path: o.hash_value for o in self.outputs
        }
        maps = self.code_maps(source, {}) if source else None
        return fallback_verdict(
            run,
            commit=self.commit,
            parents=self.parents,
            user=self.user(),
            root=self.job.root,
            repo_url=self._repo_url or None,
            changed_by_commit=maps[0] if maps else None,
            same_data=same_data,
        )

    def stamp_holders(self, stamp: str) -> list[str] | None:
        """Ids of the runs carrying `stamp` (None: no store to ask, or it failed)."""
        if stamp not in self._holders:
            found = None
            if self.store is not None:
                try:
                    found = list(self.store.runs_with_stamp(stamp))
                except Exception:  # the store is asked elsewhere too: its errors show there
                    found = None
            self._holders[stamp] = found
        return self._holders[stamp]

    def copied_stamp(self, run: RunCandidate, record: Mapping[str, Any]) -> str | None:
        """Why `run` is not the run its stamp was taken for (None: it is, as far as is known).
        The clone's record names the run once the training process knew it; a record naming no
        run (a killed process) qualifies no run when several runs carry the stamp."""
        stamp = run.tags.get(STAMP_TAG, "")
        owner = record.get("run")
        if isinstance(owner, str) and owner:
            if owner != run.run_id:
                return (
                    f"its stamp {stamp[:12]} was taken for run {owner} (this clone's record): "
                    "a copied stamp never qualifies"
                )
            return None
        holders = self.stamp_holders(stamp)
        if holders is not None and len(set(holders) | {run.run_id}) > 1:
            others = sorted(set(holders) - {run.run_id})
            return (
                f"its stamp {stamp[:12]} is also carried by run(s) {', '.join(others[:3])} and "
                "this clone's record names no run (the training process did not exit "
                "normally): a shared stamp qualifies no run"
            )
        return None

    def evidence_kind(self, run: RunCandidate) -> str:
        """How a link to this run is justified: "stage" (its stage in the commit's dvc.lock),
        "stamp" (the code and data rules over its stamp), "mlflow-source" (unstamped)."""
        if not run.tags.get(CLONE_TAG):
            return "mlflow-source"
        return "stage" if run.tags.get(STAGE_TAG) else "stamp"


def _newest_first(*streams: Iterable[RunCandidate]) -> Iterator[RunCandidate]:
    seen: set[str] = set()
    for run in heapq.merge(*streams, key=lambda r: -r.start_time):
        if run.run_id not in seen:
            seen.add(run.run_id)
            yield run


def write_link(
    store: Tracker,
    git: Git,
    run_id: str,
    commit: str,
    branch: str | None,
    evidence: str = "",
    record: CommitRecord | None = None,
) -> str:
    """Write (or overwrite) the link of one run to `commit`; a line saying what was written.
    Without a branch (a detached HEAD) an existing git.branch is kept. `record`: what the
    commit records, when the caller already read it (`commit_record(git, commit, branch)`)."""
    if record is None:
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
            k
            for k in existing
            if (k.startswith(DVC_PREFIX) or (k == BRANCH_TAG and branch)) and k not in tags
        ]
    own = _own_record(git, existing)
    inputs = _run_inputs(git, existing, commit, record.outputs, own)
    store.write_link(run_id, tags, inputs, delete, record.repo_url)
    note = "".join(f"; {p}" for p in record.problems)
    note += _publish_statement(store, git, run_id, tags, existing, record.outputs, own)
    # the link follows the run's models into the registry (a detached HEAD keeps the branch)
    carried = dict(tags)
    if BRANCH_TAG not in carried and BRANCH_TAG in existing:
        carried[BRANCH_TAG] = existing[BRANCH_TAG]
    note += propagation_note(store.registry(), run_id, carried)
    return f"{len(record.outputs)} DVC output(s){note}"


def _own_record(git: Git, tags: Mapping[str, str]) -> dict[str, Any] | None:
    """This clone's local record of the run's stamp (None when another clone, or nobody,
    stamped the run)."""
    common_dir = str(git.common_dir)
    clone = tags.get(CLONE_TAG)
    if not clone or clone != read_clone_id(common_dir):
        return None
    return load_record(common_dir, tags.get(STAMP_TAG, ""))


def _run_inputs(
    git: Git,
    tags: Mapping[str, str],
    commit: str,
    outputs: Sequence[RecordedOutput],
    record: Mapping[str, Any] | None,
) -> list[RecordedOutput]:
    """The committed data the run used (links.inputs): its dataset inputs on the run page."""
    address = tags.get(STAGE_TAG)
    deps = stage_deps_of(git, commit, address) if address else None
    return inputs_of_run(outputs, tags, record, deps)


def _publish_statement(
    store: Tracker,
    git: Git,
    run_id: str,
    tags: Mapping[str, str],
    existing: Mapping[str, str],
    outputs: Sequence[RecordedOutput],
    record: Mapping[str, Any] | None,
) -> str:
    """The run's statement of the files it made (deploy/attest.py), signed when a key is
    configured; written after the link, so a failure here never costs the link itself."""
    if record is None:
        return ""
    from repro_hooks.deploy.attest import publish_statement

    try:
        return publish_statement(
            store,
            git,
            run_id,
            tags,
            existing,
            [(o.path, o.hash_value) for o in outputs],
            record,
            store.uri,
        )
    except Exception as exc:
        from repro_hooks.links.registry import one_line

        return f"; no statement of the run's files written: {one_line(exc)}"


def _write_with_children(
    store: Tracker, git: Git, run: RunCandidate, commit: str, branch: str | None, evidence: str
) -> str:
    record = commit_record(git, commit, branch)  # read once for the run and its children
    detail = write_link(store, git, run.run_id, commit, branch, evidence, record)
    children = store.children(run)
    for child in children:
        write_link(store, git, child.run_id, commit, branch, evidence, record)
    nested = f"; {len(children)} nested run(s) carry the same link" if children else ""
    return detail + nested


def _passed(choice: RunChoice, limit: int = 3) -> str:
    if not choice.passed_over:
        return ""
    shown = "; ".join(choice.passed_over[:limit])
    more = len(choice.passed_over) - limit
    return f" (passed over: {shown}{f'; and {more} more' if more > 0 else ''})"


def link_commit(job: Job, git: Git, store: Tracker) -> str:
    """A "link" job: choose the commit's run(s) and write the link; one line for the log."""
    assert job.commit is not None
    short = job.commit[:12]
    if git.try_run("cat-file", "-e", f"{job.commit}^{{commit}}") is None:
        return f"{short}: nothing linked: the commit no longer exists"
    if job.run_id:  # the same rules as any link (`--force` marks a link made against them)
        from repro_hooks.links.given import link_given_run

        return link_given_run(job, git, store, force=bool(job.extra.get("force"))).line
    ids, notes = store.experiment_ids(job.experiments)
    if not ids:
        why = "; ".join(notes) or "the tracking store has no experiment"
        return f"{short}: nothing linked: {why}"
    evidence = Evidence(git, job, job.commit, store)
    streams = []
    if evidence.clone:
        streams.append(store.candidates(ids, job.before_ms, (CLONE_TAG, evidence.clone)))
    for parent in evidence.parents:  # unstamped runs: only those started from a parent
        streams.append(store.candidates(ids, job.before_ms, (SOURCE_COMMIT_TAG, parent)))
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


def relink_commit(job: Job, git: Git, store: Tracker) -> str:
    """A "relink" job: move links from rewritten commits to their new commits, but only where
    the new commit records the code and data the run saw; otherwise the run keeps its link."""
    ids, _ = store.experiment_ids(job.experiments)
    lines = []
    for old, new in job.pairs:
        if old == new or not ids:
            continue
        linked = [store.run(r) for r in store.runs_linked_to(ids, old)]
        moved: set[str] = set()
        evidence = Evidence(git, job, new, store)
        for run in sorted(linked, key=lambda r: r.parent_run_id is not None):
            if run.parent_run_id in moved:
                moved.add(run.run_id)  # carried by its parent's link (written with it)
                continue
            if run.parent_run_id and any(r.run_id == run.parent_run_id for r in linked):
                continue  # its parent stays: so does it
            # a forced link moves as it is: the user linked it against the rules on purpose
            why_not = evidence.judge(run) if run.tags.get(EVIDENCE_TAG) != "forced" else None
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
