"""Stamped MLflow runs for the link tests: the real `mlflow.run_context_provider` plugin, and
runs made in-process with the same stamp code (links/stamp.py) when a test is about delivery.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from repro_hooks.links import stamp as stamp_mod

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = "[mlflow.run_context_provider]\nrepro-hooks = repro_hooks.links.stamp:RunStamp\n"


@pytest.fixture(scope="session")
def stamp_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the distribution metadata `pip install repro-hooks` writes for the
    plugin (entry_points.txt as declared in pyproject.toml): on PYTHONPATH, MLflow finds the
    entry point through importlib.metadata, exactly as for an installed package."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["mlflow.run_context_provider"] == {
        "repro-hooks": "repro_hooks.links.stamp:RunStamp"
    }
    site = tmp_path_factory.mktemp("plugin-site")
    info = site / "repro_hooks_stamp_test-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: repro-hooks-stamp-test\nVersion: 0.0\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


def train_env(uri: str, plugin: Path | None, **extra: str) -> dict[str, str]:
    """The environment of a training process: with the plugin (stamped) or without it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, **extra}
    paths = [str(ROOT)] + ([str(plugin)] if plugin else [])
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]  # coverage
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if plugin is None:
        env[stamp_mod.DISABLE_ENV] = "0"  # even if an installed repro-hooks registers it
    return env


def run_script(
    cwd: Path, script: str, uri: str, plugin: Path | None, name: str = "train.py", **extra: str
) -> str:
    """Write `script` to cwd/name and run it there with the venv's python; the last line it
    prints (the scripts print their run id last)."""
    path = cwd / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    proc = subprocess.run(
        [sys.executable, str(path) if extra.pop("absolute", "") else name],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=train_env(uri, plugin, **extra),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(uri: str, experiment: str | None) -> str:
    if experiment is None:
        return "0"
    c = client(uri)
    found = c.get_experiment_by_name(experiment)
    return str(found.experiment_id if found else c.create_experiment(experiment))


def stamped_run(uri: str, repo: Path, experiment: str | None = None, finish: bool = True) -> str:
    """A run stamped by the real stamp code, created with MlflowClient in this process (what
    `mlflow.start_run()` does with the plugin, without a training process)."""
    started = time.time()
    tags = stamp_mod.take_stamp(str(repo), at_exit=False)
    assert tags, "the stamp found no repository"
    tags |= {"mlflow.user": getpass.getuser(), "mlflow.source.name": str(repo / "train.py")}
    c = client(uri)
    run = c.create_run(experiment_id(uri, experiment), tags=tags)
    if finish:
        c.set_terminated(run.info.run_id)
        common = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        runs = os.path.join(common, "repro-hooks", "runs")
        stamp_mod.record_end(runs, [tags[stamp_mod.STAMP_TAG]], str(repo), started)
    time.sleep(0.005)  # distinct start times
    return str(run.info.run_id)


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def dvc_file(path: str, data: bytes) -> str:
    """A DVC 3 `.dvc` file describing `data` at `path`."""
    return f"outs:\n- md5: {md5_of(data)}\n  size: {len(data)}\n  hash: md5\n  path: {path}\n"
