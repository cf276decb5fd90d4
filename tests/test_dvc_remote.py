"""check-dvc-remote / require-dvc-pushed: real DVC, a local-directory DVC remote, real pushes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from tests.dvc_helpers import dvc
from tests.helpers import commit, git, install_local_hooks, write


@pytest.fixture
def dvc_repo(repo: Path, tmp_path: Path) -> Path:
    dvc(repo, "init", "-q")
    dvc(repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    commit(repo, "dvc init")
    return repo


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_missing_then_pushed(dvc_repo: Path, tmp_path: Path) -> None:
    base = git(dvc_repo, "rev-parse", "HEAD").strip()
    write(dvc_repo / "data/a.txt", "hello\n")
    write(dvc_repo / "data/imgs/1.txt", "one\n")
    write(dvc_repo / "data/imgs/2.txt", "two\n")
    dvc(dvc_repo, "add", "-q", "data/a.txt", "data/imgs")
    commit(dvc_repo, "data")
    code, out = invoke("check-dvc-remote", "--range", f"{base}..HEAD")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("data/a.txt: b1946ac92492d2347c6235b4d2611184 not in DVC remote")
    assert lines[1].startswith("data/imgs: 2 file(s) of the directory ")
    assert "  dvc push" in out
    dvc(dvc_repo, "push", "-q")
    assert invoke("check-dvc-remote", "--range", f"{base}..HEAD") == (0, "")
    # one file of the directory lost from the remote
    store = tmp_path / "store" / "files" / "md5"
    next(p for p in store.rglob("*") if p.is_file() and not p.name.endswith(".dir")).unlink()
    assert invoke("check-dvc-remote", "--all-history")[0] == 1


def test_no_remote_and_no_dvc(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dvc(repo, "init", "-q")
    write(repo / "d.txt", "x\n")
    dvc(repo, "add", "-q", "d.txt")
    commit(repo, "data")
    code, out = invoke("check-dvc-remote", "--all-history")
    assert code == 2
    assert "no DVC remote" in out
    monkeypatch.setitem(sys.modules, "dvc.repo", None)
    code, out = invoke("check-dvc-remote", "--all-history")
    assert code == 2
    assert out.strip() == (
        "repro-hooks: check-dvc-remote needs DVC, which is not installed "
        "(pip install 'repro-hooks[dvc]')"
    )


@pytest.mark.e2e
def test_require_dvc_pushed_through_pre_commit(dvc_repo: Path, tmp_path: Path) -> None:
    install_local_hooks(
        dvc_repo, ["require-dvc-pushed"], ["pre-push"],
        {"require-dvc-pushed": {"additional_dependencies": []}},
    )  # fmt: skip
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(dvc_repo, "remote", "add", "origin", str(remote))
    write(dvc_repo / "model.bin", "weights\n")
    dvc(dvc_repo, "add", "-q", "model.bin")
    commit(dvc_repo, "model")

    def push() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "push", "origin", "main"], cwd=dvc_repo, capture_output=True, text=True,
            check=False,
        )  # fmt: skip

    proc = push()
    assert proc.returncode != 0
    assert "model.bin: " in proc.stdout
    assert "not in DVC remote 'store'" in proc.stdout
    dvc(dvc_repo, "push", "-q")
    proc = push()
    assert proc.returncode == 0, proc.stdout + proc.stderr
