"""Which commits a check covers: a range, the whole history, the ref updates a pre-push hook
gets from git (or from pre-commit's environment), or those a server's pre-receive hook gets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git


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

    @property
    def is_creation(self) -> bool:
        return is_null_sha(self.old)


def is_null_sha(sha: str) -> bool:
    return not sha.strip("0")


def parse_pre_push_lines(text: str) -> list[RefUpdate]:
    """git's pre-push stdin: `<local ref> <local sha> <remote ref> <remote sha>` per line."""
    updates = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=3)  # a local ref may be an expression with spaces
        if len(parts) != 4:
            raise ReproHooksError(f"pre-push input: expected 4 fields, got {line!r}")
        _local_ref, local_sha, remote_ref, remote_sha = parts
        updates.append(RefUpdate(remote_ref, remote_sha, local_sha))
    return updates


def parse_pre_receive_lines(text: str) -> list[RefUpdate]:
    """git's pre-receive stdin: `<old> <new> <ref>` per line."""
    updates = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3:
            raise ReproHooksError(f"pre-receive input: expected 3 fields, got {line!r}")
        old, new, ref = parts
        updates.append(RefUpdate(ref, old, new))
    return updates


def pre_push_rev_args(
    updates: Sequence[RefUpdate], remote: str, known: Iterable[str]
) -> list[str] | None:
    """`git rev-list` arguments for the commits a push sends, or None when it sends none.

    `known` holds the shas of the remote's tips that exist locally. An update onto a known tip
    covers `new ^old`; a new ref (or a tip we do not have) covers what no ref of `remote` has.
    All exclusions are things the remote already has, so one rev-list serves every ref.
    """
    known = set(known)
    positives = [u.new for u in updates if not u.is_deletion]
    if not positives:
        return None
    negatives = [f"^{u.old}" for u in updates if not u.is_deletion and u.old in known]
    unknown_base = any(not u.is_deletion and u.old not in known for u in updates)
    tail = ["--not", f"--remotes={remote}"] if unknown_base else []
    return [*dict.fromkeys(positives), *dict.fromkeys(negatives), *tail]


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


def commit_tips(git: Git, shas: Iterable[str]) -> set[str]:
    """Of the given object names, those this repository has as a commit or tag (one process)."""
    wanted = [s for s in shas if not is_null_sha(s)]
    info = git.object_info(wanted)
    return {s for s in wanted if (o := info.get(s)) is not None and o.type in ("commit", "tag")}


def commits_to_check(
    git: Git,
    *,
    rev_range: str | None,
    all_history: bool,
    pre_push: tuple[str, ...] | None,
    stdin_text: str | None,
    env: Mapping[str, str],
) -> list[str] | None:
    """`git rev-list` arguments from exactly one source, or None when the source selects no
    commit (a push that only deletes refs). Sources: --range, --all-history, a plain pre-push
    hook's stdin and arguments (`pre_push` = (remote, url)), or pre-commit's pre-push
    environment (PRE_COMMIT_FROM_REF/TO_REF, PRE_COMMIT_LOCAL_BRANCH + PRE_COMMIT_REMOTE_NAME;
    under pre-commit with none of these, as `pre-commit run --hook-stage pre-push` in CI: HEAD's
    whole history).
    """
    from repro_hooks.large_files.check import push_range_from_env

    chosen = [rev_range is not None, all_history, pre_push is not None]
    if sum(chosen) > 1:
        raise ReproHooksError("give one of --range, --all-history and --pre-push")
    if rev_range is not None:
        return range_rev_args(rev_range)
    if all_history:
        return ["--all"]
    if pre_push is not None:
        remote = pre_push[0] if pre_push else "origin"
        updates = parse_pre_push_lines(stdin_text or "")
        known = commit_tips(git, (u.old for u in updates))
        return pre_push_rev_args(updates, remote, known)
    from_env = push_range_from_env(env)
    if from_env is None:
        if env.get("PRE_COMMIT"):
            # `pre-commit run --all-files --hook-stage pre-push` (the CI spelling) sets no
            # range: check what the checkout holds, HEAD's whole history (a baseline or
            # `--range BASE..HEAD` in the hook's args narrows it).
            return ["HEAD"]
        raise ReproHooksError(
            "nothing to scan: give --range A..B, --all-history or --pre-push "
            "(or run as pre-commit's pre-push hook)"
        )
    return from_env
