"""prek (a reimplementation of pre-commit, from PyPI) runs every repro-hooks hook as pre-commit
does: `prek install` for each hook type, then real commits (one blocked, one accepted), an
amend, and pushes (one refused, one accepted)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.dvc_helpers import dvc
from tests.helpers import MANIFEST, VENV_BIN, big, git, write
from tests.stamp_helpers import stamped_run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # MLflow's own, in-process
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
HOOK_TYPES = ["pre-commit", "post-commit", "post-rewrite", "post-merge", "pre-push"]


def prek_config(repo: Path) -> list[str]:
    """Every hook of our manifest as a `repo: local` hook (the installed console script)."""
    hooks = []
    for hook in yaml.safe_load(MANIFEST.read_text()):
        hook = {k: v for k, v in hook.items() if k not in ("minimum_pre_commit_version",)}
        hook["language"] = "unsupported"
        hook.pop("additional_dependencies", None)
        hooks.append(hook)
    config = {"repos": [{"repo": "local", "hooks": hooks}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return [h["id"] for h in hooks]


def run(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        list(args),
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_prek_runs_every_hook(
    dvc_repo: Path, tmp_path: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = dvc_repo
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    dvc(repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    ids = prek_config(repo)
    assert len(ids) == 7
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "config")
    types = [a for t in HOOK_TYPES for a in ("--hook-type", t)]
    code, out = run(repo, str(VENV_BIN / "prek"), "install", *types)
    assert code == 0, out
    for hook_type in HOOK_TYPES:
        assert "prek" in (repo / ".git" / "hooks" / hook_type).read_text()

    # commit stage: a large CSV is blocked, once; a small .dvc-tracked file goes through
    write(repo / "data/train.csv", big(700 * 1024))
    git(repo, "add", "data/train.csv")
    code, out = run(repo, "git", "commit", "-m", "data in git")
    assert code == 1, out
    assert out.count("data/train.csv:") == 1, out
    assert "data/train.csv: 700 KiB in git" in out
    git(repo, "rm", "-q", "--cached", "data/train.csv")
    dvc(repo, "add", "-q", "data/train.csv")
    git(repo, "add", "data/train.csv.dvc", "data/.gitignore")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=sqlite_store)
    run_id = stamped_run(sqlite_store, repo)  # a run of this clone, as the plugin stamps it
    code, out = run(repo, "git", "commit", "-m", "data in DVC")
    assert code == 0, out
    assert "link the commit to its MLflow run" in out  # post-commit hook ran
    code, out = run(repo, "git", "commit", "--amend", "-m", "data in DVC (amended)")
    assert code == 0, out
    assert "move MLflow run links" in out  # post-rewrite hook ran
    head = git(repo, "rev-parse", "HEAD").strip()
    code, out = run(repo, str(VENV_BIN / "repro-hooks"), "tag-mlflow", "--sync", "--timeout", "300")
    assert code == 0, out
    assert client.get_run(run_id).data.tags.get("git.commit") == head

    # push stage: the DVC data is not in its remote yet, then it is
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    code, out = run(repo, "git", "push", "origin", "main")
    assert code == 1, out
    assert "not in DVC remote" in out
    assert "scan pushed commits" in out
    dvc(repo, "push", "-q")
    code, out = run(repo, "git", "push", "origin", "main")
    assert code == 0, out
    assert git(remote, "rev-parse", "main").strip() == head
