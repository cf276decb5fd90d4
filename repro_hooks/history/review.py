"""History scans: the large-file and DVC-file policy over commits, not the working tree.

A scan covers every blob each selected commit introduces (`Git.introduced_blobs`), so a file
added in one commit and deleted in the next is still seen, and so is a pushed branch that is not
checked out. Which commits are selected comes from a range, the whole history, the ref updates
git gives a pre-push hook, or the ref updates a server's pre-receive hook gets.

The cores (`scan_findings`, `data_findings`, `dvc_file_findings`, the `*_rev_args` functions and
the baseline functions) take plain data; only `scan_commits` and `server_policy` ask git.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro_hooks.dvc.names import is_dvc_file
from repro_hooks.errors import ConfigError, ReproHooksError
from repro_hooks.git import SYMLINK_MODE, Blob, Git, ObjectInfo
from repro_hooks.git.objects import git_lines, object_headers
from repro_hooks.large_files.check import (
    LFS_POINTER_MAX,
    SYMLINK_TARGET_MAX,
    LfsFacts,
    is_lfs_pointer,
    is_link_target,
    large_file_findings,
    lfs_facts,
    start_lfs_filtered_paths,
)
from repro_hooks.policy.config import Config, Policy, load_config
from repro_hooks.policy.data import data_in_git
from repro_hooks.policy.sizes import format_size
from repro_hooks.report import Finding, display_path

if TYPE_CHECKING:
    from repro_hooks.dvc.commits import Sources
    from repro_hooks.history.baseline import BaselineKey

POLICY_GIT_CONFIG = "repro-hooks.policy"
BASELINE_GIT_CONFIG = "repro-hooks.baseline"
MAX_DVC_FILE_SIZE = 8 * 1024 * 1024  # the same bound as repro_hooks.dvc.files


# ---- the checks -------------------------------------------------------------------------------


def _may_be_dvc_file(raw: bytes) -> bool:
    return raw.endswith((b".dvc", b"dvc.yaml", b"dvc.lock"))


class _PathFacts:
    """Per-path decisions, computed once per distinct path (a history repeats paths a lot)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._display: dict[bytes, str] = {}
        self._data: dict[str, bool] = {}

    def display(self, raw: bytes) -> str:
        text = self._display.get(raw)
        if text is None:
            text = self._display[raw] = display_path(raw)
        return text

    def is_data(self, path: str) -> bool:
        verdict = self._data.get(path)
        if verdict is None:
            verdict = self._data[path] = self.policy.is_data(path)
        return verdict


def data_findings(
    blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    policy: Policy,
    lfs: LfsFacts,
    skip: Iterable[tuple[str, str]] = (),
    links: Mapping[str, bytes] | None = None,
    facts: _PathFacts | None = None,
) -> list[Finding]:
    """A non-empty blob at a data pattern (not an LFS pointer) is data stored in git.
    `skip` holds (path, sha) pairs already reported under another rule. A symbolic link is
    exempt only when its blob is a link target a system could create (`links`: the contents of
    the small symlink blobs at data patterns, see `link_targets`); a symlink blob that is not
    one (a CSV stored with mode 120000) is checked out as a regular file where symlinks are
    off, so it is judged as the file it is. `facts`: the caller's per-path memo, if it has one."""
    seen = set(skip)
    facts = facts if facts is not None else _PathFacts(policy)
    findings = []
    for blob in blobs:
        if blob.is_gitlink or blob.sha in lfs.pointer_shas:
            continue
        as_link = blob.mode == SYMLINK_MODE
        if as_link and is_link_target((links or {}).get(blob.sha, b"\0")):
            continue  # a link (not proven one: judged as the file it is)
        path = facts.display(blob.path)
        obj = info.get(blob.sha)
        if obj is None or (path, blob.sha) in seen:
            continue
        # a `cache: false` output git keeps by design is in `skip` (see git_kept_outputs)
        why = data_in_git(path, facts.is_data, size=obj.size, as_symlink=as_link)
        if why is None:
            continue
        seen.add((path, blob.sha))
        findings.append(Finding(path, "data-in-git", why, blob.commit))
    return findings


def git_kept_outputs(
    git: Git,
    blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    lfs: LfsFacts,
    policy: Policy,
    facts: _PathFacts | None = None,
) -> set[tuple[str, str]]:
    """(path, blob) pairs at data patterns that their commit's `dvc.yaml` declares a `cache:
    false` output (metrics, plots a stage writes): DVC keeps them in git, and check-dvc accepts
    them at commit, so the scan (and the deploy gate) must not call them data stored in git. The
    `dvc.yaml` of every directory above such a path is read in one `git cat-file --batch`
    (CommitStages). `facts`: the caller's per-path memo, if it has one."""
    facts = facts if facts is not None else _PathFacts(policy)
    candidates = [
        (b, path)
        for b in blobs
        if b.commit
        and not b.is_gitlink
        and b.sha not in lfs.pointer_shas
        and (o := info.get(b.sha)) is not None
        and o.size > 0
        and facts.is_data(path := facts.display(b.path))
    ]
    if not candidates:
        return set()
    from repro_hooks.dvc.remote import CommitStages  # lazy: only a push with data-like blobs

    def locks(path: str) -> list[str]:  # CommitStages looks up the dvc.yaml beside a dvc.lock
        parts = path.split("/")[:-1]
        return ["/".join([*parts[:i], "dvc.lock"]) for i in range(len(parts), -1, -1)]

    stages = CommitStages(git)
    stages.prefetch(
        Blob(lock.encode(), "100644", "", b.commit)
        for b, path in candidates
        for lock in locks(path)
    )
    kept = set()
    for blob, path in candidates:
        for lock in locks(path):
            declared = stages(blob.commit, lock)
            if declared and any(
                not out.cache and out.path == path for st in declared.values() for out in st.outs
            ):
                kept.add((path, blob.sha))
                break
    return kept


def link_targets(
    git: Git, blobs: Sequence[Blob], info: Mapping[str, ObjectInfo], policy: Policy
) -> dict[str, bytes]:
    """The contents of the symlink blobs at data patterns small enough to be link targets
    (one `cat-file --batch`; none, normally), for `data_findings`."""
    facts = _PathFacts(policy)
    shas = [
        b.sha
        for b in blobs
        if b.mode == SYMLINK_MODE
        and (o := info.get(b.sha)) is not None
        and 0 < o.size <= SYMLINK_TARGET_MAX
        and facts.is_data(facts.display(b.path))
    ]
    return git.read_blobs(shas) if shas else {}


class DvcParses:
    """Every parse of DVC content one scan makes, keyed by blob: each (blob, path) is parsed
    once however many commits and tips repeat it (a dvc.yaml beside 200 changed dvc.lock files,
    a pushed file in every tip's tree), and a blob in `skip` (refused for its size, or over the
    push's parse budget: reported on their own) is never parsed. A templated dvc.yaml is resolved
    with the vars files and DVC config of the commit it is read at (`sources`, see
    repro_hooks.dvc.commits): it is parsed once per (blob, path, commit)."""

    def __init__(self, skip: Collection[str] = (), sources: Sources | None = None) -> None:
        self.skip = set(skip)
        self.sources = sources
        self._done: dict[tuple[str, str, object], object] = {}

    def parse(
        self,
        sha: str,
        content: bytes,
        path: str,
        wdirs: Mapping[str, str] | None = None,
        commit: str | None = None,
    ) -> Any:
        """The parsed DVC file (stages of a dvc.yaml or dvc.lock, a .dvc file's DvcFile);
        raises DvcFileError, every time, for a malformed one."""
        from repro_hooks.dvc.files import (  # lazy: ~0.1 s that a history without DVC needs not
            DvcFileError,
            parse_dvc_file,
            parse_dvc_lock,
            parse_dvc_yaml,
        )

        name = posixpath.basename(path)
        templated = False
        if name == "dvc.yaml" and self.sources is not None:
            from repro_hooks.dvc.commits import may_template

            templated = may_template(content)
        at: object = commit if templated else None
        key = (sha, path, tuple(sorted(wdirs.items())) if wdirs is not None else at)
        done = self._done.get(key)
        if done is None:
            try:
                if name == "dvc.lock":
                    done = parse_dvc_lock(content, path, wdirs)
                elif name == "dvc.yaml":
                    sources = self.sources(commit, path) if templated and self.sources else None
                    done = parse_dvc_yaml(content, path, *(sources or (None, None)))
                else:
                    done = parse_dvc_file(content, path)
            except DvcFileError as exc:
                done = exc
            self._done[key] = done
        if isinstance(done, DvcFileError):
            raise done
        return done


def dvc_file_findings(
    blobs: Sequence[Blob],
    contents: Mapping[str, bytes],
    info: Mapping[str, ObjectInfo],
    lock_wdirs: Mapping[tuple[str | None, str], Mapping[str, str]] | None = None,
    parses: DvcParses | None = None,
) -> list[Finding]:
    """Each .dvc, dvc.yaml and dvc.lock blob must parse (repro_hooks.dvc.files). A dvc.lock's
    paths are relative to its stages' wdirs, which only the commit's dvc.yaml records:
    `lock_wdirs` maps (commit, dvc.lock blob) to {stage: wdir}. A blob not in `contents` (not
    read: refused for its size, or over a push's parse budget) is not judged here."""
    parses = parses if parses is not None else DvcParses()
    findings = []
    seen: set[tuple[str, str]] = set()
    for blob in blobs:
        if blob.is_gitlink or not _may_be_dvc_file(blob.path):
            continue
        path = display_path(blob.path)
        if not is_dvc_file(path) or (path, blob.sha) in seen:
            continue
        seen.add((path, blob.sha))
        obj = info.get(blob.sha)
        reason = None
        if blob.mode == SYMLINK_MODE:
            reason = "a symbolic link, not a DVC file"
        elif obj is not None and obj.size > MAX_DVC_FILE_SIZE:
            reason = f"{format_size(obj.size)}: too large to be a DVC file"
        elif blob.sha in contents and blob.sha not in parses.skip:
            from repro_hooks.dvc.files import DvcFileError

            wdirs = None
            if posixpath.basename(path) == "dvc.lock":
                wdirs = (lock_wdirs or {}).get((blob.commit, blob.sha))
            try:
                parses.parse(blob.sha, contents[blob.sha], path, wdirs, blob.commit)
            except DvcFileError as exc:
                # a vars file the dvc.yaml reads is named in the reason
                reason = exc.reason if exc.file == path else str(exc)
        if reason is not None:
            findings.append(Finding(path, "malformed-dvc", reason, blob.commit))
    return findings


def duplicate_output_findings(
    trees: Mapping[str, Sequence[tuple[str, str]]],
    contents: Mapping[str, bytes],
    introduced: Collection[tuple[str, str]],
    parses: DvcParses | None = None,
) -> list[Finding]:
    """Two DVC files recording the same output in one tree: DVC refuses to work in that tree.

    `trees` maps a scanned tip to its (DVC file path, blob sha) entries (.dvc files and dvc.yaml;
    dvc.lock repeats dvc.yaml's outputs). Reported only when the scan introduced one of the
    files involved, at the file that recorded the output last in path order."""
    from repro_hooks.dvc.files import DvcFileError

    parses = parses if parses is not None else DvcParses()
    findings: dict[tuple[str, str], Finding] = {}
    for tip, entries in trees.items():
        owners: dict[str, list[tuple[str, str]]] = {}
        for path, sha in sorted(entries):
            if sha not in contents or sha in parses.skip:
                continue
            try:
                parsed = parses.parse(sha, contents[sha], path, commit=tip)
                if posixpath.basename(path) == "dvc.yaml":
                    outs = [o.path for st in parsed.values() for o in st.outs]
                else:
                    outs = [o.path for o in parsed.outs]
            except DvcFileError:
                continue  # reported as malformed where the scan introduced it
            for out in dict.fromkeys(outs):
                owners.setdefault(out, []).append((path, sha))
        for out, files in owners.items():
            if len(files) < 2 or not any(f in introduced for f in files):
                continue
            path = files[-1][0]
            others = ", ".join(f for f, _ in files[:-1])
            findings.setdefault(
                (path, out),
                Finding(path, "malformed-dvc", f"output {out!r} is also recorded in {others}", tip),
            )
    return list(findings.values())


def scan_findings(
    blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    policy: Policy,
    lfs: LfsFacts,
    dvc_contents: Mapping[str, bytes],
    sha_of: Mapping[tuple[str, str | None], str] | None = None,
    lock_wdirs: Mapping[tuple[str | None, str], Mapping[str, str]] | None = None,
    links: Mapping[str, bytes] | None = None,
    parses: DvcParses | None = None,
    git_kept: Collection[tuple[str, str]] = (),
    facts: _PathFacts | None = None,
) -> list[Finding]:
    """Every rule over the blobs a set of commits introduces. A (path, blob) breaking the size or
    LFS rule is not reported again as data-in-git. `links`: see `data_findings`. `git_kept`:
    (path, blob) pairs that are `cache: false` DVC outputs (see `git_kept_outputs`), which git
    keeps by design: not data stored in git. `facts`: the caller's per-path memo."""
    large = large_file_findings(blobs, info, policy, lfs)
    if sha_of is None:
        sha_of = blob_index(blobs)
    skip = {(f.path, sha_of.get((f.path, f.commit), "")) for f in large} | set(git_kept)
    return [
        *large,
        *data_findings(blobs, info, policy, lfs, skip, links, facts),
        *dvc_file_findings(blobs, dvc_contents, info, lock_wdirs, parses),
    ]


def blob_index(
    blobs: Iterable[Blob], display: Callable[[bytes], str] = display_path
) -> dict[tuple[str, str | None], str]:
    """(display path, commit) -> blob sha: a commit introduces one blob per path."""
    return {(display(b.path), b.commit): b.sha for b in blobs}


def scan_commits(
    git: Git,
    policy: Policy,
    rev_args: Sequence[str],
    ref_names: Mapping[str, str] | None = None,
    on_commits: Callable[[int], None] | None = None,
    *,
    push_total: bool = False,
) -> tuple[list[Finding], dict[tuple[str, str | None], str]]:
    """Ask git (a fixed number of processes, whatever the number of commits) and apply
    every rule. With `push_total` (a push, or a range under review) also the total-size
    limit of a push over every new blob. Returns the findings and the (path, commit) -> blob index for baselines.

    Besides the blobs each commit introduces: every commit message against the message limit,
    and every tip that is not a commit (a tag, a tree, a blob: `objects_at_tips`). Each finding
    names the ref it arrives by: `ref_names` maps a tip as given in `rev_args` to a ref name.
    `on_commits(n)` hears of every n more commits read (progress)."""
    walk = git.walk_history(rev_args, sources=True, commit_sizes=True, on_commits=on_commits)
    blobs = walk.blobs
    findings, sha_of = blob_findings(git, policy, rev_args, blobs, push_total, walk.object_info)
    messages = commit_message_findings(git, policy, walk.commit_sizes)
    sha_of.update({(f.path, f.commit): f.commit for f in messages if f.commit})
    names = dict(ref_names or {})
    findings = [
        replace(f, ref=_ref_name(walk.sources.get(f.commit, ""), names)) if f.commit else f
        for f in [*findings, *messages]
    ]
    for found, obj in objects_at_tips(git, policy, rev_args, names):
        findings.append(found)
        sha_of[(found.path, None)] = obj
    return findings, sha_of


def _ref_name(source: str, names: Mapping[str, str]) -> str | None:
    return names.get(source, source) or None


def blob_findings(
    git: Git,
    policy: Policy,
    rev_args: Sequence[str],
    blobs: Sequence[Blob],
    push_total: bool,
    info: Mapping[str, ObjectInfo] | None = None,
) -> tuple[list[Finding], dict[tuple[str, str | None], str]]:
    """Every rule over `blobs` (what the commits in `rev_args` introduce, or a commit's whole
    tree for the deploy gate): the findings, and the (path, commit) -> blob index.
    `info`: the blobs' types and sizes when the walk already asked (else asked here)."""
    lfs_filtered = start_lfs_filtered_paths(git, blobs)
    if info is None:
        info = git.object_info(b.sha for b in blobs if not b.is_gitlink)
    check_no_missing_objects(git, blobs, info)  # a push may not name blobs the server lacks
    lfs = lfs_facts(git, blobs, info, policy, lfs_filtered())
    facts = _PathFacts(policy)
    # An LFS pointer at a data pattern is data kept out of git: read the small ones to know.
    small_data = [
        b.sha
        for b in blobs
        if (o := info.get(b.sha)) is not None
        and 0 < o.size < LFS_POINTER_MAX
        and b.sha not in lfs.pointer_shas
        and facts.is_data(facts.display(b.path))
    ]
    if small_data:
        pointers = {s for s, c in git.read_blobs(small_data).items() if is_lfs_pointer(c)}
        lfs = LfsFacts(lfs.filtered_paths, {*lfs.pointer_shas, *pointers})
    dvc_blobs = [
        b
        for b in blobs
        if not b.is_gitlink
        and b.mode != SYMLINK_MODE
        and _may_be_dvc_file(b.path)
        and is_dvc_file(facts.display(b.path))
        and (o := info.get(b.sha)) is not None
        and o.size <= MAX_DVC_FILE_SIZE
    ]
    refused = _refused_for_size(dvc_blobs, info, policy, lfs, facts)
    over_budget: dict[str, int] = {}
    if push_total:  # a push (or a range under review): bound what it makes us parse
        over_budget = _over_parse_budget(dvc_blobs, info, refused, policy.max_push_dvc_total)
    skip = {*refused, *over_budget}
    dvc_shas = [b.sha for b in dvc_blobs if b.sha not in skip]
    contents = git.read_blobs(dvc_shas) if dvc_shas else {}
    parses = DvcParses(skip)
    if contents:
        # lazy: ~0.1 s of imports that a history without DVC files never needs
        from repro_hooks.dvc.commits import CommitFiles, may_template

        # a templated dvc.yaml reads its vars files and DVC config from its own commit: those
        # the scan's dvc.yaml files name are read in one batch
        committed = CommitFiles(git)
        committed.prefetch(
            (b.commit, path, contents[b.sha])
            for b in blobs
            if b.sha in contents
            and posixpath.basename(path := facts.display(b.path)) == "dvc.yaml"
            and may_template(contents[b.sha])
        )
        parses = DvcParses(skip, committed.sources)
    sha_of = blob_index(blobs, facts.display)
    lock_wdirs = _lock_wdirs(git, [b for b in blobs if b.sha in contents], facts.display, parses)
    links = link_targets(git, blobs, info, policy)
    kept = git_kept_outputs(git, blobs, info, lfs, policy, facts)
    findings = scan_findings(
        blobs, info, policy, lfs, contents, sha_of, lock_wdirs, links, parses, kept, facts
    )
    if dvc_shas:
        findings += _duplicate_outputs_at_tips(git, rev_args, blobs, facts, parses)
    if over_budget:
        findings.append(_parse_budget_finding(over_budget, policy.max_push_dvc_total))
    total = push_total_finding(blobs, info, policy) if push_total else None
    if total is not None:
        findings.append(total)
    return findings, sha_of


def _refused_for_size(
    dvc_blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    policy: Policy,
    lfs: LfsFacts,
    facts: _PathFacts,
) -> set[str]:
    """The DVC-file blobs the size limit already refuses (`large-file`): never parsed, the
    verdict is made without them."""
    return {
        b.sha
        for b in dvc_blobs
        if (o := info.get(b.sha)) is not None
        and b.sha not in lfs.pointer_shas
        and not policy.is_excluded(path := facts.display(b.path))
        and o.size > policy.size_limit_for(path)
    }


def _over_parse_budget(
    dvc_blobs: Sequence[Blob],
    info: Mapping[str, ObjectInfo],
    refused: Collection[str],
    budget: int,
) -> dict[str, int]:
    """The DVC-file blobs past the push's parse budget (distinct blobs, oldest commit first,
    each counted once by its size): sha -> size. Empty when the push fits."""
    sizes: dict[str, int] = {}
    for b in dvc_blobs:
        if b.sha not in refused and b.sha not in sizes:
            sizes[b.sha] = info[b.sha].size
    if sum(sizes.values()) <= budget:
        return {}
    spent = 0
    over: dict[str, int] = {}
    for sha, size in sizes.items():
        if spent + size <= budget:
            spent += size
        else:
            over[sha] = size
    return over


def _parse_budget_finding(over: Mapping[str, int], budget: int) -> Finding:
    return Finding(
        "(push)",
        "total-size",
        f"{len(over)} DVC files ({format_size(sum(over.values()))}) left unchecked: over the "
        f"{format_size(budget)} of DVC files one push may bring (max-push-dvc-total); push fewer "
        "commits at a time",
    )


def push_total_finding(
    blobs: Sequence[Blob], info: Mapping[str, ObjectInfo], policy: Policy
) -> Finding | None:
    """The push's total-size finding: the distinct new blobs (excluded paths, gitlinks and
    absent objects left out), sized as checked out, over `max-push-total`. Bulk data under
    the per-file size limit (thousands of images) is stopped here, at every push."""
    sizes: dict[str, int] = {}
    for b in blobs:
        o = info.get(b.sha)
        if o is None or b.is_gitlink or policy.is_excluded(display_path(b.path)):
            continue
        sizes[b.sha] = o.size
    total = sum(sizes.values())
    if total <= policy.max_push_total:
        return None
    return Finding(
        "(push)",
        "total-size",
        f"{len(sizes)} new files take {format_size(total)}, over the "
        f"{format_size(policy.max_push_total)} total-size limit of a push (max-push-total)",
    )


# ---- messages and objects that are not commits ------------------------------------------------


def message_of(content: bytes) -> bytes:
    """A commit's or tag's message: what follows the first blank line of the object."""
    _, sep, message = content.partition(b"\n\n")
    return message if sep else b""


def commit_message_findings(
    git: Git, policy: Policy, commit_sizes: Mapping[str, int]
) -> list[Finding]:
    """Commits whose message is over the message limit. A commit object's size bounds its
    message's, so only commits over the limit are read (none, normally)."""
    limit = policy.max_message_size
    over = [sha for sha, size in commit_sizes.items() if size > limit]
    findings = []
    for sha, content in git.read_blobs(over).items():
        size = len(message_of(content))
        if size > limit:
            findings.append(
                Finding(
                    "(commit message)",
                    "large-message",
                    f"{format_size(size)}, over the {format_size(limit)} message limit",
                    sha,
                )
            )
    return findings


def _split_rev_args(git: Git, rev_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(positive revisions, negative arguments) of a rev-list argument list; ranges are
    resolved with rev-parse; negatives keep their spelling (`^x`, `--not --all`)."""
    positives: list[str] = []
    negatives: list[str] = []
    negate = False
    for arg in rev_args:
        if arg == "--not":
            negate = not negate
            continue
        if ".." in arg and not arg.startswith("-"):
            for rev in git.run("rev-parse", "--revs-only", arg, "--").decode().split():
                (negatives if rev.startswith("^") else positives).append(rev)
            continue
        if negate:
            negatives += ["--not", arg, "--not"] if arg.startswith("-") else [f"^{arg}"]
        elif arg.startswith("^"):
            negatives.append(arg)
        else:
            positives.append(arg)
    return positives, negatives


def objects_at_tips(
    git: Git, policy: Policy, rev_args: Sequence[str], ref_names: Mapping[str, str]
) -> list[tuple[Finding, str]]:
    """What a push makes reachable other than through commits: a ref (or an annotated tag,
    through any chain of tags) pointing at a blob or a tree. A tag is judged by its message and
    its target, a blob by the size limit, a tree by every entry it brings that no excluded ref
    already reaches (size limit and data patterns, as in a commit). Each finding comes with the
    object it is about (for baselines)."""
    positives, negatives = _split_rev_args(git, rev_args)
    tips: dict[str, str] = {}  # sha -> ref name
    if "--all" in positives:
        positives.remove("--all")
        listing = git.run("for-each-ref", "--format=%(objectname) %(objecttype) %(refname)")
        for line in git_lines(listing):
            sha, kind, ref = line.decode("utf-8", "backslashreplace").split(" ", 2)
            if kind != "commit":
                tips.setdefault(sha, ref)
    if positives:
        shas = git.run("rev-parse", "--revs-only", *positives, "--").decode().split()
        for given, sha in zip(positives, shas, strict=False):
            tips.setdefault(sha, ref_names.get(given, ref_names.get(sha, given)))
    info = git.object_info(tips)
    findings: list[tuple[Finding, str]] = []
    targets: dict[str, tuple[str, str]] = {}  # tree or blob sha -> (type, ref)
    seen_tags: set[str] = set()
    pending = [(sha, ref) for sha, ref in tips.items() if sha in info]
    kinds = {sha: info[sha].type for sha, _ in pending}
    while pending:
        # the type git stores, not the one a tag claims in its header
        unknown = [sha for sha, _ in pending if sha not in kinds]
        kinds.update((sha, o.type) for sha, o in git.object_info(unknown).items())
        tags = [(sha, ref) for sha, ref in pending if kinds.get(sha) == "tag"]
        for sha, ref in pending:
            if kinds.get(sha) in ("tree", "blob"):
                targets.setdefault(sha, (kinds[sha], ref))
        pending = []
        contents = git.read_blobs(sha for sha, _ in tags if sha not in seen_tags)
        for sha, ref in tags:
            if sha in seen_tags or sha not in contents:
                continue
            seen_tags.add(sha)
            content = contents[sha]
            size = len(message_of(content))
            if size > policy.max_message_size:
                message = (
                    f"tag {sha}: message of {format_size(size)}, over the "
                    f"{format_size(policy.max_message_size)} message limit"
                )
                found = Finding(display_path(ref), "large-message", message, None, ref=ref)
                findings.append((found, sha))
            # the first `object` header, split on b"\n" only: where git says the tag points
            target = object_headers(content).get(b"object", b"").decode("ascii", "replace")
            if target:
                pending.append((target, ref))
    for sha, (kind, ref) in targets.items():
        findings += _objects_of(git, policy, sha, kind, ref, negatives)
    return findings


def _objects_of(
    git: Git, policy: Policy, sha: str, kind: str, ref: str, negatives: Sequence[str]
) -> list[tuple[Finding, str]]:
    """The new blobs a tree or blob tip brings: the objects `git rev-list --objects` lists
    (reachable from it, from no excluded tip), named by `git ls-tree -r -z`, sized in one batch."""
    listing = git.run("rev-list", "--objects", "--no-object-names", sha, *negatives, "--")
    new = set(listing.decode().split())
    if kind == "blob":
        blob_info = git.object_info([sha]).get(sha)
        if sha not in new or blob_info is None or blob_info.size <= policy.max_size:
            return []
        message = (
            f"blob {sha}: {format_size(blob_info.size)} in git, over the "
            f"{format_size(policy.max_size)} size limit (a ref to a raw blob)"
        )
        return [(Finding(display_path(ref), "large-file", message, None, ref=ref), sha)]
    blobs = [b for b in git.tree(sha) if not b.is_gitlink and b.sha in new]
    info = git.object_info(b.sha for b in blobs)
    small = [
        b.sha for b in blobs if (o := info.get(b.sha)) is not None and 0 < o.size < LFS_POINTER_MAX
    ]
    pointers = (
        {s for s, c in git.read_blobs(small).items() if is_lfs_pointer(c)} if small else set()
    )
    links = link_targets(git, blobs, info, policy)
    found = scan_findings(blobs, info, policy, LfsFacts(frozenset(), pointers), {}, links=links)
    sha_of = blob_index(blobs)
    return [
        (replace(f, message=f"{f.message} (in tree {sha})", ref=ref), sha_of[(f.path, None)])
        for f in found
    ]


def check_no_missing_objects(
    git: Git, blobs: Sequence[Blob], info: Mapping[str, ObjectInfo]
) -> None:
    """A blob the scanned commits introduce but the repository lacks: expected in a partial
    clone (a promisor remote fetches it on demand), a corrupt repository otherwise. Scanning on
    would pass what it could not read: raise (exit 2) naming what is missing."""
    missing = [b for b in blobs if not b.is_gitlink and b.sha.strip("0") and b.sha not in info]
    if not missing:
        return
    if git.config_value("extensions.partialClone") or git.try_run(
        "config", "--get-regexp", r"^remote\..*\.promisor$"
    ):
        return
    first = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise ReproHooksError(
        f"{display_path(first.path)}: object {first.sha} of commit {first.commit} is missing"
        f"{more}: the repository is corrupt (not a partial clone); run git fsck"
    )


def _lock_wdirs(
    git: Git, dvc_blobs: Sequence[Blob], display: Callable[[bytes], str], parses: DvcParses
) -> dict[tuple[str | None, str], Mapping[str, str]]:
    """For each dvc.lock a commit introduces, the stage wdirs its sibling dvc.yaml records in
    that same commit (one `cat-file --batch` for all of them; each dvc.yaml parsed once)."""
    locks = [b for b in dvc_blobs if b.commit and posixpath.basename(display(b.path)) == "dvc.lock"]
    if not locks:
        return {}
    from repro_hooks.dvc.files import DvcFileError  # lazy: ~0.1 s of imports

    yaml_paths = [posixpath.join(posixpath.dirname(display(b.path)), "dvc.yaml") for b in locks]
    found = git.read_named_objects(
        [f"{b.commit}:{p}" for b, p in zip(locks, yaml_paths, strict=True)]
    )
    wdirs: dict[tuple[str | None, str], Mapping[str, str]] = {}
    for blob, yaml_path, named in zip(locks, yaml_paths, found, strict=True):
        if named is None or named[0] in parses.skip or len(named[1]) > MAX_DVC_FILE_SIZE:
            continue
        try:
            stages = parses.parse(named[0], named[1], yaml_path, commit=blob.commit)
        except DvcFileError:
            continue  # reported on its own when this push introduces it
        wdirs[(blob.commit, blob.sha)] = {name: stage.wdir for name, stage in stages.items()}
    return wdirs


def _duplicate_outputs_at_tips(
    git: Git, rev_args: Sequence[str], blobs: Sequence[Blob], facts: _PathFacts, parses: DvcParses
) -> list[Finding]:
    """Ask git for the DVC files in each scanned tip's tree (one ls-tree per tip, one batch
    read) and look for outputs recorded twice."""
    resolved = git.run("rev-parse", "--revs-only", *rev_args).decode().split()
    tips = list(dict.fromkeys(r for r in resolved if not r.startswith("^")))
    trees: dict[str, list[tuple[str, str]]] = {}
    for tip in tips:
        trees[tip] = [
            (path, b.sha)
            for b in git.tree(tip, endings=(b".dvc", b"dvc.yaml"))
            if not b.is_gitlink
            and b.mode != SYMLINK_MODE
            and is_dvc_file(path := facts.display(b.path))
        ]
    wanted = {sha for entries in trees.values() for _, sha in entries}
    info = git.object_info(wanted)
    contents = git.read_blobs(
        s
        for s in wanted
        if s not in parses.skip and (o := info.get(s)) is not None and o.size <= MAX_DVC_FILE_SIZE
    )
    introduced = {(facts.display(b.path), b.sha) for b in blobs}
    return duplicate_output_findings(trees, contents, introduced, parses)


# ---- the policy on a server -------------------------------------------------------------------


def server_policy(git: Git, config_file: Path | None) -> Config:
    """The policy of a server-side check: `--config FILE`, else the file named by
    `git config repro-hooks.policy` (relative to the git directory), else the built-in
    defaults. Never the pushed content: a pusher cannot weaken the policy in the same push."""
    if config_file is None:
        configured = git.config_value(POLICY_GIT_CONFIG)
        if configured:
            config_file = git.git_dir / Path(configured).expanduser()
    if config_file is None:
        return Config(source="built-in defaults")
    return load_config(git.git_dir, config_file)


def range_policy(git: Git, rev_range: str) -> tuple[Policy, str]:
    """The policy for `scan --range A..B`: the one in A's pyproject.toml (what is merged), not
    the work tree's or B's, so a change cannot relax the policy it is checked against. Returns
    the policy and a one-line note when B's pyproject.toml says otherwise ('' when not). A
    single revision (no `..`) has no base: the work tree's policy."""
    assert git.root is not None
    if ".." not in rev_range:
        return load_config(git.root).policy, ""
    base, _, tip = rev_range.replace("...", "..").partition("..")
    if git.try_run("rev-parse", "--verify", "--quiet", f"{base or 'HEAD'}^{{commit}}") is None:
        # an unknown base (or one a shallow clone lacks): the walk says so, with its hint
        return load_config(git.root).policy, ""
    base_policy = _policy_at(git, base or "HEAD")
    try:
        tip_policy: Policy | None = _policy_at(git, tip or "HEAD")
    except ReproHooksError:
        tip_policy = None
    if tip_policy == base_policy:
        return base_policy, ""
    return base_policy, (
        f"note: {tip or 'HEAD'} changes the policy in pyproject.toml; the range is checked "
        f"against {base or 'HEAD'}'s (give --config to choose another)"
    )


def range_baseline(git: Git, rev_range: str, file: Path) -> tuple[set[BaselineKey], str]:
    """The baseline for `scan --range A..B --baseline FILE`: a FILE inside the repository is
    read as A has it (a change cannot record its own findings as known); not in A: no baseline
    (check more). A FILE outside the repository is read as is. Returns the keys and a one-line
    note when B's copy differs ('' when not)."""
    from repro_hooks.history.baseline import load_baseline

    assert git.root is not None
    try:
        rel = file.resolve().relative_to(git.root.resolve()).as_posix()
    except ValueError:
        return load_baseline(file), ""
    base = rev_range.replace("...", "..").partition("..")[0] if ".." in rev_range else ""
    if not base or git.try_run("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}") is None:
        return load_baseline(file), ""
    content = git.read_objects([f"{base}:{rel}"])[0]
    current = file.read_bytes() if file.is_file() else None
    if content is None:
        note = f"note: {rel} is not in {base}: no findings are baselined" if current else ""
        return set(), note
    import tempfile

    with tempfile.TemporaryDirectory(prefix="repro-hooks-baseline-") as tmp:
        copy = Path(tmp) / posixpath.basename(rel)
        copy.write_bytes(content)
        try:
            keys = load_baseline(copy)
        except ConfigError as exc:
            raise ConfigError(f"{base}:{rel}", exc.key, exc.reason) from None
    if current is not None and current != content:
        return keys, f"note: the range changes {rel}; the baseline in force is {base}'s"
    return keys, ""


def _policy_at(git: Git, rev: str) -> Policy:
    """The policy in a revision's pyproject.toml (built-in defaults when it has none)."""
    from repro_hooks.policy.at_revision import config_at

    return config_at(git, rev, "--range").policy


def scan_fix_hint(findings: Sequence[Finding], *, server: bool = False) -> str:
    from repro_hooks.rules import fixes

    lines = [
        "These problems are in commits being "
        + ("pushed (rejected by the server's policy)." if server else "pushed or scanned."),
        *fixes({f.rule for f in findings}, history=True),
    ]
    if not server:
        lines.append(
            "Findings already in history can be recorded once: "
            "repro-hooks scan --all-history --write-baseline .repro-hooks-baseline.json"
        )
    return "\n".join(lines)
