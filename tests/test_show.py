"""`repro-hooks show` and what a teammate sees in MLflow: the run's dataset inputs are the data it
used, the commit is on the run page at a glance. Core rules in-process; the rest end to end with
a real `dvc repro` (the stamp plugin in the stage's training process), a real `mlflow server`, a
real local DVC remote and real git."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from repro_hooks.git import Git
from repro_hooks.links.inputs import (
    inputs_of_run,
    owns_short_commit,
    run_inputs,
    short_commit,
    stage_address,
    stage_inputs,
)
from repro_hooks.links.record import RecordedOutput
from tests.dvc_helpers import dvc
from tests.helpers import cli_here, git, write
from tests.mlflow_fixtures import MLFLOW_WARNINGS, MlflowServer, silent_server
from tests.stamp_helpers import ROOT, client, run_script

pytestmark = MLFLOW_WARNINGS


def out(path: str, value: str) -> RecordedOutput:
    return RecordedOutput(path, value, "dvc.lock")


# ---- the core: what a run used -------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param("train", ("dvc.yaml", "train"), id="root"),
        pytest.param("sub/dvc.yaml:train", ("sub/dvc.yaml", "train"), id="nested"),
        pytest.param("prep@a", ("dvc.yaml", "prep@a"), id="foreach"),
        pytest.param("./dvc.yaml:t", ("dvc.yaml", "t"), id="dot"),
    ],
)
def test_stage_address(address: str, expected: tuple[str, str]) -> None:
    assert stage_address(address) == expected


DATA = out("data/raw.csv", "a" * 32)
PREPARED = out("data/prepared", "b" * 32 + ".dir")
MODEL = out("model.pkl", "c" * 32)
METRICS = out("metrics.json", "d" * 32)
OUTPUTS = [DATA, PREPARED, MODEL, METRICS]


def test_stage_inputs_are_its_data_deps_only() -> None:
    deps = [
        out("train.py", "e" * 32),  # code
        out("data/prepared/train.csv", "f" * 32),  # inside a directory output
        out("data/raw.csv", "a" * 32),
    ]
    assert [d.path for d in stage_inputs(deps, OUTPUTS)] == [
        "data/prepared/train.csv",
        "data/raw.csv",
    ]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {},
            ["data/raw.csv", "data/prepared", "model.pkl", "metrics.json"],
            id="no-record-everything",
        ),
        pytest.param(
            {
                "start": {
                    "data/raw.csv": "a" * 32,
                    "data/prepared": "b" * 32 + ".dir",
                    "model.pkl": "0" * 32,
                    "metrics.json": "d" * 32,
                },
                "end": {
                    "data/raw.csv": "a" * 32,
                    "data/prepared": "b" * 32 + ".dir",
                    "model.pkl": "c" * 32,
                    "metrics.json": "9" * 32,
                },
            },
            ["data/raw.csv", "data/prepared"],
            id="made-or-changed-while-running",
        ),
        pytest.param(
            {"start": {p.path: p.hash_value for p in OUTPUTS}, "written": ["model.pkl"]},
            ["data/raw.csv", "data/prepared", "metrics.json"],
            id="written-same-bytes",
        ),
        pytest.param(
            {"start": {p.path: p.hash_value for p in OUTPUTS}, "written": ["data/prepared/x"]},
            ["data/raw.csv", "model.pkl", "metrics.json"],
            id="written-inside-a-directory",
        ),
        pytest.param(
            {
                "start": {"model.pkl": "c" * 32},
                "end": {
                    "data/raw.csv": "a" * 32,
                    "data/prepared": "9" * 32 + ".dir",
                    "model.pkl": "c" * 32,
                    "metrics.json": "d" * 32,
                },
                "written": ["metrics.json"],
            },
            ["data/raw.csv", "model.pkl"],
            id="dvc-added-after-the-run",
        ),
        pytest.param(
            {
                "start": {p.path: p.hash_value for p in OUTPUTS},
                "read": ["data/raw.csv", "data/prepared/train.csv"],
            },
            ["data/raw.csv", "data/prepared"],
            id="only-what-it-opened",
        ),
    ],
)
def test_run_inputs(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert [o.path for o in run_inputs(OUTPUTS, **kwargs)] == expected


def test_inputs_of_run_prefers_the_stage_and_falls_back_to_the_record() -> None:
    stage_tags = {"repro_hooks.stage": "train"}
    deps = [out("data/prepared", "b" * 32 + ".dir"), out("train.py", "e" * 32)]
    record: dict[str, Any] = {"start": {}, "end": {}, "written": []}
    assert [o.path for o in inputs_of_run(OUTPUTS, stage_tags, record, deps)] == ["data/prepared"]
    # the commit's dvc.lock lacks the stage: the record decides (nothing seen, start or end)
    assert inputs_of_run(OUTPUTS, stage_tags, record, None) == []
    assert inputs_of_run(OUTPUTS, {}, None, None) == OUTPUTS


def test_the_commit_tag_is_ours_or_left_alone() -> None:
    sha = "0123456789abcdef" * 2 + "01234567"
    assert short_commit(sha, "main") == "0123456789ab (main)"
    assert short_commit(sha, None) == "0123456789ab"
    assert owns_short_commit({})
    assert owns_short_commit({"commit": "0123456789ab (main)", "git.commit": sha})
    assert not owns_short_commit({"commit": "v1.2 release"})
    assert not owns_short_commit({"commit": "v1.2", "git.commit": sha})


def test_text_is_the_chain_a_person_reads() -> None:
    from repro_hooks.links.show import ModelInfo, Storage, commit_info, render_model_text, run_info
    from repro_hooks.tracking.port import RunCandidate

    sha = "f" * 40
    tags = {
        "git.commit": sha,
        "repro_hooks.stage": "train",
        "repro_hooks.link": "stamp",
        "dvc.model.pkl": "0" * 32,
    }
    run = RunCandidate("r1", "7", 1, sha, None, 2, "FINISHED", tags)
    info = run_info(run, "textbook", [("data/prepared", PREPARED.hash_value, "{}")])
    kept = {
        "data/prepared": Storage("remote", "store", "present"),
        "metrics.json": Storage("git", None, "present"),
        "model.pkl": Storage("remote", "store", "missing-everywhere"),
    }
    commit = commit_info(sha, True, [PREPARED, MODEL, METRICS], info, tags, kept)
    text = render_model_text(ModelInfo("m", "3", ("champion",), "r1"), info, "active", commit)
    assert text.splitlines() == [
        "models:/m/3 (aliases: champion)",
        "  run r1: experiment 'textbook', FINISHED, stage train, evidence stamp",
        "    inputs: data/prepared (bbbbbbbbbbbb)",
        f"    commit {sha}",
        "      data:",
        "        data/prepared: bbbbbbbbbbbb (dvc.lock) [input; in DVC remote 'store']",
        "        metrics.json: dddddddddddd (dvc.lock) [not an input; in git (cache: false)]",
        "        model.pkl: cccccccccccc (dvc.lock) [not an input; the run's tag says "
        "000000000000; NOT in DVC remote 'store', nor in the local DVC cache]",
    ]
    unlinked = render_model_text(ModelInfo("m", "4", (), None), None, "none", None)
    assert unlinked.splitlines() == ["models:/m/4", "  run: none (registered without a run)"]


# ---- end to end: a real pipeline, a real server --------------------------------------------------

PREPARE = """\
import pathlib
pathlib.Path("data/prepared").mkdir(parents=True, exist_ok=True)
pathlib.Path("data/prepared/train.csv").write_bytes(pathlib.Path("data/raw.csv").read_bytes())
"""
TRAIN = """\
import pathlib, mlflow, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
data = pathlib.Path("data/prepared/train.csv").read_bytes()
with mlflow.start_run() as run:
    mlflow.log_param("lr", lr)
    pathlib.Path("model.pkl").write_bytes(b"model " + str(lr).encode() + data)
pathlib.Path("run_id.txt").write_text(run.info.run_id)
"""
EVALUATE = """\
import json, pathlib
pathlib.Path("metrics.json").write_text(json.dumps({"size": len(pathlib.Path("model.pkl").read_bytes())}))
"""
DVC_YAML = """\
stages:
  prepare:
    cmd: {py} prepare.py
    deps: [prepare.py, data/raw.csv]
    outs: [data/prepared]
  train:
    cmd: {py} train.py
    deps: [train.py, data/prepared]
    params: [train.lr]
    outs: [model.pkl]
  evaluate:
    cmd: {py} evaluate.py
    deps: [evaluate.py, model.pkl]
    metrics:
    - metrics.json:
        cache: false
"""


@pytest.fixture
def project(
    dvc_repo: Path,
    tmp_path: Path,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    stamp_plugin: Path,
) -> tuple[Path, str]:
    """The textbook pipeline (prepare -> train -> evaluate, metrics.json `cache: false` in git)
    reproduced once with the stamp plugin in the training process, committed: (repo, train run).
    Unlinked: each test writes the link."""
    repo = dvc_repo
    name = f"show-{tmp_path.name}"
    client(mlflow_server.url).create_experiment(name)
    paths = [
        str(ROOT),
        str(stamp_plugin),
        *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p],
    ]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    dvc(repo, "remote", "add", "--local", "-d", "store", str(tmp_path / "dvc-store"))
    write(repo / "data" / "raw.csv", "a,b\n1,2\n")
    dvc(repo, "add", "-q", "data/raw.csv")
    write(repo / "params.yaml", "train:\n  lr: 0.1\n")
    for file, text in (("prepare.py", PREPARE), ("train.py", TRAIN), ("evaluate.py", EVALUATE)):
        write(repo / file, text)
    write(repo / "dvc.yaml", DVC_YAML.format(py=sys.executable))
    write(repo / ".gitignore", "/run_id.txt\n")
    dvc(repo, "repro", "-q")
    run_id = (repo / "run_id.txt").read_text().strip()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "pipeline")
    return repo, run_id


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def link(repo: Path, uri: str, run_id: str) -> str:
    """Write the link as the delivery does (links.linker.write_link), to HEAD on main."""
    from repro_hooks.links.linker import write_link
    from repro_hooks.tracking.mlflow import MlflowTracker

    return write_link(MlflowTracker(uri), Git.discover(repo), run_id, head(repo), "main", "stamp")


def show(repo: Path, *args: str) -> tuple[int, str, str]:
    result = cli_here(repo, "show", *args)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.e2e
def test_stage_run_inputs_and_show_commit_and_run(
    project: tuple[Path, str], mlflow_server: MlflowServer
) -> None:
    repo, run_id = project
    uri = mlflow_server.url
    run = client(uri).get_run(run_id)
    assert run.data.tags["repro_hooks.stage"] == "train"
    link(repo, uri, run_id)
    run = client(uri).get_run(run_id)
    # the stage's data dep, as the commit's dvc.lock records it; not the model it made, not
    # the metrics the next stage wrote, not the raw data only `prepare` read
    used = sorted(i.dataset.name for i in run.inputs.dataset_inputs)
    assert used == ["data/prepared"]
    assert run.data.tags["commit"] == f"{head(repo)[:12]} (main)"
    assert run.data.tags["git.commit"] == head(repo)
    assert "dvc.model.pkl" in run.data.tags  # every output stays a tag: the gate compares them

    code, text, err = show(repo)
    assert code == 0, err
    assert text.splitlines()[0] == f"commit {head(repo)}"
    assert f"run {run_id}: experiment " in text
    assert "stage train, evidence stamp" in text
    code, raw, err = show(repo, "HEAD", "--format", "json")
    assert code == 0, err
    answer = json.loads(raw)
    assert (answer["schema"], answer["kind"]) == ("repro-hooks-show/1", "commit")
    assert answer["tracking_uri"] == uri
    (listed,) = answer["runs"]
    assert listed["run_id"] == run_id
    assert (listed["stage"], listed["evidence"], listed["status"]) == ("train", "stamp", "FINISHED")
    assert [i["path"] for i in listed["inputs"]] == ["data/prepared"]
    paths = [d["path"] for d in answer["commit"]["data"]]
    assert paths == ["data/prepared", "data/raw.csv", "metrics.json", "model.pkl"]

    code, raw, err = show(repo, "--run", run_id, "--format", "json")
    assert code == 0, err
    answer = json.loads(raw)
    assert answer["kind"] == "run"
    assert answer["run"]["commit"] == head(repo)
    rows = {d["path"]: d for d in answer["commit"]["data"]}
    assert rows["data/prepared"]["used"] is True
    assert rows["model.pkl"]["used"] is False
    assert rows["model.pkl"]["tag"] == rows["model.pkl"]["hash"]
    code, text, err = show(repo, "--run", run_id)
    assert code == 0, err
    assert "model.pkl: " in text and "[not an input]" in text


@pytest.mark.e2e
def test_model_chain_and_where_the_data_is(
    project: tuple[Path, str], mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    repo, run_id = project
    uri = mlflow_server.url
    link(repo, uri, run_id)
    name = f"show-model-{tmp_path.name}"
    c = client(uri)
    c.create_registered_model(name)
    version = c.create_model_version(name, source="s3://bucket/model", run_id=run_id).version
    c.set_registered_model_alias(name, "champion", str(version))

    def chain(ref: str) -> dict[str, Any]:
        code, raw, err = show(repo, "--model", ref, "--format", "json")
        assert code == 0, err
        answer: dict[str, Any] = json.loads(raw)
        return answer

    answer = chain(f"{name}/{version}")
    assert answer["model"] == {
        "name": name,
        "version": str(version),
        "aliases": ["champion"],
        "run_id": run_id,
    }
    assert answer["run"]["run_id"] == run_id
    assert answer["commit"]["sha"] == head(repo)
    kept = {d["path"]: (d["storage"], d["remote"], d["status"]) for d in answer["commit"]["data"]}
    assert kept == {
        "data/prepared": ("remote", "store", "missing"),
        "data/raw.csv": ("remote", "store", "missing"),
        "metrics.json": ("git", None, "present"),  # never asked of the DVC remote
        "model.pkl": ("remote", "store", "missing"),
    }
    dvc(repo, "push", "-q")
    answer = chain(f"models:/{name}@champion")
    kept = {d["path"]: (d["storage"], d["status"]) for d in answer["commit"]["data"]}
    assert kept == {
        "data/prepared": ("remote", "present"),
        "data/raw.csv": ("remote", "present"),
        "metrics.json": ("git", "present"),
        "model.pkl": ("remote", "present"),
    }
    code, text, err = show(repo, "--model", f"{name}@champion")
    assert code == 0, err
    assert text.splitlines()[0] == f"models:/{name}/{version} (aliases: champion)"
    assert "metrics.json: " in text and "in git (cache: false)" in text
    assert "in DVC remote 'store'" in text
    for ref, why in ((f"{name}/99", "has no version 99"), (f"{name}@nope", "has no alias 'nope'")):
        code, text, err = show(repo, "--model", ref)
        assert (code, text) == (2, ""), err
        assert err.count("\n") == 1 and why in err, err


@pytest.mark.e2e
def test_a_users_own_commit_tag_stays(
    tmp_path: Path, mlflow_server: MlflowServer, stamp_plugin: Path, dvc_repo: Path
) -> None:
    uri = mlflow_server.url
    repo = dvc_repo
    write(repo / "data.csv", "x\n")
    dvc(repo, "add", "-q", "data.csv")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "data")
    script = (
        "import mlflow\nwith mlflow.start_run() as r:\n    mlflow.set_tag('commit', 'mine')\n"
        "print(r.info.run_id)\n"
    )
    run_id = run_script(repo, script, uri, stamp_plugin, "nb.py")
    link(repo, uri, run_id)
    tags = client(uri).get_run(run_id).data.tags
    assert tags["commit"] == "mine"
    assert tags["git.commit"] == head(repo)


def test_bad_input_is_one_line_exit_2(
    repo: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", "x")
    cases = [
        (["no-such-rev"], "no-such-rev: no such commit here"),
        (["--run", "0" * 32], f"run {'0' * 32} does not exist"),
        (["--model", "no-such-model/1"], "no registered model named 'no-such-model'"),
        (["--model", "models:/x/latest"], "not a number"),
        (["HEAD", "--run", "abc"], "give one of COMMIT, --run and --model"),
    ]
    for args, expected in cases:
        code, text, err = show(repo, *args)
        assert (code, text) == (2, ""), (args, err)
        assert err.count("\n") == 1 and expected in err, (args, err)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    code, _, err = show(repo)
    assert code == 2 and "no tracking server" in err


def test_a_server_down_or_hanging_is_bounded(repo: Path) -> None:
    from tests.mlflow_fixtures import free_port

    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", "x")
    down = f"http://127.0.0.1:{free_port()}"
    code, _, err = show(repo, "--tracking-uri", down, "--run", "a" * 32, "--timeout", "4")
    assert code == 2
    assert err == (
        f"repro-hooks: {down}: connection refused (is the tracking server running?) "
        f"(while reading run {'a' * 32})\n"
    )
    with silent_server() as url:
        code, _, err = show(repo, "--tracking-uri", url, "--model", "m/1", "--timeout", "1")
    assert code == 2
    assert err.startswith(f"repro-hooks: {url}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.e2e
def test_a_run_outside_any_stage_lists_what_it_did_not_write(
    tmp_path: Path, mlflow_server: MlflowServer, stamp_plugin: Path, dvc_repo: Path
) -> None:
    """The stamp's audit hook records what the training process wrote: a model rewritten with
    the very same bytes is still no input (its hash never changed, so only the audit knows)."""
    uri = mlflow_server.url
    repo = dvc_repo
    write(repo / "data.csv", "x\n")
    write(repo / "model.pkl", "same model\n")
    dvc(repo, "add", "-q", "data.csv", "model.pkl")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "data and model")
    script = (
        "import mlflow, pathlib\n"
        "data = pathlib.Path('data.csv').read_bytes()\n"
        "with mlflow.start_run() as r:\n"
        "    pathlib.Path('model.pkl').write_text('same model\\n')\n"
        "print(r.info.run_id)\n"
    )
    run_id = run_script(repo, script, uri, stamp_plugin, "nb.py")
    link(repo, uri, run_id)
    used = sorted(i.dataset.name for i in client(uri).get_run(run_id).inputs.dataset_inputs)
    assert used == ["data.csv"]
