"""The deploy gate's doors: each one an insider with ordinary MLflow write access
tried, end to end, against a real `mlflow server` with its registry, a bare git remote, a CI
clone of it and a real DVC remote. Door 2 (the version's bytes) is tests/test_deploy_bytes.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from repro_hooks.git import Git
from repro_hooks.links.record import EVIDENCE_TAG, commit_record
from tests import test_check_model
from tests.dvc_helpers import dvc
from tests.helpers import cli_here, commit, git, install_local_hooks, write
from tests.mlflow_fixtures import MLFLOW_WARNINGS, wait_delivered
from tests.stamp_helpers import run_script, train_env
from tests.test_check_model import World, client, head, link, log_and_register

world_template = test_check_model.world_template  # the deploy world's fixtures, shared
world = test_check_model.world

pytestmark = [*MLFLOW_WARNINGS, pytest.mark.e2e]

HOOKS = ["mlflow-tag-commit", "mlflow-relink-rewritten", "mlflow-tag-merge"]
HOOK_TYPES = ["post-commit", "post-rewrite", "post-merge"]

# train on the DVC data, write the model (a DVC output once `dvc add`ed), log it as an artifact
TRAIN = """\
import mlflow, pathlib, sys
data = pathlib.Path("data/train.txt").read_bytes()
with mlflow.start_run() as run:
    pathlib.Path("models").mkdir(exist_ok=True)
    model = pathlib.Path("models/model.pkl")
    model.write_bytes(b"model of " + data + sys.argv[-1].encode())
    mlflow.log_artifact(str(model), "model")
print(run.info.run_id)
"""


def run_tags(uri: str, run_id: str) -> dict[str, str]:
    return dict(client(uri).get_run(run_id).data.tags)


def register(uri: str, run_id: str) -> tuple[str, str]:
    """Register the run's `model` artifact directory as a new model's version 1."""
    name = f"door-{uuid.uuid4().hex[:10]}"
    c = client(uri)
    c.create_registered_model(name)
    source = f"{c.get_run(run_id).info.artifact_uri}/model"
    mv = c.create_model_version(name, source, run_id=run_id)
    return name, str(mv.version)


def forge(uri: str, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    client(uri).log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def sync(repo: Path) -> str:
    proc = cli_here(repo, "tag-mlflow", "--sync", "--timeout", "120")
    wait_delivered(repo)
    log = repo / ".git" / "repro-hooks" / "delivery.log"
    return proc.stdout + proc.stderr + (log.read_text() if log.exists() else "")


@pytest.fixture
def lab(world: World, stamp_plugin: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world with the link hooks in dev, a fresh experiment selected, train.py a scratch
    script (ignored), and a bound on the detached deliveries."""
    name = f"doors-{uuid.uuid4().hex[:8]}"
    client(world.uri).create_experiment(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    write(world.dev / ".gitignore", "train.py\n")
    write(world.dev / "pyproject.toml", "[tool.repro-hooks.mlflow]\ntimeout = 120\n")
    install_local_hooks(world.dev, HOOKS, HOOK_TYPES)
    git(world.dev, "add", "-A")
    git(world.dev, "commit", "-q", "--no-verify", "-m", "hooks")
    git(world.dev, "push", "-q", "origin", "main")
    world.plugin = stamp_plugin  # type: ignore[attr-defined]
    return world


def train(lab: World, seed: str = "1") -> str:
    plugin = lab.plugin  # type: ignore[attr-defined]
    return run_script(lab.dev, TRAIN.replace("sys.argv[-1]", repr(seed)), lab.uri, plugin)


def commit_model(lab: World, message: str = "model") -> str:
    """`dvc add` the model, commit through the hooks, deliver the link, push git and DVC."""
    dvc(lab.dev, "add", "-q", "models/model.pkl")
    proc = commit(lab.dev, message, "models/model.pkl.dvc", "models/.gitignore", verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = sync(lab.dev)
    dvc(lab.dev, "push", "-q")
    git(lab.dev, "push", "-q", "origin", "main")
    lab.fetch()
    return out


def record_of(repo: Path, stamp: str) -> dict[str, Any]:
    path = repo / ".git" / "repro-hooks" / "runs" / f"{stamp}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# ---- door 1: hand-forged link tags ------------------------------------------------------------


FORGERIES = {
    # repro_hooks.link values and stamp tags a forger can write: (tags, rule, what the gate
    # says, the evidence level it states); each must fail
    "auto": (
        {EVIDENCE_TAG: "auto"},
        "link-unverified",
        "repro_hooks.link='auto' is no value tag-mlflow writes",
        "by-hand",
    ),
    "stamp-without-stamp": (
        {EVIDENCE_TAG: "stamp"},
        "stamp-invalid",
        "says repro_hooks.link=stamp but carries no stamp",
        "stamped",
    ),
    "mlflow-source": (
        {EVIDENCE_TAG: "mlflow-source"},
        "link-unverified",
        "is unstamped: its link rests on tags MLflow sets",
        "unstamped",
    ),
    "no-link-tag": ({}, "link-unverified", "no repro_hooks.link tag: written by hand?", "by-hand"),
    "stamp-from-elsewhere": (
        {
            EVIDENCE_TAG: "stamp",
            "repro_hooks.clone": "f" * 32,
            "repro_hooks.stamp": "e" * 32,
            "repro_hooks.head": "1234567890" * 4,  # a HEAD this repository never had
            "repro_hooks.evidence": "tree",
            "repro_hooks.clean": "true",
        },
        "stamp-invalid",
        "the stamp's HEAD 123456789012 is not in this repository",
        "stamped",
    ),
    "stage-kind-mismatch": (
        {
            EVIDENCE_TAG: "stage",
            "repro_hooks.clone": "f" * 32,
            "repro_hooks.stamp": "d" * 32,
            "repro_hooks.head": "1234567890" * 4,
            "repro_hooks.evidence": "tree",
        },
        "stamp-invalid",
        "repro_hooks.evidence='tree' does not fit repro_hooks.link=stage",
        "stamped",
    ),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_door1_hand_forged_link_fails(world: World, forgery: str) -> None:
    """A run unrelated to the repository (no stamp, a notebook elsewhere) gets main's tip and
    the DVC tags computed from the public .dvc files, plus whatever link tags a forger picks:
    the gate fails it, naming the evidence level it had; the honest version passes, stamped."""
    forged_name = f"forged-{uuid.uuid4().hex[:8]}"
    run_id, forged_version = log_and_register(world.uri, forged_name)
    c = client(world.uri)
    for key in run_tags(world.uri, run_id):
        if key.startswith("repro_hooks."):
            c.delete_tag(run_id, key)  # whatever the in-process stamp wrote: an unrelated run
    c.set_tag(run_id, "mlflow.source.name", "/home/someone-else/notebook.py")
    extra, rule, message, level = FORGERIES[forgery]
    tags = commit_record(Git.discover(world.ci), head(world.dev), "main").tags()
    forge(world.uri, run_id, {**tags, **extra})
    world.fetch()
    code, out, err = world.check(f"models:/{forged_name}/{forged_version}", "--record")
    assert code == 1, out + err
    assert message in out, out
    assert f"(evidence: {level})" in err and "FAILED" in err, err
    recorded = world.version_tags(forged_name, forged_version)
    assert recorded["pre_deploy_checks"] == "FAILED"
    assert rule in recorded["pre_deploy_checks.reason"].split(":")[0]
    # the honest version beside it passes, and says on what evidence
    name, version, _ = world.model()
    code, _, err = world.check(f"models:/{name}/{version}")
    assert code == 0, err
    assert "passed (evidence: stamped)" in err


def test_door1_accepted_links_below_stamped_say_so(world: World) -> None:
    """--allow-forced accepts a hand-written link, and the recorded reason says what it was."""
    name = f"by-hand-{time.monotonic_ns()}"
    run_id, version = log_and_register(world.uri, name)
    link(world.uri, run_id, world.dev, head(world.dev), statement=False)  # no statement: by hand
    client(world.uri).delete_tag(run_id, EVIDENCE_TAG)
    code, out, err = world.check(f"models:/{name}/{version}", "--allow-forced", "--record")
    assert code == 0, out + err
    assert "link written by hand (not by tag-mlflow), accepted by --allow-forced" in err
    reason = world.version_tags(name, version)["pre_deploy_checks.reason"]
    assert reason.endswith("; link written by hand (not by tag-mlflow), accepted by --allow-forced")


# ---- door 3: a pushed branch named HEAD ---------------------------------------------------------


def test_door3_pushed_branch_named_head_is_never_the_protected_branch(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A side commit pushed as branch `HEAD`; the deploy job checks out as actions/checkout does
    with fetch-depth 0 (`git init` + `fetch +refs/heads/*:refs/remotes/origin/*`): the plain
    refs/remotes/origin/HEAD is never taken for the protected branch."""
    git(world.dev, "checkout", "-q", "-b", "side")
    write(world.dev / "side.txt", "unreviewed\n")
    commit(world.dev, "unreviewed side commit")
    side = head(world.dev)
    git(world.dev, "push", "-q", "origin", "side:refs/heads/HEAD")
    name, version, _ = world.model()  # linked to the side commit
    git(world.dev, "checkout", "-q", "main")

    ci = tmp_path / "checkout"
    git(tmp_path, "init", "-q", str(ci))
    git(ci, "remote", "add", "origin", str(world.bare))
    git(ci, "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
    git(ci, "checkout", "-q", "--detach", "refs/remotes/origin/main")
    (ci / ".dvc" / "config.local").write_text((world.ci / ".dvc" / "config.local").read_text())
    assert git(ci, "symbolic-ref", "-q", "refs/remotes/origin/HEAD", check=False).strip() == ""
    assert git(ci, "rev-parse", "refs/remotes/origin/HEAD").strip() == side

    monkeypatch.chdir(ci)
    code, out, err = world.check(f"models:/{name}/{version}")
    assert (code, out) == (2, ""), err
    assert "refs/remotes/origin/HEAD is a plain ref, not the remote's default branch" in err
    assert "give --branch REF, or set [tool.repro-hooks.deploy] branch" in err
    # told which branch: the side commit is not on it
    code, out, err = world.check(f"models:/{name}/{version}", "--branch", "origin/main")
    assert code == 1, out + err
    assert "is not on origin/main" in out
    # the configured name does the same
    write(ci / "pyproject.toml", '[tool.repro-hooks.deploy]\nbranch = "main"\n')
    code, out, err = world.check(f"models:/{name}/{version}")
    assert code == 1, out + err
    assert "is not on origin/main" in out


def test_door3_the_pre_receive_hook_refuses_a_branch_named_head(world: World) -> None:
    """The server side: the README's pre-receive hook refuses to create refs/heads/HEAD."""
    hook = world.bare / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f'#!/bin/sh\nexec {sys.executable} -m repro_hooks pre-receive "$@"\n')
    hook.chmod(0o755)
    proc = subprocess.run(
        ["git", "push", "origin", "main:refs/heads/HEAD"],
        cwd=world.dev,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "refs/heads/HEAD: a branch named HEAD becomes a plain" in proc.stderr
    assert git(world.bare, "show-ref", check=False).count("refs/heads/HEAD") == 0


# ---- door 4: a copied stamp ---------------------------------------------------------------------


@pytest.mark.parametrize("later_ms", [0, 1], ids=["same-start", "one-ms-later"])
def test_door4_copied_stamp_never_links_and_the_gate_reports_it(lab: World, later_ms: int) -> None:
    real = train(lab)
    real_tags = run_tags(lab.uri, real)
    stamp = real_tags["repro_hooks.stamp"]
    c = client(lab.uri)
    info = c.get_run(real).info
    copied = {k: v for k, v in real_tags.items() if k.startswith("repro_hooks.")}
    copy = c.create_run(info.experiment_id, start_time=info.start_time + later_ms, tags=copied)
    copy_id = copy.info.run_id
    c.set_terminated(copy_id, end_time=info.end_time + later_ms)

    out = commit_model(lab)
    assert run_tags(lab.uri, real).get("git.commit") == head(lab.dev), out
    assert "git.commit" not in run_tags(lab.uri, copy_id), out
    assert record_of(lab.dev, stamp)["run"] == real  # the clone's record names its run

    # the copier also copies the link onto its run and registers it: the gate reports the
    # stamp carried by two runs (for both versions: it cannot tell which is the real one)
    link = {k: v for k, v in run_tags(lab.uri, real).items() if k.startswith(("git.", "dvc."))}
    forge(lab.uri, copy_id, {**link, EVIDENCE_TAG: "stamp"})
    name, version = register(lab.uri, copy_id)
    code, out, err = lab.check(f"models:/{name}/{version}")
    assert code == 1, out + err
    assert f"run {copy_id}'s stamp {stamp} is also carried by run(s) {real}" in out


def test_door4_a_record_naming_no_run_qualifies_no_shared_stamp(lab: World) -> None:
    """A training process killed before it knew its run leaves a record naming none: with a
    copy of the stamp on another run, neither is linked, and the user is told why."""
    real = train(lab)
    real_tags = run_tags(lab.uri, real)
    stamp = real_tags["repro_hooks.stamp"]
    path = lab.dev / ".git" / "repro-hooks" / "runs" / f"{stamp}.json"
    record = json.loads(path.read_text())
    record.pop("run", None)  # what a killed process leaves
    path.write_text(json.dumps(record))
    c = client(lab.uri)
    info = c.get_run(real).info
    copied = {k: v for k, v in real_tags.items() if k.startswith("repro_hooks.")}
    copy = c.create_run(info.experiment_id, start_time=info.start_time, tags=copied)
    c.set_terminated(copy.info.run_id, end_time=info.end_time)
    out = commit_model(lab)
    assert "git.commit" not in run_tags(lab.uri, real), out
    assert "git.commit" not in run_tags(lab.uri, copy.info.run_id), out
    assert "a shared stamp qualifies no run" in out


# ---- door 5: a script outside the repository ------------------------------------------------


def test_door5_a_script_outside_the_work_tree_is_not_stamped(lab: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "someone-else"
    elsewhere.mkdir()
    script = elsewhere / "notebook.py"
    script.write_text(TRAIN.replace("sys.argv[-1]", "'outside'"))
    env = train_env(lab.uri, lab.plugin)  # type: ignore[attr-defined]
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=lab.dev,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    outside = proc.stdout.strip().splitlines()[-1]
    assert not any(k.startswith("repro_hooks.") for k in run_tags(lab.uri, outside))
    out = commit_model(lab)
    assert "git.commit" not in run_tags(lab.uri, outside), out
    name, version = register(lab.uri, outside)
    code, out, err = lab.check(f"models:/{name}/{version}")
    assert code == 1 and "is linked to no commit" in out, out + err
    # what keeps working: a module of the repository (`python -m`), and `python -c` from it
    write(lab.dev / "pkg" / "__init__.py", "")
    write(lab.dev / "pkg" / "fit.py", TRAIN.replace("sys.argv[-1]", "'module'"))
    for args in (["-m", "pkg.fit"], ["-c", TRAIN.replace("sys.argv[-1]", "'inline'")]):
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=lab.dev,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        run_id = proc.stdout.strip().splitlines()[-1]
        assert run_tags(lab.uri, run_id).get("repro_hooks.clone"), args


# ---- door 6: data in no remote ------------------------------------------------------------------


def test_door6_push_false_data_fails_unless_the_protected_branch_allows_it(world: World) -> None:
    write(world.dev / "data" / "private.txt", "only on my laptop\n")
    dvc(world.dev, "add", "-q", "data/private.txt")
    dvc_file = world.dev / "data" / "private.txt.dvc"
    dvc_file.write_text(dvc_file.read_text().replace("  path:", "  push: false\n  path:"))
    commit(world.dev, "private data")
    dvc(world.dev, "push", "-q")
    # the laptop hook only notes it: DVC never pushes such data, by design
    laptop = cli_here(world.dev, "check-dvc-remote", "--range", "HEAD~1..HEAD")
    assert laptop.returncode == 0, laptop.stdout + laptop.stderr
    assert "note: data/private.txt: push: false in data/private.txt.dvc" in laptop.stderr
    git(world.dev, "push", "-q", "origin", "main")
    name, version, _ = world.model()
    world.fetch()
    git(world.ci, "merge", "-q", "--ff-only", "origin/main")
    # the change under review cannot allow it: only the protected branch's policy counts
    write(world.ci / "pyproject.toml", "[tool.repro-hooks.deploy]\nallow-push-false = true\n")
    code, out, err = world.check(f"models:/{name}/{version}")
    assert code == 1, out + err
    assert "data/private.txt: push: false in data/private.txt.dvc: its data (" in out
    (world.ci / "pyproject.toml").unlink()

    write(world.dev / "pyproject.toml", "[tool.repro-hooks.deploy]\nallow-push-false = true\n")
    commit(world.dev, "policy: push: false data may be deployed")
    git(world.dev, "push", "-q", "origin", "main")
    world.fetch()
    code, out, err = world.check(f"models:/{name}/{version}", "--record")
    assert code == 0, out + err
    assert "data/private.txt: push: false in data/private.txt.dvc" in err
    reason = world.version_tags(name, version)["pre_deploy_checks.reason"]
    assert "data/private.txt: push: false" in reason and "(allowed by policy)" in reason


def test_door6_cache_false_output_must_be_in_the_commit(world: World) -> None:
    write(
        world.dev / "dvc.yaml",
        "stages:\n  evaluate:\n    cmd: cp data/train.txt metrics.json\n"
        "    deps: [data/train.txt]\n    metrics:\n    - metrics.json:\n        cache: false\n",
    )
    dvc(world.dev, "repro", "-q")
    write(world.dev / ".gitignore", "/metrics.json\n")  # kept out of git by mistake
    commit(world.dev, "evaluate", "dvc.yaml", "dvc.lock", ".gitignore")
    git(world.dev, "push", "-q", "origin", "main")
    name, version, _ = world.model()
    world.fetch()
    code, out, err = world.check(f"models:/{name}/{version}")
    assert code == 1, out + err
    assert "metrics.json: cache: false output recorded in dvc.lock is not in commit" in out


# ---- door 7: a model trained from other code, linked by hand --------------------------------


def test_door7_other_code_linked_with_the_hint_does_not_pass(lab: World) -> None:
    write(lab.dev / "features.py", "SCALE = 1\n")
    git(lab.dev, "add", "features.py")
    git(lab.dev, "commit", "-q", "--no-verify", "-m", "features")
    write(lab.dev / "features.py", "SCALE = 1000  # an experiment never committed\n")
    run_id = train(lab)
    git(lab.dev, "checkout", "-q", "--", "features.py")
    out = commit_model(lab)
    assert "git.commit" not in run_tags(lab.uri, run_id), out
    name, version = register(lab.uri, run_id)
    code, out, err = lab.check(f"models:/{name}/{version}")
    assert code == 1 and "is linked to no commit" in out, out + err
    assert "tag-mlflow --run-id <id>` links a run to HEAD only if HEAD records" in out

    # the hint, as printed: the rules refuse, nothing is linked
    given = cli_here(lab.dev, "tag-mlflow", "--run-id", run_id)
    assert given.returncode == 1, given.stdout + given.stderr
    assert "features.py" in given.stdout + given.stderr
    assert "git.commit" not in run_tags(lab.uri, run_id)
    # forced: linked, marked, and the gate fails it; accepted only when told, and then says so
    forced = cli_here(lab.dev, "tag-mlflow", "--run-id", run_id, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert run_tags(lab.uri, run_id)[EVIDENCE_TAG] == "forced"
    lab.fetch()
    code, out, err = lab.check(f"models:/{name}/{version}", "--record", "--promote", "champion")
    assert code == 1, out + err
    assert "was forced by" in out and "features.py" in out
    assert "(evidence: forced)" in err
    code, out, err = lab.check(f"models:/{name}/{version}", "--record", "--allow-forced")
    assert code == 0, out + err
    reason = lab.version_tags(name, version)["pre_deploy_checks.reason"]
    assert "link forced by " in reason and "accepted by --allow-forced" in reason
    assert "features.py" in reason
