"""The link rules as pure functions: code, data, the fallback without a stamp, tracking URIs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from repro_hooks.links.head import rebase_branch
from repro_hooks.links.record import RecordedOutput, code_changes
from repro_hooks.links.rules import code_verdict, data_verdict, fallback_verdict, usable_end
from repro_hooks.tracking.mlflow import is_local_uri, missing_local_store
from repro_hooks.tracking.port import RunCandidate


def out(path: str, value: str) -> RecordedOutput:
    return RecordedOutput(path, value, f"{path}.dvc")


@pytest.mark.parametrize(
    ("commit", "run", "untracked", "verdict"),
    [
        pytest.param({}, {}, [], None, id="clean-and-unchanged"),
        pytest.param({"t.py": "b1"}, {"t.py": "b1"}, [], None, id="dirty-tree-committed"),
        pytest.param({"t.py": "b1"}, {}, [], "ran the version at its HEAD", id="code-after-run"),
        pytest.param({"t.py": "b2"}, {"t.py": "b1"}, [], "another version", id="edited-after"),
        pytest.param({}, {"t.py": "b1"}, [], "uncommitted change", id="uncommitted-tracked"),
        pytest.param({}, {"scratch.py": "b1"}, ["scratch.py"], None, id="untracked-scratch"),
        pytest.param({"new.py": "b1"}, {"new.py": "b1"}, ["new.py"], None, id="new-file-added"),
        pytest.param({"gone.py": None}, {"gone.py": None}, [], None, id="deleted-both"),
        pytest.param({"big.py": "b1"}, {"big.py": "?"}, [], "another version", id="unhashed"),
    ],
)
def test_code_verdict(
    commit: dict[str, str | None],
    run: dict[str, str | None],
    untracked: list[str],
    verdict: str | None,
) -> None:
    got = code_verdict(commit, run, untracked)
    assert (got is None) if verdict is None else (verdict in (got or ""))


@pytest.mark.parametrize(
    ("committed", "start", "end", "verdict"),
    [
        pytest.param("A", {"d": "A"}, {"d": "A"}, None, id="read-it"),
        pytest.param("B", {"d": "A"}, {"d": "B"}, None, id="wrote-it-everyday-loop"),
        pytest.param("B", {}, {"d": "B"}, None, id="created-it"),
        pytest.param("B", {"d": "A"}, {"d": "A"}, "changed after the run ended", id="after-end"),
        pytest.param("B", {}, {}, "never saw it", id="never-there"),
        pytest.param("A", {"d": "A"}, {}, None, id="end-state-lacks-it-read-at-start"),
        pytest.param("B", {"d": "A"}, {}, "changed after the run ended", id="end-lacks-it-changed"),
        pytest.param("A", {"d": "A"}, None, None, id="running-unchanged"),
        pytest.param("B", {"d": "A"}, None, "still running", id="running-changed"),
        pytest.param("B", {}, None, "not present when the run started", id="running-new"),
    ],
)
def test_data_verdict(
    committed: str, start: dict[str, str], end: dict[str, str] | None, verdict: str | None
) -> None:
    got = data_verdict([out("d", committed)], start, end)
    assert (got is None) if verdict is None else (verdict in (got or ""))


def test_end_state_taken_long_after_the_run_is_not_used() -> None:
    run = RunCandidate("r", "0", 0, None, None, end_time=1_000_000, status="FINISHED")
    assert usable_end({"end": {"d": "B"}, "ended": 1000.5}, run) == ({"d": "B"}, None)
    end, note = usable_end({"end": {"d": "B"}, "ended": 5000.0}, run)
    assert end is None
    assert "after the run ended" in (note or "")
    running = RunCandidate("r", "0", 0, None, None, status="RUNNING")
    assert usable_end({"end": {}, "ended": 1.0}, running)[0] is None


def unstamped(**tags: str) -> RunCandidate:
    base = {"mlflow.user": "me", "mlflow.source.name": "/repo/train.py"}
    return RunCandidate(
        "r",
        "0",
        0,
        None,
        tags.pop("source", "P"),
        end_time=1,
        status="FINISHED",
        tags={**base, **tags},
    )


@pytest.mark.parametrize(
    ("run", "changed", "same_data", "verdict"),
    [
        pytest.param(unstamped(), {}, True, None, id="proven"),
        pytest.param(unstamped(**{"mlflow.user": "you"}), {}, True, "started by user", id="user"),
        pytest.param(
            unstamped(**{"mlflow.source.name": "train.py"}),
            {},
            True,
            "does not prove",
            id="relative-source",
        ),
        pytest.param(
            unstamped(**{"mlflow.source.name": "/elsewhere/train.py"}),
            {},
            True,
            "outside this work tree",
            id="other-clone",
        ),
        pytest.param(unstamped(source="X"), {}, True, "commit's parent", id="other-start"),
        pytest.param(unstamped(), {"t.py": "b"}, True, "changes code", id="code-changed"),
        pytest.param(unstamped(), {}, False, "which data the run saw", id="data-changed"),
        pytest.param(
            unstamped(**{"repro_hooks.clone": "other"}),
            {},
            True,
            "another clone",
            id="other-clone-stamp",
        ),
    ],
)
def test_fallback_verdict(
    run: RunCandidate, changed: dict[str, str | None], same_data: bool, verdict: str | None
) -> None:
    got = fallback_verdict(
        run,
        commit="C",
        parents=["P"],
        user="me",
        root="/repo",
        repo_url=None,
        changed_by_commit=changed,
        same_data=same_data,
    )
    assert (got is None) if verdict is None else (verdict in (got or ""))


def test_code_changes_keep_code_paths_only() -> None:
    z = "0" * 40
    raw = (
        f":100644 100644 {'a' * 40} {'b' * 40} M\0train.py\0"
        f":100644 100644 {'a' * 40} {'c' * 40} M\0data.dvc\0"
        f":100644 000000 {'a' * 40} {z} D\0old.py\0"
        f":100644 100644 {'a' * 40} {'d' * 40} M\0sub/.gitignore\0"
    ).encode()
    assert code_changes(raw) == {"train.py": "b" * 40, "old.py": None}


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("databricks", False),
        ("databricks://profile", False),
        ("databricks-uc", False),
        ("http://host:5000", False),
        ("https://host", False),
        ("sqlite:///mlflow.db", False),
        ("postgresql://u@h/db", False),
        ("mysql+pymysql://h/db", False),
        ("file:///tmp/mlruns", True),
        ("mlruns", True),
        ("/abs/mlruns", True),
        ("./rel/mlruns", True),
    ],
)
def test_only_a_path_like_uri_is_local(uri: str, local: bool, tmp_path: Path) -> None:
    assert is_local_uri(uri) is local
    if not local and not uri.startswith("sqlite"):
        assert missing_local_store(uri, tmp_path) is None  # never "no such directory"


def test_rebase_branch_from_rebase_state(tmp_path: Path) -> None:
    assert rebase_branch(tmp_path) is None
    (tmp_path / "rebase-merge").mkdir()
    (tmp_path / "rebase-merge" / "head-name").write_text("refs/heads/feature/x\n")
    assert rebase_branch(tmp_path) == "feature/x"


def test_cold_cache_defers_large_files_to_the_end_of_the_run(repo: Path) -> None:
    """start_run is not held up hashing a cold file: its identity is kept, and the end state's
    hash counts as the start's only if it is still the very same file."""
    import hashlib
    import os

    from repro_hooks.links import stamp
    from tests.helpers import write

    data = b"x" * 4096
    write(repo / "big", data)
    write(repo / "big.dvc", f"outs:\n- md5: {'0' * 32}\n  size: 4096\n  hash: md5\n  path: big\n")
    start = stamp.data_state(str(repo), str(repo / ".git"), ["big.dvc"])
    assert start == stamp.data_state(str(repo), str(repo / ".git"), ["big.dvc"])
    real = hashlib.md5(data).hexdigest()
    cold = stamp._measure(str(repo), str(repo / ".git") + "-none", {("big", "md5")}, [], budget=0)
    assert cold["big"].startswith(stamp.DEFER)
    assert stamp.resolve_deferred(cold, {"big": real}, str(repo)) == {"big": real}
    os.unlink(repo / "big")
    write(repo / "big", data + b"y")  # rewritten since the start: unknown, never the end hash
    assert stamp.resolve_deferred(cold, {"big": real}, str(repo)) == {"big": ""}


def test_link_policy_key_is_validated() -> None:
    from repro_hooks.errors import ConfigError
    from repro_hooks.policy.config import parse_config

    table = {"mlflow": {"link": "all-since-previous-commit"}}
    assert parse_config(table, "pyproject.toml").mlflow.link == "all-since-previous-commit"
    assert parse_config({}, "pyproject.toml").mlflow.link == "latest"
    with pytest.raises(ConfigError, match="expected one of 'latest', 'all-since-previous-commit'"):
        parse_config({"mlflow": {"link": "newest"}}, "pyproject.toml")


def test_post_merge_links_only_a_merge_commit_made_here(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import commit, git, run_cli, wait_until, write

    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    write(repo / "pyproject.toml", "[tool.repro-hooks.mlflow]\ntimeout = 120\n")  # loaded CI
    commit(repo, "config")
    git(repo, "checkout", "-q", "-b", "side")
    write(repo / "s.txt", "s")
    commit(repo, "side")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "side")  # a fast-forward: no commit made here
    out = run_cli(repo, "tag-mlflow", "--post-merge")
    assert out.returncode == 0, out.stderr
    assert "no merge commit made here: nothing to link" in out.stdout
    git(repo, "checkout", "-q", "-b", "other", "HEAD~1")
    write(repo / "o.txt", "o")
    commit(repo, "other")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge main", "main")
    out = run_cli(repo, "tag-mlflow", "--post-merge")
    assert out.returncode == 0, out.stderr
    assert "nothing to link" not in out.stdout
    # the merge commit was queued: its delivery (no run here) reports on it in the log
    head = git(repo, "rev-parse", "HEAD").strip()
    log = repo / ".git" / "repro-hooks" / "delivery.log"
    wait_until(
        lambda: log.exists() and f"{head[:12]}: nothing linked" in log.read_text(),
        lambda: run_cli(repo, "pending").stdout,
    )


# ---- stage runs, what the run wrote, run status, what is not code -------------------


def lock_stage(
    deps: dict[str, str],
    outs: dict[str, str],
    params: dict[str, dict[str, object]],
    cmd: str = "python train.py",
) -> object:
    from repro_hooks.dvc.files import LockStage, Output

    def entry(path: str, value: str) -> Output:
        return Output(path, value, "md5", source="dvc.lock", stage="train")

    return LockStage(
        "train",
        cmd,
        [entry(p, v) for p, v in deps.items()],
        [entry(p, v) for p, v in outs.items()],
        params,
    )


STAGE = {
    "address": "train",
    "file": "dvc.yaml",
    "name": "train",
    "cmd": "python train.py",
    "deps": {"data/prepared": "P.dir", "train.py": "T"},
    "params": {"params.yaml": {"train.lr": 0.1, "train.epochs": 3}},
    "outs": ["model.pkl"],
}
LOCK = {
    "deps": {"data/prepared": "P.dir", "train.py": "T"},
    "outs": {"model.pkl": "M"},
    "params": {"params.yaml": {"train.lr": 0.1, "train.epochs": 3}},
}


@pytest.mark.parametrize(
    ("change", "end", "verdict"),
    [
        pytest.param({}, {"model.pkl": "M", "metrics.json": "other"}, None, id="justified"),
        pytest.param({"cmd": "python train2.py"}, {"model.pkl": "M"}, "another command", id="cmd"),
        pytest.param(
            {"deps": {"data/prepared": "Q.dir", "train.py": "T"}},
            {"model.pkl": "M"},
            "data/prepared: stage train started from another version",
            id="dep",
        ),
        pytest.param(
            {"params": {"params.yaml": {"train.lr": 0.2, "train.epochs": 3}}},
            {"model.pkl": "M"},
            "param train.lr: the run started with",
            id="param",
        ),
        pytest.param(
            {"params": {"params.yaml": {"train.lr": 0.1, "train.epochs": 3.0}}},
            {"model.pkl": "M"},
            None,
            id="param-equal-as-dvc-compares",
        ),
        pytest.param(
            {"deps": {"train.py": "T"}},
            {"model.pkl": "M"},
            "data/prepared: a dependency of stage train in the commit",
            id="dep-added",
        ),
        pytest.param({}, {"model.pkl": "N"}, "model.pkl: output of stage train", id="out"),
        pytest.param({}, None, "end state is not recorded", id="killed"),
    ],
)
def test_stage_verdict(
    change: dict[str, object], end: dict[str, str] | None, verdict: str | None
) -> None:
    """A stage run is justified by its own stage in the commit's dvc.lock: cmd, deps and params
    at its start, outs at its end; another stage's metrics.json is not its business."""
    from repro_hooks.links.rules import stage_verdict

    lock = lock_stage(LOCK["deps"], LOCK["outs"], LOCK["params"])  # type: ignore[arg-type]
    got = stage_verdict({**STAGE, **change}, lock, end)  # type: ignore[arg-type]
    assert (got is None) if verdict is None else (verdict in (got or "")), got


def test_stage_verdict_without_the_stage_in_the_commit() -> None:
    from repro_hooks.links.rules import stage_verdict

    got = stage_verdict(STAGE, None, {"model.pkl": "M"})
    assert got == "dvc.yaml: the commit's dvc.lock does not record stage train"
    nested = {**STAGE, "address": "sub/dvc.yaml:train", "file": "sub/dvc.yaml"}
    assert stage_verdict(nested, None, {}) == (
        "sub/dvc.yaml: the commit's dvc.lock does not record stage sub/dvc.yaml:train"
    )
    unnamed = {k: v for k, v in STAGE.items() if k not in ("address", "file")}
    assert stage_verdict(unnamed, None, {}) == (
        "dvc.yaml: the commit's dvc.lock does not record stage train"
    )
    anonymous = {k: v for k, v in unnamed.items() if k != "name"}
    assert stage_verdict(anonymous, None, {}) == (
        "dvc.yaml: the commit's dvc.lock does not record stage ?"
    )


@pytest.mark.parametrize(
    ("committed", "start", "end", "written", "verdict"),
    [
        pytest.param("A", {"d": "A"}, {"d": "B"}, [], None, id="read-at-start-changed-later"),
        pytest.param(
            "B",
            {"d": "A"},
            {"d": "B"},
            [],
            "read another version",
            id="case3-changed-under-the-run",
        ),
        pytest.param("B", {"d": "A"}, {"d": "B"}, ["d"], None, id="wrote-it"),
        pytest.param("B", {"d": "A"}, {"d": "B"}, ["d/part-0"], None, id="wrote-inside-dir"),
        pytest.param(
            "B",
            {"d": "A"},
            {"d": "C"},
            ["d"],
            "changed after the run wrote it",
            id="wrote-then-changed",
        ),
        pytest.param("B", {}, {"d": "B"}, [], None, id="unknown-at-start-seen-at-end"),
        pytest.param(
            "B", {"d": ""}, {"d": "B"}, [], "absent when the run started", id="absent-not-written"
        ),
        pytest.param("B", {"d": "A"}, None, ["d"], "end state is not recorded", id="killed"),
    ],
)
def test_data_verdict_with_what_the_run_wrote(
    committed: str,
    start: dict[str, str],
    end: dict[str, str] | None,
    written: list[str],
    verdict: str | None,
) -> None:
    got = data_verdict([out("d", committed)], start, end, written)
    assert (got is None) if verdict is None else (verdict in (got or "")), got


def finished(rid: str, status: str = "FINISHED", start: int = 0) -> RunCandidate:
    end = None if status == "RUNNING" else start + 1
    return RunCandidate(rid, "0", start, None, None, end_time=end, status=status)


@pytest.mark.parametrize(
    ("runs", "policy", "chosen"),
    [
        pytest.param(
            [finished("failed", "FAILED"), finished("good")],
            "latest",
            ["good"],
            id="failed-never-takes-it",
        ),
        pytest.param(
            [finished("killed", "KILLED"), finished("good")],
            "latest",
            ["good"],
            id="killed-never-takes-it",
        ),
        pytest.param(
            [finished("running", "RUNNING"), finished("good")],
            "latest",
            ["good"],
            id="no-end-state-loses-to-finished",
        ),
        pytest.param(
            [finished("running", "RUNNING")], "latest", ["running"], id="no-end-state-alone"
        ),
        pytest.param([finished("failed", "FAILED")], "latest", [], id="failed-alone"),
        pytest.param(
            [finished("running", "RUNNING"), finished("good")],
            "all-since-previous-commit",
            ["running", "good"],
            id="all-since",
        ),
    ],
)
def test_run_status_preference(runs: list[RunCandidate], policy: str, chosen: list[str]) -> None:
    from repro_hooks.links.rules import choose_runs

    choice = choose_runs(runs, "C", lambda sha: False, lambda run: None, policy)
    assert [r.run_id for r in choice.runs] == chosen, choice
    if "failed" in [r.run_id for r in runs] and not chosen:
        assert "ended FAILED" in choice.passed_over[0]


def test_not_code_leaves_out_dvc_outputs_and_link_ignore() -> None:
    from repro_hooks.links.rules import not_code
    from repro_hooks.policy.config import DEFAULT_LINK_IGNORE

    changes = {
        "metrics.json": "m",
        "README.md": "r",
        "docs/guide.rst": "g",
        "LICENSE": "l",
        ".github/workflows/ci.yml": "c",
        ".pre-commit-config.yaml": "p",
        "train.py": "t",
        "requirements.txt": "q",
        "src/notes.md": "n",
    }
    got = not_code(changes, {"metrics.json"}, DEFAULT_LINK_IGNORE)
    assert got == {"train.py": "t", "requirements.txt": "q"}


def test_link_ignore_key_replaces_the_default() -> None:
    from repro_hooks.errors import ConfigError
    from repro_hooks.policy.config import DEFAULT_LINK_IGNORE, parse_config

    assert parse_config({}, "pyproject.toml").mlflow.link_ignore == DEFAULT_LINK_IGNORE
    table = {"mlflow": {"link-ignore": ["notes/", "*.txt"]}}
    assert parse_config(table, "pyproject.toml").mlflow.link_ignore == ("notes/", "*.txt")
    with pytest.raises(ConfigError, match="link-ignore"):
        parse_config({"mlflow": {"link-ignore": "notes/"}}, "pyproject.toml")


def test_notebook_digest_leaves_out_outputs_counts_and_metadata() -> None:
    import json

    from repro_hooks.links.stamp import notebook_digest

    def nb(source: str, outputs: list[object], count: int | None, meta: dict[str, object]) -> bytes:
        cell = {
            "cell_type": "code",
            "source": [source],
            "outputs": outputs,
            "execution_count": count,
            "metadata": meta,
        }
        return json.dumps({"cells": [cell], "metadata": meta, "nbformat": 4}).encode()

    clean = notebook_digest(nb("x = 1\n", [], None, {}))
    run = nb("x = 1\n", [{"output_type": "stream", "text": "1"}], 7, {"papermill": {"d": 1.5}})
    assert notebook_digest(run) == clean
    assert notebook_digest(nb("x = 2\n", [], None, {})) != clean
    assert notebook_digest(b"not json").startswith("nb:")


def test_audit_hook_notes_writes_and_renames_not_reads(tmp_path: Path) -> None:
    """The hook itself, called as Python calls it: trivial for every other event."""
    import os

    from repro_hooks.links import stamp

    saved, saved_reads = dict(stamp._WRITES), dict(stamp._READS)
    stamp._WRITES.clear()
    try:
        target = tmp_path / "model.pkl"
        stamp._audit("open", (str(target), "wb", os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        stamp._audit("open", (str(tmp_path / "data.csv"), "r", os.O_RDONLY))
        stamp._audit("open", (3, "wb", os.O_WRONLY))  # an fd: no path
        stamp._audit("os.rename", (str(tmp_path / "tmp"), str(tmp_path / "final.bin"), -1, -1))
        stamp._audit("compile", (b"", "<x>"))
        assert set(stamp._WRITES) == {str(target), str(tmp_path / "final.bin")}
        assert stamp.written_since(str(tmp_path), 0.0) == ["final.bin", "model.pkl"]
        assert "data.csv" in stamp.read_paths(str(tmp_path))  # reads: for the dataset inputs
    finally:
        stamp._WRITES.clear()
        stamp._WRITES.update(saved)
        stamp._READS.clear()
        stamp._READS.update(saved_reads)


def test_latest_after_a_stage_run_takes_the_newest_run_of_each_stage() -> None:
    """`dvc repro` where train and evaluate both log a run: the commit links both (one per
    stage), not older runs of the same stages, and not a run outside any stage."""
    from repro_hooks.links.rules import choose_runs

    def stage_run(rid: str, stage: str | None) -> RunCandidate:
        tags = {"repro_hooks.stage": stage} if stage else {}
        return RunCandidate(rid, "0", 0, None, None, end_time=1, status="FINISHED", tags=tags)

    runs = [
        stage_run("evaluate-2", "evaluate"),
        stage_run("train-2", "train"),
        stage_run("script", None),
        stage_run("train-1", "train"),
        stage_run("prepare-1", "prepare"),
    ]
    choice = choose_runs(runs, "C", lambda sha: False, lambda run: None)
    assert [r.run_id for r in choice.runs] == ["evaluate-2", "train-2", "prepare-1"]
    tree_first = [stage_run("script", None), *runs]
    assert [
        r.run_id for r in choose_runs(tree_first, "C", lambda s: False, lambda r: None).runs
    ] == ["script"]


def test_runs_of_other_stages_stop_at_any_run_linked_to_an_ancestor() -> None:
    """The search for other stages' runs ends where every search ends: at a run linked to an
    ancestor (stage run or not), so it never pages through the whole experiment."""
    from repro_hooks.links.rules import choose_runs

    def run(rid: str, stage: str | None, linked: str | None = None) -> RunCandidate:
        tags = {"repro_hooks.stage": stage} if stage else {}
        return RunCandidate(rid, "0", 0, linked, None, end_time=1, status="FINISHED", tags=tags)

    runs = [run("train-2", "train"), run("script", None, linked="A"), run("eval-1", "evaluate")]
    judged: list[str] = []

    def judge(r: RunCandidate) -> None:
        judged.append(r.run_id)

    choice = choose_runs(runs, "C", lambda sha: sha == "A", judge)
    assert [r.run_id for r in choice.runs] == ["train-2"]
    assert judged == ["train-2"]


def test_stage_evidence_at_start_matches_dvc_lock(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp of a stage run (DVC_STAGE, as `dvc repro` sets it, from a nested dvc.yaml)
    records the stage's deps as DVC hashes them (a .dvcignore above a directory dep honoured)
    and its params' values: what `dvc repro` then writes to dvc.lock (DVC is the oracle)."""
    import yaml

    from repro_hooks.links import stamp
    from tests.dvc_helpers import dvc
    from tests.helpers import commit, write

    dvc(repo, "init", "-q")
    write(repo / "sub" / "data" / "a.csv", "x\n1\n")
    write(repo / "sub" / "data" / "junk.tmp", "scratch")
    write(repo / "sub" / ".dvcignore", "*.tmp\n")  # DVC refuses one inside a collected dir
    write(repo / "sub" / "params.yaml", "train:\n  lr: 0.5\n  epochs: 3\n")
    write(
        repo / "sub" / "dvc.yaml",
        "stages:\n  train:\n    cmd: cp data/a.csv out.csv\n"
        "    deps: [data]\n    params: [train.lr]\n    outs: [out.csv]\n",
    )
    commit(repo, "stage")
    monkeypatch.chdir(repo / "sub")  # the stage's command runs in its wdir
    monkeypatch.setenv("DVC_STAGE", "sub/dvc.yaml:train")
    monkeypatch.setenv("DVC_ROOT", str(repo))
    tags = stamp.take_stamp(str(repo / "sub"), at_exit=False)
    assert tags["repro_hooks.stage"] == "sub/dvc.yaml:train"
    assert tags["repro_hooks.evidence"] == "stage"
    record = stamp.load_record(str(repo / ".git"), tags["repro_hooks.stamp"])
    assert record is not None
    dvc(repo, "repro", "-q", "sub/dvc.yaml:train")
    lock = yaml.safe_load((repo / "sub" / "dvc.lock").read_text())["stages"]["train"]
    assert record["stage"]["deps"] == {"sub/data": lock["deps"][0]["md5"]}
    assert record["stage"]["params"] == {"sub/params.yaml": lock["params"]["params.yaml"]}
    assert record["stage"]["outs"] == ["sub/out.csv"]
    assert record["stage"]["cmd"] == lock["cmd"]


# ---- the rules' exact answers (each case kills mutants that survived the tests above) ---------


def test_data_verdict_checks_every_output_not_only_the_first() -> None:
    """A first output that passes must not end the check: the second one is judged too."""
    outs = [out("a", "A"), out("b", "B")]
    assert data_verdict(outs, {"a": "A", "b": "X"}, None) == (
        "b: changed since the run started (X -> B) and the run's end state is not recorded "
        "(still running?)"
    )
    assert data_verdict(outs, {"a": "A", "b": "X"}, {"a": "A", "b": "X"}) == (
        "b: changed after the run ended (X -> B)"
    )
    assert data_verdict(outs, {"a": "A", "b": "X"}, {}) == "b: changed after the run ended (X -> B)"
    assert data_verdict(outs, {"a": "A", "b": "X"}, {"a": "A", "b": "B"}, []) == (
        "b: the run read another version (X at its start, B in the commit) and did not write it"
    )
    assert data_verdict(outs, {"a": "0", "b": "X"}, {"a": "A", "b": "Y"}, ["a", "b"]) == (
        "b: changed after the run wrote it (Y -> B)"
    )


@pytest.mark.parametrize(
    ("run", "finished"),
    [
        pytest.param(finished("r"), True, id="finished"),
        pytest.param(RunCandidate("r", "0", 0, None, None, status="FINISHED"), False, id="no-end"),
        pytest.param(finished("r", "RUNNING"), False, id="running"),
    ],
)
def test_a_finished_run_has_the_status_and_an_end(run: RunCandidate, finished: bool) -> None:
    from repro_hooks.links.rules import is_finished

    assert is_finished(run) is finished


def test_usable_end_at_the_slack_and_without_its_time() -> None:
    run = RunCandidate("r", "0", 0, None, None, end_time=1_000_000, status="FINISHED")
    assert usable_end({"end": {"d": "B"}, "ended": 1060.0}, run) == ({"d": "B"}, None)  # 60 s
    assert usable_end({"end": {"d": "B"}, "ended": 1061.0}, run)[0] is None
    assert usable_end({"end": {"d": "B"}}, run) == (None, None)  # when it was taken: unknown
    assert usable_end({"ended": 1000.0}, run) == (None, None)
    running = RunCandidate("r", "0", 0, None, None, status="RUNNING")
    assert usable_end({"end": {}, "ended": 1.0}, running) == (None, "the run is still running")


@pytest.mark.parametrize(
    ("run", "verdict"),
    [
        pytest.param(unstamped(), None, id="no-url-recorded"),
        pytest.param(
            unstamped(**{"mlflow.source.git.repoURL": "https://git/x.git"}),
            None,
            id="same-repository",
        ),
        pytest.param(
            unstamped(**{"mlflow.source.git.repoURL": "https://me:tok@git/x.git"}),
            None,
            id="same-repository-with-credentials",
        ),
        pytest.param(
            unstamped(**{"mlflow.source.git.repoURL": "https://git/other.git"}),
            "recorded repository https://git/other.git is not this one",
            id="another-repository",
        ),
        pytest.param(
            RunCandidate(
                "r",
                "0",
                0,
                None,
                "P",
                end_time=1,
                status="RUNNING",
                tags={"mlflow.user": "me", "mlflow.source.name": "/repo/t.py"},
            ),
            "no repro-hooks stamp, and it has not finished (RUNNING)",
            id="running-with-an-end-time",
        ),
        pytest.param(
            RunCandidate(
                "r",
                "0",
                0,
                None,
                "P",
                status="FINISHED",
                tags={"mlflow.user": "me", "mlflow.source.name": "/repo/t.py"},
            ),
            "no repro-hooks stamp, and it has not finished (FINISHED)",
            id="finished-without-an-end-time",
        ),
    ],
)
def test_fallback_verdict_checks_the_recorded_repository(
    run: RunCandidate, verdict: str | None
) -> None:
    got = fallback_verdict(
        run,
        commit="C",
        parents=["P"],
        user="me",
        root="/repo",
        repo_url="https://git/x.git",
        changed_by_commit={},
        same_data=True,
    )
    assert got == verdict


def test_stage_verdict_compares_a_list_command_line_by_line() -> None:
    from repro_hooks.links.rules import stage_verdict

    listed = ["python prepare.py", "python train.py"]
    lock = lock_stage(LOCK["deps"], LOCK["outs"], LOCK["params"])  # type: ignore[arg-type]
    lock = replace(lock, cmd=listed)  # type: ignore[type-var]
    assert stage_verdict({**STAGE, "cmd": listed}, lock, {"model.pkl": "M"}) is None
    assert (
        stage_verdict(
            {**STAGE, "cmd": "python prepare.py\npython train.py"}, lock, {"model.pkl": "M"}
        )
        is None
    )  # the same lines
    assert stage_verdict(
        {**STAGE, "cmd": [*listed, "python eval.py"]}, lock, {"model.pkl": "M"}
    ) == ("stage train: the commit's dvc.lock records another command than the run ran")


def test_choose_runs_says_exactly_why() -> None:
    """The reasons and the runs passed over, word for word: they are what the delivery log and
    `--sync` print."""
    from repro_hooks.links.rules import RunChoice, choose_runs

    def run(rid: str, linked: str | None = None, **tags: str) -> RunCandidate:
        return RunCandidate(rid, "0", 0, linked, None, end_time=1, status="FINISHED", tags=tags)

    def refuse(r: RunCandidate) -> str | None:
        return "code differs" if r.run_id.startswith("bad") else None

    def choose(runs: list[RunCandidate], policy: str = "latest") -> RunChoice:
        return choose_runs(runs, "C" * 40, lambda sha: sha == "A" * 40, refuse, policy)

    assert choose([]) == RunChoice((), "no run started before the commit", ())
    again = run("again", linked="C" * 40)
    assert choose([run("bad1"), again, run("good")]) == RunChoice(
        (again,), "already linked to this commit", ("bad1: code differs",)
    )
    assert choose([run("bad1"), run("old", linked="A" * 40), run("good")]) == RunChoice(
        (), f"no qualifying run since {'A' * 12} (run old is linked to it)", ("bad1: code differs",)
    )
    other = run("elsewhere", linked="B" * 40)
    good = run("good")
    assert choose([run("nested", **{"mlflow.parentRunId": "x"}), other, good]) == RunChoice(
        (good,),
        "qualifying run started before the commit",
        (f"elsewhere: linked to another commit {'B' * 12}",),
    )
    assert choose([other, run("bad2")]) == RunChoice(
        (),
        "no qualifying run started before the commit",
        (f"elsewhere: linked to another commit {'B' * 12}", "bad2: code differs"),
    )
    running = finished("running", "RUNNING")
    assert choose([running, run("bad3")]) == RunChoice(
        (running,),
        "qualifying run started before the commit (no finished run qualifies)",
        ("bad3: code differs",),
    )
    # all-since-previous-commit: every qualifying run down to the one linked to an ancestor,
    # a run already linked to this commit among them
    assert choose([again, good, run("old", linked="A" * 40)], "all-since-previous-commit") == (
        RunChoice((again, good), "qualifying run started before the commit", ())
    )
    assert choose(
        [good, again, run("old", linked="A" * 40), run("older")], "all-since-previous-commit"
    ).runs == (good, again)
