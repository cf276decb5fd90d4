"""What this repository says about a commit a model version is linked to: is it here, is it on
the protected branch, what does it record, is its data in the DVC remote, does its tree pass the
policy. Asks git (batched) and DVC's remote code; the verdict is deploy/gate.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from repro_hooks.deploy.gate import CommitFacts, StampFacts
from repro_hooks.dvc.names import is_dvc_file
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Blob, Git
from repro_hooks.policy.config import Policy
from repro_hooks.report import Finding, display_path

SHALLOW_HINT = "fetch the history first: git fetch --unshallow (in CI: a full-depth checkout)"


# ---- the protected branch ---------------------------------------------------------------------


def _remote_names(git: Git) -> list[str]:
    out = git.try_run("remote")
    return sorted(out.decode("utf-8", "replace").split()) if out else []


BRANCH_HINT = "give --branch REF, or set [tool.repro-hooks.deploy] branch"


def protected_branch(
    git: Git, option: str | None, configured: str | None = None
) -> tuple[str, str]:
    """(name, sha) of the protected branch: --branch REF; else the configured name
    (`[tool.repro-hooks.deploy] branch`: the remote's branch of that name, else that ref);
    else the remote's default branch as last fetched: `refs/remotes/<remote>/HEAD` only when it
    is a symbolic ref to one of the remote's branches (`origin` first), else its `main` or
    `master` when exactly one of them exists. A plain ref named HEAD (a pushed branch called
    HEAD, fetched by `+refs/heads/*:refs/remotes/origin/*`) is never the protected branch;
    anything ambiguous is a usage error asking for --branch."""
    if option is not None:
        return _named_branch(git, option, "--branch")
    remotes = _remote_names(git)
    if configured is not None:
        remote = "origin" if "origin" in remotes else (remotes[0] if remotes else None)
        if remote is not None and configured != "HEAD":
            ref = f"refs/remotes/{remote}/{configured}"
            sha = git.try_run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
            if sha and git.try_run("symbolic-ref", "--quiet", ref) is None:
                return f"{remote}/{configured}", sha.decode().strip()
        return _named_branch(git, configured, "[tool.repro-hooks.deploy] branch")
    if not remotes:
        raise ReproHooksError(
            f"no git remote: cannot tell the protected branch (add the remote, or {BRANCH_HINT})"
        )
    remote = "origin" if "origin" in remotes else remotes[0]
    prefix = f"refs/remotes/{remote}/"
    head_ref = f"{prefix}HEAD"
    head_sha = git.try_run("rev-parse", "--verify", "--quiet", f"{head_ref}^{{commit}}")
    if head_sha:
        target = git.try_run("symbolic-ref", "--quiet", head_ref)
        if target is None:
            raise ReproHooksError(
                f"{head_ref} is a plain ref, not the remote's default branch (was a branch "
                f"named HEAD pushed?): cannot tell the protected branch; {BRANCH_HINT}"
            )
        name = target.decode().strip()
        if not name.startswith(prefix) or name == head_ref:
            raise ReproHooksError(
                f"{head_ref} points at {name}, not at a branch of {remote!r}: cannot tell the "
                f"protected branch; {BRANCH_HINT}"
            )
        return name.removeprefix("refs/remotes/"), head_sha.decode().strip()
    found = []
    for branch in ("main", "master"):
        ref = f"{prefix}{branch}"
        sha = git.try_run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if sha and git.try_run("symbolic-ref", "--quiet", ref) is None:
            found.append((f"{remote}/{branch}", sha.decode().strip()))
    if len(found) == 1:
        return found[0]
    if found:
        raise ReproHooksError(
            f"remote {remote!r} has both main and master and no default branch fetched: "
            f"cannot tell the protected branch; {BRANCH_HINT}"
        )
    raise ReproHooksError(
        f"remote {remote!r}: no default branch fetched (git fetch {remote}, then "
        f"git remote set-head {remote} --auto; or give --branch REF)"
    )


def _named_branch(git: Git, name: str, what: str) -> tuple[str, str]:
    if name.startswith("-"):
        raise ReproHooksError(f"{what}: expected a ref, got {name!r}")
    sha = git.try_run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}")
    if not sha:
        raise ReproHooksError(f"{what} {name}: no such branch or commit here")
    return name, sha.decode().strip()


def is_shallow(git: Git) -> bool:
    return git.try_run("rev-parse", "--is-shallow-repository") == b"true\n"


# ---- the commit's tree ---------------------------------------------------------------------


def tree_policy_findings(git: Git, policy: Policy, commit: str, blobs: list[Blob]) -> list[Finding]:
    """The large-file, LFS, data-pattern and DVC-file rules over the commit's whole tree (what
    `repro-hooks scan` checks for what a commit introduces), plus outputs recorded twice: the
    history scan's own check, with the tree as the blobs."""
    from repro_hooks.history.review import blob_findings

    return blob_findings(git, policy, [commit], blobs, push_total=False)[0]


def tree_remote_findings(git: Git, commit: str, blobs: list[Blob]) -> list[Finding]:
    """Every DVC object the commit's tree references must be in its DVC remote (the same
    machinery as check-dvc-remote: DVC's own remote code)."""
    from repro_hooks.dvc.remote import (
        CommitStages,
        missing_from_remotes,
        referenced_outputs,
        remote_findings,
        uncached_outputs,
        uncommitted_findings,
    )

    dvc_blobs = [b for b in blobs if not b.is_gitlink and is_dvc_file(display_path(b.path))]
    if not dvc_blobs:
        return []
    contents = git.read_blobs(b.sha for b in dvc_blobs)
    stages = CommitStages(git)  # cache: false outputs are in git, never asked of a remote
    stages.prefetch(dvc_blobs)
    uncommitted = uncommitted_findings(git, uncached_outputs(dvc_blobs, contents, stages))
    referenced = referenced_outputs(dvc_blobs, contents, stages)
    if not referenced:
        return uncommitted
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: checking DVC data needs a work tree with .dvc/")
    return remote_findings(missing_from_remotes(Path(git.root), referenced)) + uncommitted


def tree_unpushed_findings(git: Git, blobs: list[Blob]) -> list[Finding]:
    """The commit's `push: false` outputs (in a .dvc file, or in dvc.yaml for a dvc.lock
    output): `dvc push` never sends them, so no DVC remote holds them (`dvc-push-false`)."""
    from repro_hooks.dvc.remote import CommitStages, unpushed_findings, unpushed_outputs

    dvc_blobs = [b for b in blobs if not b.is_gitlink and is_dvc_file(display_path(b.path))]
    if not dvc_blobs:
        return []
    contents = git.read_blobs(b.sha for b in dvc_blobs)
    stages = CommitStages(git)
    stages.prefetch(dvc_blobs)
    return unpushed_findings(unpushed_outputs(dvc_blobs, contents, stages))


# ---- the run's stamp against this repository ------------------------------------------------


def stamp_facts(
    git: Git, run_tags: Mapping[str, str], commit: str, holders: tuple[str, ...]
) -> StampFacts:
    """What this repository says about a stamped run's stamp: is its HEAD the linked commit
    or in its history, and (a stage run) does the commit's dvc.lock record its stage."""
    from repro_hooks.links.inputs import committed_lock_stage
    from repro_hooks.links.stamp import HEAD_TAG, STAGE_TAG

    head = str(run_tags.get(HEAD_TAG, "")).strip().lower()
    state = ""
    if head and all(c in "0123456789abcdef" for c in head) and len(head) in (40, 64):
        if git.try_run("cat-file", "-e", f"{head}^{{commit}}") is None:
            state = "missing"
        elif git.try_run("merge-base", "--is-ancestor", head, commit) is None:
            state = "unrelated"
        else:
            state = "ancestor"
    recorded = None
    address = str(run_tags.get(STAGE_TAG, "")).strip()
    if address:
        recorded = committed_lock_stage(git, commit, address) is not None
    return StampFacts(head=state, holders=holders, stage_recorded=recorded)


# ---- everything about one commit -------------------------------------------------------------


def commit_facts(
    git: Git,
    commit: str,
    branch: tuple[str, str],
    policy: Policy,
    *,
    check_remote: bool = True,
    allow_push_false: bool = False,
) -> CommitFacts:
    """Gather what the gate needs about `commit`. A commit missing from a shallow clone is a
    usage error (the check cannot be made), not a failed check."""
    from repro_hooks.links.record import committed_outputs

    name, tip = branch
    present = git.try_run("cat-file", "-e", f"{commit}^{{commit}}") is not None
    if not present:
        if is_shallow(git):
            raise ReproHooksError(
                f"commit {commit[:12]}: not in this shallow clone; {SHALLOW_HINT}"
            )
        return CommitFacts(commit, present=False, branch=name)
    on_branch = git.try_run("merge-base", "--is-ancestor", commit, tip) is not None
    if not on_branch and is_shallow(git):
        raise ReproHooksError(
            f"commit {commit[:12]}: cannot tell whether it is on {name} in a shallow clone; "
            f"{SHALLOW_HINT}"
        )
    blobs = git.tree(commit, commit=commit)  # as if the commit introduced its whole tree
    outputs, _problems = committed_outputs(git, commit, blobs)  # problems: malformed-dvc findings
    remote = tree_remote_findings(git, commit, blobs) if check_remote else []
    policy_found = tree_policy_findings(git, policy, commit, blobs)
    return CommitFacts(
        commit,
        present=True,
        on_branch=on_branch,
        branch=name,
        outputs=tuple(outputs),
        remote_findings=tuple(remote),
        policy_findings=tuple(policy_found),
        unpushed=tuple(tree_unpushed_findings(git, blobs)),
        allow_push_false=allow_push_false,
    )
