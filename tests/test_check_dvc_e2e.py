"""require-dvc-files end to end: the real pre-commit framework and a real `git commit`, blocked
for each finding type and allowed once fixed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dvc_helpers import dvc
from tests.helpers import commit, git, install_local_hooks, write

Step = Callable[[Path], None]


def _break_data_in_git(r: Path) -> None:
    write(r / "raw.csv", "a\n1\n")
    git(r, "add", "raw.csv")


def _fix_data_in_git(r: Path) -> None:
    git(r, "rm", "-q", "--cached", "raw.csv")
    dvc(r, "add", "-q", "raw.csv")
    git(r, "add", "raw.csv.dvc", ".gitignore")


def _tracked_data(r: Path) -> None:
    write(r / "data/table.bin", b"v1")
    dvc(r, "add", "-q", "data")
    git(r, "add", "data.dvc", ".gitignore")
    git(r, "commit", "-q", "--no-verify", "-m", "data")


def _break_stale(r: Path) -> None:
    _tracked_data(r)
    write(r / "data/table.bin", b"v2")


def _fix_stale(r: Path) -> None:
    dvc(r, "commit", "-q", "-f", "data.dvc")
    git(r, "add", "data.dvc")


def _break_missing(r: Path) -> None:
    _tracked_data(r)
    (r / "data/table.bin").unlink()
    (r / "data").rmdir()


def _fix_missing(r: Path) -> None:
    dvc(r, "checkout", "-q")


def _break_stale_lock(r: Path) -> None:
    write(r / "in.txt", "1\n")
    dvc(r, "stage", "add", "-q", "-n", "copy", "-d", "in.txt", "-o", "out.txt", "cp in.txt out.txt")
    dvc(r, "repro", "-q")
    git(r, "add", "dvc.yaml", "dvc.lock", ".gitignore", "in.txt")
    git(r, "commit", "-q", "--no-verify", "-m", "pipeline")
    write(r / "in.txt", "2\n")
    git(r, "add", "in.txt")


def _fix_stale_lock(r: Path) -> None:
    dvc(r, "repro", "-q")
    git(r, "add", "dvc.lock")


def _break_not_ignored(r: Path) -> None:
    write(r / "weights.bin", b"w")
    dvc(r, "add", "-q", "weights.bin")
    (r / ".gitignore").unlink()
    git(r, "add", "weights.bin.dvc")


def _fix_not_ignored(r: Path) -> None:
    write(r / ".gitignore", "/weights.bin\n")
    git(r, "add", ".gitignore")


def _break_malformed(r: Path) -> None:
    write(r / "bad.dvc", "outs:\n- path: ../../etc/passwd\n")
    git(r, "add", "bad.dvc")


def _fix_malformed(r: Path) -> None:
    git(r, "rm", "-q", "-f", "bad.dvc")


CASES = [
    pytest.param(
        _break_data_in_git, _fix_data_in_git, "data file stored in git", "raw.csv", id="data-in-git"
    ),
    pytest.param(_break_stale, _fix_stale, "differs from data.dvc", "data", id="stale-dvc"),
    pytest.param(_break_missing, _fix_missing, "is missing", "data", id="missing-output"),
    pytest.param(_break_stale_lock, _fix_stale_lock, "dep of stage 'copy'", "in.txt", id="lock"),
    pytest.param(_break_not_ignored, _fix_not_ignored, "not ignored", "weights.bin", id="ignore"),
    pytest.param(_break_malformed, _fix_malformed, "escapes the repository", "bad.dvc", id="bad"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("breaks", "fixes", "says", "path"), CASES)
def test_commit_blocked_then_allowed(
    dvc_repo: Path, breaks: Step, fixes: Step, says: str, path: str
) -> None:
    install_local_hooks(dvc_repo, ["require-dvc-files"], ["pre-commit"])
    breaks(dvc_repo)
    write(dvc_repo / "notes.txt", "one\n")
    blocked = commit(dvc_repo, "blocked", "notes.txt", verify=True)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    said = blocked.stdout + blocked.stderr  # git shows the hook's output on either stream
    assert says in said and f"{path}" in said, said
    assert git(dvc_repo, "log", "-1", "--format=%s").strip() != "blocked"
    fixes(dvc_repo)
    allowed = commit(dvc_repo, "allowed", "notes.txt", verify=True)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert git(dvc_repo, "log", "-1", "--format=%s").strip() == "allowed"
