"""tag-mlflow's pure core, in-process: tag keys, credentials, run choice, replays, stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_hooks.git import Git
from repro_hooks.links.head import replay_reason
from repro_hooks.links.queue import Job, LinkQueue
from repro_hooks.links.record import MAX_TAG_KEY, committed_outputs, dvc_tag_key, fingerprint
from repro_hooks.links.rules import choose_runs
from repro_hooks.tracking.credentials import redact, secrets_in, strip_credentials
from repro_hooks.tracking.mlflow import resolve_tracking_store
from repro_hooks.tracking.port import RunCandidate
from tests.helpers import commit, git, write

_KEY_RE = __import__("re").compile(r"^[/\w.\- :]*$")


def mlflow_accepts(key: str) -> bool:
    """MLflow's own tag-key rules (mlflow.utils.validation), restated without importing it."""
    import posixpath

    norm = posixpath.normpath(key)
    return (
        bool(_KEY_RE.match(key))
        and len(key) <= MAX_TAG_KEY
        and norm == key
        and not norm.startswith(("..", "/"))
    )


@pytest.mark.parametrize(
    ("path", "key"),
    [
        pytest.param("data", "dvc.data", id="plain"),
        pytest.param("data/raw.csv", "dvc.data/raw.csv", id="nested"),
        pytest.param("a b/c-d_e.f", "dvc.a b/c-d_e.f", id="allowed-punctuation"),
        pytest.param("a:b", "dvc.a:3Ab", id="colon-is-the-escape"),
        pytest.param("x+y@z", "dvc.x:2By:40z", id="disallowed"),
        pytest.param("a..b", "dvc.a.:2Eb", id="double-dot"),
        pytest.param(".hidden", "dvc.:2Ehidden", id="leading-dot"),
        pytest.param("fingerprint", "dvc.:66ingerprint", id="not-the-fingerprint-tag"),
        pytest.param("日本/ü", "dvc.日本/ü", id="unicode-word-chars"),
        pytest.param("tab\there", "dvc.tab:09here", id="control"),
    ],
)
def test_dvc_tag_key(path: str, key: str) -> None:
    assert dvc_tag_key(path) == key
    assert mlflow_accepts(key)


def test_long_key_is_stable_distinct_and_short_enough() -> None:
    a, b = "d/" + "x" * 400, "d/" + "x" * 399 + "y"
    assert len(dvc_tag_key(a)) <= MAX_TAG_KEY
    assert dvc_tag_key(a) == dvc_tag_key(a)
    assert dvc_tag_key(a) != dvc_tag_key(b)
    assert mlflow_accepts(dvc_tag_key(a))


_segment = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=40
).filter(lambda s: s not in (".", ".."))


@settings(max_examples=300, deadline=None)
@given(st.lists(_segment, min_size=1, max_size=8), st.lists(_segment, min_size=1, max_size=8))
def test_keys_are_valid_and_one_to_one(p1: list[str], p2: list[str]) -> None:
    a, b = "/".join(p1), "/".join(p2)
    assert mlflow_accepts(dvc_tag_key(a))
    if a != b:
        assert dvc_tag_key(a) != dvc_tag_key(b)


def test_fingerprint_is_order_independent() -> None:
    pairs = [("a", "1" * 32), ("b", "2" * 32 + ".dir")]
    assert fingerprint(pairs) == fingerprint(reversed(pairs))
    assert fingerprint(pairs) != fingerprint([("a", "1" * 32)])


@pytest.mark.parametrize(
    ("uri", "stripped"),
    [
        ("http://user:pw@host:5000/x", "http://host:5000/x"),
        ("https://host/?token=abc&exp=1", "https://host/?exp=1"),
        ("https://host/?access_token=abc", "https://host/"),
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("databricks", "databricks"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
    ],
)
def test_strip_credentials(uri: str, stripped: str) -> None:
    assert strip_credentials(uri) == stripped


def test_redact_hides_uri_and_env_secrets() -> None:
    uri = "http://alice:hunter22@host/?token=tok-123"
    secrets = secrets_in(uri, {"MLFLOW_TRACKING_TOKEN": "envtoken"})
    text = f"failed: {uri} with envtoken and http://bob:pw@other/"
    clean = redact(text, secrets)
    for secret in ("hunter22", "tok-123", "envtoken", "bob:pw", "alice"):
        assert secret not in clean


def run(rid: str, linked: str | None = None, parent: str | None = None) -> RunCandidate:
    tags = {"mlflow.parentRunId": parent} if parent else {}
    return RunCandidate(rid, "0", 0, linked, None, tags=tags)


def judge(run: RunCandidate) -> str | None:
    return "does not qualify" if run.run_id.startswith("bad") else None


@pytest.mark.parametrize(
    ("runs", "policy", "expected", "reason"),
    [
        pytest.param([], "latest", [], "no run started", id="no-run"),
        pytest.param([run("r2"), run("r1")], "latest", ["r2"], "qualifying", id="newest"),
        pytest.param(
            [run("bad2"), run("r1")], "latest", ["r1"], "qualifying", id="newest-qualifying"
        ),
        pytest.param(
            [run("r2", linked="C")], "latest", ["r2"], "already linked to this", id="idempotent"
        ),
        pytest.param(
            [run("r2", linked="A"), run("r1")],
            "latest",
            [],
            "no qualifying run since",
            id="second-commit",
        ),
        pytest.param(
            [run("r2", linked="X"), run("r1")],
            "latest",
            ["r1"],
            "qualifying",
            id="other-branch-link",
        ),
        pytest.param(
            [run("c1", parent="p"), run("p")], "latest", ["p"], "qualifying", id="nested-skipped"
        ),
        pytest.param(
            [run("r3"), run("bad"), run("r2"), run("r1", linked="A"), run("r0")],
            "all-since-previous-commit",
            ["r3", "r2"],
            "qualifying",
            id="all-since-previous",
        ),
    ],
)
def test_choose_runs(
    runs: list[RunCandidate], policy: str, expected: list[str], reason: str
) -> None:
    choice = choose_runs(runs, "C", lambda sha: sha == "A", judge, policy)
    assert [r.run_id for r in choice.runs] == expected
    assert reason in choice.reason


def test_replay_reason(repo: Path) -> None:
    git_dir = repo / ".git"
    assert replay_reason(git_dir, {}) is None
    write(repo / "f", "1")
    commit(repo, "one")
    git(repo, "commit", "-q", "--amend", "--no-verify", "-m", "one again")
    assert replay_reason(git_dir, {}) == "the commit comes from an amend"
    (git_dir / "rebase-merge").mkdir()
    assert replay_reason(git_dir, {}) == "a rebase is in progress"
    (git_dir / "rebase-merge").rmdir()
    write(repo / "g", "2")
    commit(repo, "two")
    assert replay_reason(git_dir, {"GIT_REFLOG_ACTION": "rebase (pick)"}) is not None
    git(repo, "checkout", "-q", "-b", "side", "HEAD~1")
    git(repo, "cherry-pick", "main")
    assert replay_reason(git_dir, {}) == "the commit comes from cherry-pick"
    git(repo, "revert", "--no-edit", "HEAD")
    assert replay_reason(git_dir, {}) == "the commit comes from revert"


def test_resolve_tracking_store_never_creates(tmp_path: Path) -> None:
    assert resolve_tracking_store(tmp_path, None, None, {}) is None
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mlruns").mkdir()
    assert resolve_tracking_store(tmp_path, None, None, {}) is None  # no experiments in it
    write(tmp_path / "mlflow.db", b"")
    store = resolve_tracking_store(tmp_path, None, None, {})
    assert store is not None
    assert store.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    write(tmp_path / "mlruns" / "0" / "meta.yaml", "name: Default\n")
    store = resolve_tracking_store(tmp_path, None, None, {})
    assert store is not None
    assert store.uri.startswith("file://")
    env = {"MLFLOW_TRACKING_URI": "http://e"}
    assert resolve_tracking_store(tmp_path, None, "http://c", env).uri == "http://c"  # type: ignore[union-attr]
    assert resolve_tracking_store(tmp_path, "http://o", "http://c", env).uri == "http://o"  # type: ignore[union-attr]
    assert resolve_tracking_store(tmp_path, None, None, env).uri == "http://e"  # type: ignore[union-attr]


DVC_FILE = "outs:\n- md5: {md5}\n  size: 3\n  hash: md5\n  path: {path}\n"


def test_committed_outputs_come_from_the_commit(repo: Path) -> None:
    write(repo / "data.dvc", DVC_FILE.format(md5="a" * 32, path="data"))
    write(
        repo / "sub" / "dvc.yaml", "stages:\n  train:\n    cmd: python t.py\n    outs: [model.pt]\n"
    )
    write(
        repo / "sub" / "dvc.lock",
        "schema: '2.0'\nstages:\n  train:\n    cmd: python t.py\n    outs:\n"
        f"    - path: model.pt\n      hash: md5\n      md5: {'b' * 32}\n      size: 9\n",
    )
    write(repo / "broken.dvc", "outs: [")
    commit(repo, "data")
    head = git(repo, "rev-parse", "HEAD").strip()
    write(repo / "data.dvc", DVC_FILE.format(md5="c" * 32, path="data"))  # working tree differs
    outputs, problems = committed_outputs(Git.discover(repo), head)
    assert [(o.path, o.hash_value, o.source) for o in outputs] == [
        ("data", "a" * 32, "data.dvc"),
        ("sub/model.pt", "b" * 32, "sub/dvc.lock"),
    ]
    assert len(problems) == 1
    assert problems[0].startswith("broken.dvc:")


def test_queue_roundtrip_and_order(tmp_path: Path) -> None:
    queue = LinkQueue(tmp_path)
    jobs = [
        Job(
            id=queue.new_id("link"),
            kind="link",
            root="/r",
            tracking_uri="http://h",
            uri_origin="option",
            commit=c * 40,
        )
        for c in "ab"
    ]
    for job in jobs:
        queue.put(job)
    assert [j.commit for j in queue.jobs()] == ["a" * 40, "b" * 40]
    failed = queue.record_failure(jobs[0], "boom")
    assert queue.jobs()[0] == failed
    assert failed.attempts == 1
    queue.remove(jobs[0])
    assert [j.commit for j in queue.jobs()] == ["b" * 40]
    (queue.dir / "junk.json").write_text("{not json")
    assert len(queue.jobs()) == 1
    assert not [p for p in queue.dir.iterdir() if p.name.startswith(".tmp-")]


def test_commit_stage_command_never_imports_mlflow(repo: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom repro_hooks.cli import main\nrc = main(['tag-mlflow'])\n"
        "bad = [m for m in ('mlflow', 'dvc', 'sqlalchemy') if m in sys.modules]\n"
        "print(rc, bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
    )
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


def test_rewritten_pairs_from_stdin_reflog_and_patch_ids(repo: Path) -> None:
    from repro_hooks.links.enqueue import parse_rewrite_lines, rewritten_pairs

    g = Git.discover(repo)
    a, b = "a" * 40, "b" * 40
    assert parse_rewrite_lines(f"{a} {b}\n{a} {b} extra\nnot a line\n".encode()) == [(a, b)] * 2
    assert rewritten_pairs(g, repo / ".git", "amend", f"{a} {b}\n".encode()) == [(a, b)]

    write(repo / "f.txt", "one")
    commit(repo, "one")
    before = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "--amend", "--no-verify", "-m", "one, amended")
    after = git(repo, "rev-parse", "HEAD").strip()
    assert rewritten_pairs(g, repo / ".git", "amend", b"") == [(before, after)]

    # a finished rebase (its state directory gone): matched by patch id, then by authorship
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo / "t1.txt", "t1")
    commit(repo, "t1")
    t1 = git(repo, "rev-parse", "HEAD").strip()
    write(repo / "t2.txt", "t2")
    commit(repo, "t2")
    t2 = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    write(repo / "m.txt", "m")
    commit(repo, "m")
    git(repo, "checkout", "-q", "topic")
    git(repo, "rebase", "-q", "main")
    new = git(repo, "rev-list", "--reverse", "main..HEAD").split()
    assert not (repo / ".git" / "rebase-merge").exists()
    assert sorted(rewritten_pairs(g, repo / ".git", "rebase", b"")) == sorted(
        [(t1, new[0]), (t2, new[1])]
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's sqlite store, in-process
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_plain_git_hooks_link_and_relink_without_pre_commit(
    repo: Path, mlflow_db_template: Path, tmp_path: Path
) -> None:
    """The POSIX sh shims as plain git hooks: post-rewrite reads git's old/new lines."""
    import os
    import shutil

    from tests.helpers import ROOT, run_cli

    db = tmp_path / "plain.db"
    shutil.copyfile(mlflow_db_template, db)
    uri = f"sqlite:///{db}"
    for name in ("post-commit", "post-rewrite"):
        hook = repo / ".git" / "hooks" / name
        hook.parent.mkdir(exist_ok=True)
        shutil.copyfile(ROOT / "hooks" / name, hook)
        hook.chmod(0o755)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    write(repo / "f.txt", "x")
    git(repo, "add", "-A")
    from tests.stamp_helpers import stamped_run

    run_id = stamped_run(uri, repo)  # a run of this clone, with f.txt as the commit records it
    subprocess.run(["git", "commit", "-q", "-m", "x"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "--amend", "-m", "x2"], cwd=repo, env=env, check=True)
    amended = git(repo, "rev-parse", "HEAD").strip()
    sync = run_cli(
        repo, "tag-mlflow", "--sync", "--timeout", "120", env={"MLFLOW_TRACKING_URI": uri}
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    code = (
        "import sys; from mlflow.tracking import MlflowClient; "
        "print(MlflowClient(sys.argv[1]).get_run(sys.argv[2]).data.tags.get('git.commit'))"
    )
    linked = subprocess.run(
        [sys.executable, "-c", code, uri, run_id], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert linked == amended


def test_missing_mlflow_is_loud_and_the_job_kept(repo: Path) -> None:
    from repro_hooks.links.enqueue import queue_commit_link, repo_facts, settings
    from repro_hooks.links.queue import LinkQueue as Queue
    from repro_hooks.policy.config import MlflowConfig

    facts = repo_facts(repo)
    cfg = settings(repo, MlflowConfig(), {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    result = queue_commit_link(facts, cfg, {}, has_mlflow=False)
    assert result.exit_code == 1
    assert "mlflow is not installed next to repro-hooks" in result.lines[0]
    assert len(Queue(facts.common_dir).jobs()) == 1  # kept for a later --sync


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "sqlite:////r/mlflow.db"),
        ("sqlite:///sub/m.db?timeout=5", "sqlite:////r/sub/m.db?timeout=5"),
        ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
        ("mlruns", "file:///r/mlruns"),
        ("http://h:5000", "http://h:5000"),
    ],
)
def test_local_store_uris_are_anchored_at_the_root(uri: str, expected: str) -> None:
    from repro_hooks.tracking.mlflow import anchored_uri

    assert anchored_uri(uri, Path("/r")) == expected


def test_sync_from_a_subdirectory_never_creates_a_database(
    repo: Path, mlflow_db_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from click.testing import CliRunner

    from repro_hooks.cli import cli

    shutil.copyfile(mlflow_db_template, repo / "mlflow.db")
    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", "x")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    from repro_hooks.links.queue import Job
    from repro_hooks.links.queue import LinkQueue as Queue

    queue = Queue(repo / ".git")
    head = git(repo, "rev-parse", "HEAD").strip()
    queue.put(
        Job(
            id=queue.new_id("link"),
            kind="link",
            root=str(repo),
            tracking_uri="sqlite:///mlflow.db",
            uri_origin="environment",
            commit=head,
            before_ms=1,
        )
    )
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    result = CliRunner().invoke(cli, ["tag-mlflow", "--sync"])
    assert result.exit_code == 0, result.output
    assert "nothing linked: no run started before the commit" in result.output
    assert list((repo / "sub").iterdir()) == []
