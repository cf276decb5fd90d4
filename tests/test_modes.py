"""Core: how each command chooses what to check, from its options and the environment alone
(pre-commit's commit and pre-push stages, a plain pre-push hook, CI, a user's options). Pure
functions: no git, no subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro_hooks.errors import ReproHooksError
from repro_hooks.history.refs import CommitSource, Source, commit_source
from repro_hooks.history.run import HandoffRole, ScanOptions, handoff_role
from repro_hooks.large_files.run import Selection, choose_source
from repro_hooks.large_files.run import Source as Blobs

PUSH = {"PRE_COMMIT": "1", "PRE_COMMIT_FROM_REF": "a1", "PRE_COMMIT_TO_REF": "b2"}
NEW_BRANCH = {
    "PRE_COMMIT": "1",
    "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/x",
    "PRE_COMMIT_REMOTE_NAME": "origin",
}


@pytest.mark.parametrize(
    ("env", "paths", "check_all", "expected"),
    [
        pytest.param({}, (), False, Selection(Blobs.STAGED), id="plain: what is staged"),
        pytest.param({}, ("a.bin",), False, Selection(Blobs.PATHS), id="plain: the user's paths"),
        pytest.param({}, ("a.bin",), True, Selection(Blobs.INDEX), id="--all over paths"),
        pytest.param({"CI": "true"}, (), False, Selection(Blobs.STAGED), id="CI alone: staged"),
        pytest.param(
            {"PRE_COMMIT": "1"}, ("a.bin",), False, Selection(Blobs.PRE_COMMIT), id="commit stage"
        ),
        pytest.param(
            {"PRE_COMMIT": "1"}, (), False, Selection(Blobs.PRE_COMMIT), id="commit stage, no names"
        ),
        pytest.param(
            {"PRE_COMMIT": "1"}, ("a.bin",), True, Selection(Blobs.INDEX), id="commit stage, --all"
        ),
        pytest.param(
            {"PRE_COMMIT": "true"}, ("a.bin",), False, Selection(Blobs.PATHS), id="PRE_COMMIT!=1"
        ),
        pytest.param(
            PUSH, ("a.bin",), False, Selection(Blobs.PUSH, ("b2", "^a1")), id="pre-push: range"
        ),
        pytest.param(
            PUSH, (), True, Selection(Blobs.PUSH, ("b2", "^a1")), id="pre-push over --all"
        ),
        pytest.param(
            {k: v for k, v in PUSH.items() if k != "PRE_COMMIT"},
            (),
            False,
            Selection(Blobs.PUSH, ("b2", "^a1")),
            id="pre-push range without PRE_COMMIT",
        ),
        pytest.param(
            NEW_BRANCH,
            (),
            False,
            Selection(Blobs.PUSH, ("refs/heads/x", "--not", "--remotes=origin")),
            id="pre-push: a new branch",
        ),
        pytest.param(
            {"PRE_COMMIT": "1", "PRE_COMMIT_FROM_REF": "a1"},
            ("a.bin",),
            False,
            Selection(Blobs.PATHS),
            id="pre-push without TO_REF: no range, and no commit stage either",
        ),
        pytest.param(
            {"PRE_COMMIT": "1", "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/x"},
            (),
            False,
            Selection(Blobs.STAGED),
            id="new branch without remote: no range, and no commit stage either",
        ),
    ],
)
def test_large_files_source(
    env: dict[str, str], paths: tuple[str, ...], check_all: bool, expected: Selection
) -> None:
    assert choose_source(paths, check_all=check_all, env=env) == expected


@pytest.mark.parametrize(
    ("source", "reads_index", "commit_total"),
    [
        (Blobs.PRE_COMMIT, True, True),
        (Blobs.PATHS, True, False),
        (Blobs.STAGED, False, True),
        (Blobs.INDEX, True, False),
        (Blobs.PUSH, False, False),
    ],
)
def test_large_files_source_needs(source: Blobs, reads_index: bool, commit_total: bool) -> None:
    """Only one commit's blobs are held to the total-size limit; the index listing is started
    early only where it is read."""
    assert Selection(source).reads_index is reads_index
    assert Selection(source).commit_total is commit_total


def _source(
    env: dict[str, str] | None = None,
    *,
    rev_range: str | None = None,
    all_history: bool = False,
    pre_push: tuple[str, ...] | None = None,
) -> CommitSource:
    return commit_source(
        rev_range=rev_range, all_history=all_history, pre_push=pre_push, env=env or {}
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"rev_range": "main..HEAD"}, CommitSource(Source.RANGE, "main..HEAD"), id="range"
        ),
        pytest.param(
            {"rev_range": "main..HEAD", "env": PUSH},
            CommitSource(Source.RANGE, "main..HEAD"),
            id="an option wins over pre-commit's environment",
        ),
        pytest.param({"all_history": True}, CommitSource(Source.ALL_HISTORY), id="all history"),
        pytest.param(
            {"pre_push": ("origin", "git@host:r.git")},
            CommitSource(Source.PRE_PUSH, remote="git@host:r.git"),
            id="plain pre-push hook: the URL is asked",
        ),
        pytest.param(
            {"pre_push": ("origin",)},
            CommitSource(Source.PRE_PUSH, remote="origin"),
            id="plain pre-push, remote only",
        ),
        pytest.param(
            {"pre_push": ()},
            CommitSource(Source.PRE_PUSH, remote="origin"),
            id="plain pre-push, no arguments",
        ),
        pytest.param(
            {"env": {**PUSH, "PRE_COMMIT_REMOTE_NAME": "origin"}},
            CommitSource(Source.PUSH_TO_REMOTE, "b2", remote="origin", ref_name="b2"),
            id="pre-commit pre-push: exclusions from the remote, never FROM_REF",
        ),
        pytest.param(
            {
                "env": {
                    **PUSH,
                    "PRE_COMMIT_REMOTE_NAME": "origin",
                    "PRE_COMMIT_REMOTE_URL": "/srv/r.git",
                    "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main",
                    "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/dev",
                }
            },
            CommitSource(
                Source.PUSH_TO_REMOTE, "b2", remote="/srv/r.git", ref_name="refs/heads/main"
            ),
            id="the URL over the remote's name, the remote branch names the tip",
        ),
        pytest.param(
            {"env": NEW_BRANCH},
            CommitSource(
                Source.PUSH_TO_REMOTE, "refs/heads/x", remote="origin", ref_name="refs/heads/x"
            ),
            id="pre-commit pre-push of a new branch",
        ),
        pytest.param(
            {"env": PUSH},
            CommitSource(Source.GIVEN_RANGE, "b2", base="a1", ref_name="b2"),
            id="pre-commit run --from-ref --to-ref: the range as given",
        ),
        pytest.param(
            {"env": {"PRE_COMMIT": "1"}},
            CommitSource(Source.HEAD_HISTORY),
            id="pre-commit's pre-push stage with no range (CI): HEAD's history",
        ),
        pytest.param(
            {"env": {"PRE_COMMIT": "1", "CI": "true", "PRE_COMMIT_REMOTE_NAME": "origin"}},
            CommitSource(Source.HEAD_HISTORY),
            id="CI with a remote but no range: HEAD's history",
        ),
    ],
)
def test_commit_source(kwargs: dict[str, object], expected: CommitSource) -> None:
    assert _source(**kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"rev_range": "a..b", "all_history": True}, "give one of", id="--range --all-history"
        ),
        pytest.param({"rev_range": "a..b", "pre_push": ()}, "give one of", id="--range --pre-push"),
        pytest.param({"all_history": True, "pre_push": ()}, "give one of", id="--all --pre-push"),
        pytest.param({"rev_range": "--all"}, "--range: expected A..B", id="range like an option"),
        pytest.param({"rev_range": ""}, "--range: expected A..B", id="empty range"),
        pytest.param({}, "nothing to scan", id="no option, no pre-commit"),
        pytest.param({"env": {"CI": "true"}}, "nothing to scan", id="CI alone"),
        pytest.param(
            {"env": {"PRE_COMMIT": "1", "PRE_COMMIT_FROM_REF": "a1"}},
            "nothing to scan",
            id="FROM_REF without a tip",
        ),
        pytest.param(
            {"env": {"PRE_COMMIT_TO_REF": "b2"}}, "nothing to scan", id="a tip without a base"
        ),
    ],
)
def test_commit_source_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ReproHooksError, match=message):
        _source(**kwargs)  # type: ignore[arg-type]


LEGACY = {"PRE_COMMIT_RUNNING_LEGACY": "1"}


@pytest.mark.parametrize(
    ("opts", "env", "role"),
    [
        pytest.param(
            ScanOptions(pre_push=True), LEGACY, HandoffRole.SHIM, id="shim under pre-commit"
        ),
        pytest.param(ScanOptions(pre_push=True), {}, HandoffRole.NONE, id="shim on its own"),
        pytest.param(ScanOptions(), PUSH, HandoffRole.HOOK, id="pre-commit's hook"),
        pytest.param(ScanOptions(), LEGACY, HandoffRole.HOOK, id="hook: legacy flag is the shim's"),
        pytest.param(
            ScanOptions(pre_push=True, text_output=False), LEGACY, HandoffRole.NONE, id="shim, json"
        ),
        pytest.param(ScanOptions(text_output=False), PUSH, HandoffRole.NONE, id="hook, json"),
        pytest.param(
            ScanOptions(baseline=Path("b.json")), PUSH, HandoffRole.NONE, id="hook, baseline"
        ),
        pytest.param(
            ScanOptions(pre_push=True, write_baseline=Path("b.json")),
            LEGACY,
            HandoffRole.NONE,
            id="shim, writing a baseline",
        ),
        pytest.param(ScanOptions(rev_range="a..b"), PUSH, HandoffRole.NONE, id="a range"),
        pytest.param(ScanOptions(all_history=True), PUSH, HandoffRole.NONE, id="all history"),
    ],
)
def test_handoff_role(opts: ScanOptions, env: dict[str, str], role: HandoffRole) -> None:
    """Only plain text output of one push is handed from the shim to pre-commit's hook."""
    assert handoff_role(opts, env) is role
