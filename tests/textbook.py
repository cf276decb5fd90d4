"""The textbook DVC + MLflow project, as a fixture: what every DVC tutorial builds.

A git repository with `dvc init`, a local DVC remote (a directory), `params.yaml`, `dvc.yaml` with
prepare -> train -> evaluate (`prepare` reads `data/raw.csv`, `dvc add`ed, and writes
`data/prepared/`; `train` reads the prepared data, `train.py` and its params, writes `model.pkl`
and logs to MLflow; `evaluate` writes `metrics.json` and a JSON plot with `cache: false`, in git),
small pure-Python scripts, and the README's hooks (their hook types recorded as pre-commit's
`default_install_hook_types`) installed in each clone by one command, `repro-hooks setup` (real
`pre-commit install` plus the pre-push shim). Two clones of it, "alice" and "bob", pushed to a bare "origin".

Built once per test run (tests/helpers.built_once, the pipeline reproduced once, its data pushed
to the DVC remote) and copied per test. repro-hooks is installed in the training environment:
the dev venv registers its stamp plugin (`mlflow.run_context_provider`), and the stage commands
run that venv's `python` (first on PATH).

The training script has three test affordances, all through its environment: it appends
`<run id> <cwd> <status>` to TEXTBOOK_RUN_LOG (outside the repository); with TEXTBOOK_HOLD=<dir>
it writes `<dir>/started` once its run has started and waits for `<dir>/go`; with
TEXTBOOK_CRASH=1 it raises after starting its run (MLflow marks the run FAILED).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import dvc_server
from tests.helpers import MANIFEST, built_once, git, wait_until, write

VENV_BIN = Path(sys.executable).parent

RAW = "".join(f"{x},{2 * x + (x % 3)}\n" for x in range(1, 41))
PARAMS = "prepare:\n  split: 0.25\ntrain:\n  lr: 0.1\n  epochs: 5\n"

PREPARE = """\
import os

import yaml

split = yaml.safe_load(open("params.yaml"))["prepare"]["split"]
rows = [line for line in open("data/raw.csv").read().splitlines() if line]
cut = int(len(rows) * (1 - split))
os.makedirs("data/prepared", exist_ok=True)
with open("data/prepared/train.csv", "w") as fh:
    fh.write("\\n".join(rows[:cut]) + "\\n")
with open("data/prepared/test.csv", "w") as fh:
    fh.write("\\n".join(rows[cut:]) + "\\n")
"""

TRAIN = """\
import os
import pickle
import time

import mlflow
import yaml

params = yaml.safe_load(open("params.yaml"))["train"]


def log(run_id, status):
    path = os.environ.get("TEXTBOOK_RUN_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{run_id} {os.getcwd()} {status}\\n")


with mlflow.start_run() as run:
    log(run.info.run_id, "started")
    mlflow.log_params(params)
    hold = os.environ.get("TEXTBOOK_HOLD")
    if hold:
        open(os.path.join(hold, "started"), "w").close()
        while not os.path.exists(os.path.join(hold, "go")):
            time.sleep(0.05)
    rows = [line.split(",") for line in open("data/prepared/train.csv").read().split()]
    w = 0.0
    for _ in range(params["epochs"]):
        w += params["lr"] * (sum(float(y) / float(x) for x, y in rows) / len(rows) - w)
    if os.environ.get("TEXTBOOK_CRASH"):
        raise RuntimeError("training crashed (TEXTBOOK_CRASH)")
    with open("model.pkl", "wb") as fh:
        pickle.dump({"w": w, "params": params}, fh)
    mlflow.log_metric("w", w)
    mlflow.log_artifact("model.pkl")
log(run.info.run_id, "finished")
print(run.info.run_id)
"""

EVALUATE = """\
import json
import os
import pickle

model = pickle.load(open("model.pkl", "rb"))
rows = [line.split(",") for line in open("data/prepared/test.csv").read().split()]
errors = [float(y) - model["w"] * float(x) for x, y in rows]
with open("metrics.json", "w") as fh:
    json.dump({"mse": round(sum(e * e for e in errors) / len(errors), 6)}, fh)
    fh.write("\\n")
os.makedirs("plots", exist_ok=True)
with open("plots/errors.json", "w") as fh:
    json.dump([{"x": float(x), "error": round(e, 6)} for (x, _), e in zip(rows, errors)], fh)
"""

DVC_YAML = """\
stages:
  prepare:
    cmd: python prepare.py
    deps:
    - prepare.py
    - data/raw.csv
    params:
    - prepare.split
    outs:
    - data/prepared
  train:
    cmd: python train.py
    deps:
    - train.py
    - data/prepared
    params:
    - train.lr
    - train.epochs
    outs:
    - model.pkl
  evaluate:
    cmd: python evaluate.py
    deps:
    - evaluate.py
    - model.pkl
    - data/prepared
    metrics:
    - metrics.json:
        cache: false
    plots:
    - plots/errors.json:
        cache: false
"""

README = "# textbook\n\nThe DVC tutorial's pipeline: prepare -> train -> evaluate.\n"

# the README's hooks (README.md, "Quick start"), and the hook types it installs
HOOK_IDS = [
    "block-large-files",
    "require-dvc-files",
    "mlflow-tag-commit",
    "mlflow-relink-rewritten",
    "mlflow-tag-merge",
    "scan-pushed-commits",
    "require-dvc-pushed",
]
HOOK_TYPES = ["pre-commit", "post-commit", "post-rewrite", "post-merge", "pre-push"]
CLONES = ("alice", "bob")


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Real `dvc *args` in repo with this process's environment (DVC's own entry point,
    forked from a warm interpreter: tests/dvc_server.py)."""
    proc = dvc_server.run(list(args), repo)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def hooks_config() -> str:
    """The README's hooks as a `repo: local` config built from our manifest (entries, stages and
    flags as published; language `unsupported`: the venv's console script runs)."""
    manifest = {h["id"]: h for h in yaml.safe_load(MANIFEST.read_text())}
    hooks = []
    for hook_id in HOOK_IDS:
        hook = dict(manifest[hook_id])
        hook["language"] = "unsupported"
        hook.pop("minimum_pre_commit_version", None)
        hook.pop("additional_dependencies", None)
        hooks.append(hook)
    config = {
        "default_install_hook_types": HOOK_TYPES,  # which hooks a clone needs, recorded
        "repos": [{"repo": "local", "hooks": hooks}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def install_hooks(clone: Path) -> None:
    """What a teammate runs in a new clone, one command: `repro-hooks setup` (pre-commit install
    of the hook types the config records, and the pre-push shim)."""
    proc = subprocess.run(
        [str(VENV_BIN / "repro-hooks"), "setup"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = clone / ".git" / "hooks"
    for name in [*HOOK_TYPES, "pre-push.legacy"]:
        assert (hooks / name).is_file(), f"{clone.name}: `repro-hooks setup` installed no {name}"


def write_project(repo: Path) -> None:
    for name, text in {
        "data/raw.csv": RAW,
        "params.yaml": PARAMS,
        "prepare.py": PREPARE,
        "train.py": TRAIN,
        "evaluate.py": EVALUATE,
        "dvc.yaml": DVC_YAML,
        "README.md": README,
        ".pre-commit-config.yaml": hooks_config(),
    }.items():
        write(repo / name, text)


def build_textbook(path: Path, tracking_uri: str) -> None:
    """origin.git (bare), dvc-remote/, alice/ (the project, reproduced and pushed) and bob/
    (cloned from origin, data pulled); both with the hooks installed."""
    origin, alice, bob = path / "origin.git", path / "alice", path / "bob"
    git(path, "init", "-q", "--bare", "-b", "main", str(origin))
    (path / "dvc-remote").mkdir()
    alice.mkdir()
    git(alice, "init", "-q", "-b", "main")
    dvc(alice, "init", "-q")
    dvc(alice, "remote", "add", "-d", "local", "../dvc-remote")
    write_project(alice)
    dvc(alice, "add", "-q", "data/raw.csv")
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": "textbook-build",
        "REPRO_HOOKS_STAMP": "0",  # the build's run is nobody's
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        dvc(alice, "repro", "-q")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    git(alice, "add", "-A")
    git(alice, "commit", "-q", "--no-verify", "-m", "the textbook pipeline")
    dvc(alice, "push", "-q")
    git(alice, "remote", "add", "origin", str(origin))
    git(alice, "push", "-q", "--no-verify", "-u", "origin", "main")
    git(path, "clone", "-q", str(origin), str(bob))
    dvc(bob, "pull", "-q")
    for clone in (alice, bob):
        install_hooks(clone)


@dataclass
class Textbook:
    """One test's copy of the textbook project: two clones, their origin, the DVC remote, the
    session's `mlflow server` and this test's experiment."""

    root: Path
    uri: str
    experiment: str
    run_log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def alice(self) -> Path:
        return self.root / "alice"

    @property
    def bob(self) -> Path:
        return self.root / "bob"

    @property
    def origin(self) -> Path:
        return self.root / "origin.git"

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    # ---- what a teammate does -----------------------------------------------------------------

    def set_param(self, clone: Path, key: str, value: object) -> None:
        params = yaml.safe_load((clone / "params.yaml").read_text())
        section, name = key.split(".")
        params[section][name] = value
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def repro(self, clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return dvc(clone, "repro", "-q", *args)

    def commit(self, clone: Path, message: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`git add -A` then a real `git commit` with the hooks; the commit must be made."""
        git(clone, "add", "-A")
        proc = subprocess.run(
            ["git", "commit", "-m", message, *args],
            cwd=clone,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def push(self, clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "push", "origin", *args],
            cwd=clone,
            capture_output=True,
            text=True,
            check=False,
        )

    def head(self, clone: Path, rev: str = "HEAD") -> str:
        return git(clone, "rev-parse", rev).strip()

    # ---- what the test reads ------------------------------------------------------------------

    def runs(self, clone: Path | None = None, status: str = "finished") -> list[str]:
        """Run ids the training script logged (oldest first), of one clone (its cwd under the
        clone, a `--temp` experiment's copy included) or of all."""
        if not self.run_log.exists():
            return []
        found = []
        for line in self.run_log.read_text().splitlines():
            run_id, cwd, what = line.split(" ")
            if what == status and (clone is None or Path(cwd).is_relative_to(clone)):
                found.append(run_id)
        return found

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client().get_run(run_id).data.tags)

    def linked(self, run_id: str) -> str | None:
        return self.tags(run_id).get("git.commit")

    def delivery_log(self, clone: Path) -> str:
        path = clone / ".git" / "repro-hooks" / "delivery.log"
        return path.read_text() if path.exists() else ""

    def wait_delivered(self, clone: Path) -> None:
        from tests.mlflow_fixtures import queue_files, wait_unlocked

        wait_until(
            lambda: not queue_files(clone),
            lambda: f"links of {clone.name} never delivered:\n{self.delivery_log(clone)}",
        )
        wait_unlocked(clone)


def copy_textbook(built: Path, dest: Path) -> None:
    """A private copy of the built project: origin re-pointed, no run records or delivery
    state (each clone gets its own clone id on its first stamped run)."""
    shutil.copytree(built, dest, symlinks=True)
    for name in CLONES:
        clone = dest / name
        git(clone, "remote", "set-url", "origin", str(dest / "origin.git"))
        shutil.rmtree(clone / ".git" / "repro-hooks", ignore_errors=True)
        # the DVC remote by its absolute path, in the clone's own config (DVC resolves a
        # relative URL read from an older commit's .dvc/config against `/`: `dvc push
        # --all-commits` wrote to /dvc-remote)
        (clone / ".dvc" / "config.local").write_text(
            f"['remote \"local\"']\n    url = {dest / 'dvc-remote'}\n"
        )


def new_textbook(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    mlflow_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> Textbook:
    """A test's copy of the textbook project, both clones using the session's server and an
    experiment of the test's own (created), MLFLOW_* set as a teammate's shell has them."""
    built = built_once(
        tmp_path_factory, "textbook", lambda path: build_textbook(path, mlflow_server.url)
    )
    root = tmp_path / "textbook"
    copy_textbook(built, root)
    experiment = f"textbook-{name}"[:200]
    book = Textbook(root, mlflow_server.url, experiment, tmp_path / "runs.log")
    book.client().create_experiment(experiment)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    monkeypatch.setenv("TEXTBOOK_RUN_LOG", str(book.run_log))
    return book
