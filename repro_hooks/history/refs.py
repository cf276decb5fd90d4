"""Which commits a check covers: a range, the whole history, the ref updates a pre-push hook
gets from git (or from pre-commit's environment), or those a server's pre-receive hook gets."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.report import Finding


@dataclass(frozen=True)
class RefUpdate:
    """One ref a push changes. `old` is what the other side has (zeros: nothing), `new` what it
    will have (zeros: the ref is deleted)."""

    ref: str
    old: str
    new: str

    @property
    def is_deletion(self) -> bool:
        return is_null_sha(self.new)


def is_null_sha(sha: str) -> bool:
    return not sha.strip("0")


def parse_pre_push_lines(text: str) -> list[RefUpdate]:
    """git's pre-push stdin: `<local ref> <local sha> <remote ref> <remote sha>` per line."""
    updates = []
    for line in text.split("\n"):  # git's lines: never splitlines() (\x85, U+2028 in a ref)
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=3)  # a local ref may be an expression with spaces
        if len(parts) != 4:
            raise ReproHooksError(f"pre-push input: expected 4 fields, got {line!r}")
        _local_ref, local_sha, remote_ref, remote_sha = parts
        updates.append(RefUpdate(remote_ref, remote_sha, local_sha))
    return updates


def ref_name_findings(updates: list[RefUpdate]) -> list[Finding]:
    """A branch named HEAD is refused (deleting one is fine): every clone that fetches all
    branches (`+refs/heads/*:refs/remotes/origin/*`, as actions/checkout with fetch-depth 0
    does) gets it as a plain refs/remotes/origin/HEAD, which tools take for the default
    branch."""
    return [
        Finding(
            u.ref,
            "ref-name",
            "a branch named HEAD becomes a plain refs/remotes/origin/HEAD in clones that fetch "
            "every branch, where it passes for the default branch: use another name",
        )
        for u in updates
        if u.ref == "refs/heads/HEAD" and not u.is_deletion
    ]


def parse_pre_receive_lines(text: str) -> list[RefUpdate]:
    """git's pre-receive stdin: `<old> <new> <ref>` per line."""
    updates = []
    for line in text.split("\n"):  # git's lines: never splitlines() (\x85, U+2028 in a ref)
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3:
            raise ReproHooksError(f"pre-receive input: expected 3 fields, got {line!r}")
        old, new, ref = parts
        updates.append(RefUpdate(ref, old, new))
    return updates


def pre_push_rev_args(
    updates: Sequence[RefUpdate], known: Iterable[str], remote_has: Iterable[str] | None = None
) -> list[str] | None:
    """`git rev-list` arguments for the commits a push sends, or None when it sends none.

    `known` holds the old shas git handed the hook (the remote's tips, as the remote said) that
    exist locally. An update onto a known tip covers `new ^old`. A new ref (or an old tip we do
    not have) covers what none of `remote_has` reaches: the remote's tips as `git ls-remote`
    reported them, of those that exist locally. Local remote-tracking refs are never used: they
    may be stale (a branch deleted on the server stays as origin/x), and trusting them would
    let the deleted branch's commits through. `remote_has` None (the remote could not be asked)
    excludes nothing more: check more, not less.
    """
    known = set(known)
    positives = [u.new for u in updates if not u.is_deletion]
    if not positives:
        return None
    negatives = [f"^{u.old}" for u in updates if not u.is_deletion and u.old in known]
    unknown_base = any(not u.is_deletion and u.old not in known for u in updates)
    if unknown_base and remote_has is not None:
        negatives += [f"^{sha}" for sha in sorted(set(remote_has))]
    return [*dict.fromkeys(positives), *dict.fromkeys(negatives)]


def remote_tips(git: Git, remote: str) -> set[str] | None:
    """The shas the remote's refs point at (and, for tags, the objects they peel to), as the
    remote says right now (`git ls-remote`), or None when it cannot be asked."""
    if not remote or remote.startswith("-"):
        return None
    out = git.try_run("ls-remote", "--", remote)
    if out is None:
        return None
    return {line.split("\t", 1)[0] for line in out.decode("utf-8", "replace").split("\n") if line}


def local_commits(git: Git, shas: Iterable[str]) -> set[str]:
    """Of the given object names, those this repository has as commits (one `cat-file
    --batch-check`): what can stand after `^` in a rev-list. (`ls-remote` lists a tag's peeled
    commit too; a ref to a blob or tree excludes nothing.)"""
    wanted = [s for s in shas if not is_null_sha(s)]
    info = git.object_info(wanted)
    return {s for s in wanted if (o := info.get(s)) is not None and o.type == "commit"}


def pre_receive_rev_args(updates: Sequence[RefUpdate]) -> list[str] | None:
    """`git rev-list` arguments for the commits a push brings to a server: those reachable from a
    new tip and from no existing ref (the refs are not updated yet while pre-receive runs)."""
    positives = [u.new for u in updates if not u.is_deletion]
    if not positives:
        return None
    return [*dict.fromkeys(positives), "--not", "--all"]


def range_rev_args(rev_range: str) -> list[str]:
    if not rev_range or rev_range.startswith("-"):
        raise ReproHooksError(f"--range: expected A..B or a revision, got {rev_range!r}")
    return [rev_range]


@dataclass(frozen=True)
class Selection:
    """What a check covers: `git rev-list` arguments, and the ref each tip stands for (tip sha
    or revision as given -> ref name), so that a refusal can name the ref."""

    rev_args: list[str]
    ref_names: dict[str, str]


class Source(enum.Enum):
    """Where the commits to check come from."""

    RANGE = "range"  # --range A..B
    ALL_HISTORY = "all-history"  # --all-history
    PRE_PUSH = "pre-push"  # a plain pre-push hook: git's lines on stdin, REMOTE URL as arguments
    PUSH_TO_REMOTE = "push-to-remote"  # pre-commit's pre-push: the tip, less what the remote has
    GIVEN_RANGE = "given-range"  # pre-commit's --from-ref/--to-ref with no remote: as given
    HEAD_HISTORY = "head-history"  # pre-commit's pre-push stage with no range (CI): HEAD's


@dataclass(frozen=True)
class CommitSource:
    """The chosen source and what it needs: `revision` (the range, or the pushed tip), `base`
    (the given range's start), `remote` (asked with `git ls-remote`), `ref_name` (what the tip
    stands for)."""

    source: Source
    revision: str | None = None
    base: str | None = None
    remote: str | None = None
    ref_name: str | None = None


def commit_source(
    *,
    rev_range: str | None,
    all_history: bool,
    pre_push: tuple[str, ...] | None,
    env: Mapping[str, str],
) -> CommitSource:
    """Exactly one source, from the options (--range, --all-history, --pre-push with the hook's
    `(remote, url)` arguments) or else pre-commit's pre-push environment. pre-commit forwards one
    ref (the first of the push) and derives PRE_COMMIT_FROM_REF from local remote-tracking refs
    when the remote ref is new, which may be stale: so with a remote in the environment the
    exclusions come from `git ls-remote`, never from FROM_REF. Without a remote (`pre-commit run
    --from-ref A --to-ref B`) the given range is the user's own and is used as is. Under
    pre-commit with no range at all (`pre-commit run --hook-stage pre-push`, as in CI): HEAD's
    whole history. Raises ReproHooksError for conflicting options or nothing to check."""
    chosen = [rev_range is not None, all_history, pre_push is not None]
    if sum(chosen) > 1:
        raise ReproHooksError("give one of --range, --all-history and --pre-push")
    if rev_range is not None:
        return CommitSource(Source.RANGE, range_rev_args(rev_range)[0])
    if all_history:
        return CommitSource(Source.ALL_HISTORY)
    if pre_push is not None:
        hook_remote = pre_push[1] if len(pre_push) > 1 else pre_push[0] if pre_push else "origin"
        return CommitSource(Source.PRE_PUSH, remote=hook_remote)
    from_ref, to_ref = env.get("PRE_COMMIT_FROM_REF"), env.get("PRE_COMMIT_TO_REF")
    local = env.get("PRE_COMMIT_LOCAL_BRANCH")
    remote = env.get("PRE_COMMIT_REMOTE_URL") or env.get("PRE_COMMIT_REMOTE_NAME")
    tip = to_ref or local
    if not tip and not from_ref and env.get("PRE_COMMIT"):
        # `pre-commit run --all-files --hook-stage pre-push` (the CI spelling) sets no range:
        # check what the checkout holds, HEAD's whole history (a baseline or `--range
        # BASE..HEAD` in the hook's args narrows it)
        return CommitSource(Source.HEAD_HISTORY)
    if not tip or not (remote or from_ref):
        raise ReproHooksError(
            "nothing to scan: give --range A..B, --all-history or --pre-push "
            "(or run as pre-commit's pre-push hook)"
        )
    name = env.get("PRE_COMMIT_REMOTE_BRANCH") or local or tip
    if not remote:
        return CommitSource(Source.GIVEN_RANGE, tip, base=from_ref, ref_name=name)
    return CommitSource(Source.PUSH_TO_REMOTE, tip, remote=remote, ref_name=name)


def select_commits(
    git: Git,
    *,
    rev_range: str | None,
    all_history: bool,
    pre_push: tuple[str, ...] | None,
    stdin_text: str | None,
    env: Mapping[str, str],
) -> Selection | None:
    """The commits to check from exactly one source (`commit_source`), or None when the source
    selects no commit (a push that only deletes refs)."""
    chosen = commit_source(rev_range=rev_range, all_history=all_history, pre_push=pre_push, env=env)
    return resolve(git, chosen, stdin_text)


def resolve(git: Git, chosen: CommitSource, stdin_text: str | None) -> Selection | None:
    """The commits a source selects (asking git, and the remote where the source needs it), or
    None when it selects none (a push that only deletes refs)."""
    tip, name = chosen.revision, chosen.ref_name
    if chosen.source is Source.RANGE:
        assert tip is not None
        return Selection([tip], {})
    if chosen.source is Source.ALL_HISTORY:
        return Selection(["--all"], {})
    if chosen.source is Source.HEAD_HISTORY:
        return Selection(["HEAD"], {})
    if chosen.source is Source.PRE_PUSH:
        assert chosen.remote is not None
        return pre_push_selection(git, parse_pre_push_lines(stdin_text or ""), chosen.remote)
    assert tip is not None
    assert name is not None
    if chosen.source is Source.GIVEN_RANGE:
        return Selection([tip, f"^{chosen.base}"], {tip: name})
    assert chosen.remote is not None
    tips = remote_tips(git, chosen.remote)
    negatives = sorted(local_commits(git, tips)) if tips is not None else []
    return Selection([tip, *(f"^{sha}" for sha in negatives)], {tip: name})


def pre_push_selection(git: Git, updates: Sequence[RefUpdate], remote: str) -> Selection | None:
    """A plain pre-push hook's selection: git hands the hook every ref of the push with the
    remote's old sha for each; only a new ref (or an old tip we lack) needs `git ls-remote`."""
    known = local_commits(git, (u.old for u in updates))
    needs_remote = any(not u.is_deletion and u.old not in known for u in updates)
    remote_has = None
    if needs_remote:
        tips = remote_tips(git, remote)
        remote_has = local_commits(git, tips) if tips is not None else None
    rev_args = pre_push_rev_args(updates, known, remote_has)
    if rev_args is None:
        return None
    return Selection(rev_args, {u.new: u.ref for u in reversed(updates) if not u.is_deletion})


def commits_to_check(
    git: Git,
    *,
    rev_range: str | None,
    all_history: bool,
    pre_push: tuple[str, ...] | None,
    stdin_text: str | None,
    env: Mapping[str, str],
) -> list[str] | None:
    """`select_commits`, as `git rev-list` arguments only."""
    chosen = select_commits(
        git,
        rev_range=rev_range,
        all_history=all_history,
        pre_push=pre_push,
        stdin_text=stdin_text,
        env=env,
    )
    return None if chosen is None else chosen.rev_args
