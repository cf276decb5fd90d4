"""Real-DVC helpers for the check-dvc tests: DVC itself is the oracle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests import dvc_server
from tests.helpers import cli_here, git


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`dvc *args` in repo: DVC's own entry point, forked from a warm interpreter (dvc_server.py)."""
    proc = dvc_server.run(list(args), repo)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc_status_rc(repo: Path) -> int:
    """`dvc status -q`: 1 when anything is out of date (the oracle)."""
    return dvc(repo, "status", "-q", check=False).returncode


def make_template(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    dvc(path, "init", "-q")
    dvc(path, "config", "core.autostage", "false")
    git(path, "add", "-A")
    git(path, "commit", "-q", "--no-verify", "-m", "dvc init")
    return path


def clone_template(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def ours(repo: Path, *args: str) -> tuple[int, list[dict[str, str]]]:
    """Our verdict: exit code and findings (json)."""
    proc = cli_here(repo, "check-dvc", "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


DVC_STATE_RULES = {"stale-dvc", "missing-output", "stale-lock"}


def ours_state_rc(repo: Path) -> int:
    """1 when we report anything `dvc status` also covers, else 0."""
    _, findings = ours(repo)
    return int(any(f["rule"] in DVC_STATE_RULES for f in findings))
