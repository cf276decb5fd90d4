"""check-dvc-remote / require-dvc-pushed: real DVC, a local-directory DVC remote, real pushes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.snippets import pip_install
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
        f"repro-hooks: check-dvc-remote needs DVC, which is not installed ({pip_install('dvc')})"
    )


@pytest.mark.e2e
def test_require_dvc_pushed_through_pre_commit(dvc_repo: Path, tmp_path: Path) -> None:
    install_local_hooks(
        dvc_repo,
        ["require-dvc-pushed"],
        ["pre-push"],
        {"require-dvc-pushed": {"additional_dependencies": []}},
    )
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(dvc_repo, "remote", "add", "origin", str(remote))
    write(dvc_repo / "model.bin", "weights\n")
    dvc(dvc_repo, "add", "-q", "model.bin")
    commit(dvc_repo, "model")

    def push() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "push", "origin", "main"],
            cwd=dvc_repo,
            capture_output=True,
            text=True,
            check=False,
        )

    proc = push()
    assert proc.returncode != 0
    assert "model.bin: " in proc.stdout
    assert "not in DVC remote 'store'" in proc.stdout
    dvc(dvc_repo, "push", "-q")
    proc = push()
    assert proc.returncode == 0, proc.stdout + proc.stderr


PIPELINE = """\
stages:
  train:
    cmd: {py} -c "open('model.bin', 'w').write(open('data.txt').read() * 2)"
    deps: [data.txt]
    outs: [model.bin]
  evaluate:
    cmd: {py} -c "open('metrics.json', 'w').write(str(len(open('model.bin').read())))"
    deps: [model.bin]
    metrics:
    - metrics.json:
        cache: false
"""


def push_main(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False
    )


@pytest.mark.e2e
def test_cache_false_output_is_checked_in_the_commit_not_the_remote(
    dvc_repo: Path, tmp_path: Path
) -> None:
    """The textbook `evaluate` stage writes metrics.json with `cache: false`
    (git keeps it). A push through the require-dvc-pushed hook is never blocked by it once the
    cached data is pushed; a commit whose dvc.lock records it without holding it is refused, at
    push and at the deploy gate (deploy/evidence.py, which check-model uses)."""
    from repro_hooks.deploy.evidence import tree_remote_findings
    from repro_hooks.git import Git

    install_local_hooks(
        dvc_repo,
        ["require-dvc-pushed"],
        ["pre-push"],
        {"require-dvc-pushed": {"additional_dependencies": []}},
    )
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(dvc_repo, "remote", "add", "origin", str(bare))
    write(dvc_repo / "data.txt", "rows\n")
    dvc(dvc_repo, "add", "-q", "data.txt")
    write(dvc_repo / "dvc.yaml", PIPELINE.format(py=sys.executable))
    dvc(dvc_repo, "repro", "-q")
    git(dvc_repo, "add", "-A")
    commit(dvc_repo, "pipeline")
    assert "metrics.json" in git(dvc_repo, "ls-files")
    dvc(dvc_repo, "push", "-q")
    proc = push_main(dvc_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "metrics.json" not in proc.stdout
    repo_git = Git.discover(dvc_repo)
    head = git(dvc_repo, "rev-parse", "HEAD").strip()
    assert tree_remote_findings(repo_git, head, repo_git.tree(head, commit=head)) == []

    # the metric left out of the commit that records it: a finding, not a remote question
    write(dvc_repo / "data.txt", "more rows\n")
    dvc(dvc_repo, "repro", "-q")
    git(dvc_repo, "rm", "-q", "--cached", "metrics.json")
    commit(dvc_repo, "new data, metric not committed", "data.txt.dvc", "dvc.lock")
    dvc(dvc_repo, "push", "-q")
    proc = push_main(dvc_repo)
    assert proc.returncode != 0
    head = git(dvc_repo, "rev-parse", "HEAD").strip()
    assert (
        f"metrics.json: cache: false output recorded in dvc.lock is not in commit {head[:12]} "
        "(git keeps it, no DVC remote does)"
    ) in proc.stdout
    assert "not in DVC remote" not in proc.stdout
    found = tree_remote_findings(repo_git, head, repo_git.tree(head, commit=head))
    assert [(f.path, f.rule) for f in found] == [("metrics.json", "uncommitted-output")]


def test_push_hint_covers_every_commit_of_the_push(dvc_repo: Path) -> None:
    """Item 3: the hint, run as printed, makes the check pass. Two commits each record a
    version of the data: `dvc push` would send only the checked-out one."""
    base = git(dvc_repo, "rev-parse", "HEAD").strip()
    for n in range(2):
        write(dvc_repo / "data.txt", f"version {n}\n")
        dvc(dvc_repo, "add", "-q", "data.txt")
        commit(dvc_repo, f"data {n}")
    code, out = invoke("check-dvc-remote", "--range", f"{base}..HEAD")
    assert code == 1
    assert "  dvc push --all-commits\n" in out
    assert "the data of 2 commit(s) is missing" in out
    dvc(dvc_repo, "push", "-q", "--all-commits")
    assert invoke("check-dvc-remote", "--range", f"{base}..HEAD") == (0, "")
    # one commit, the checked-out one: plain `dvc push` is the command
    write(dvc_repo / "data.txt", "version 3\n")
    dvc(dvc_repo, "add", "-q", "data.txt")
    commit(dvc_repo, "data 3")
    code, out = invoke("check-dvc-remote", "--range", "HEAD~1..HEAD")
    assert code == 1
    assert "  dvc push\n" in out
    dvc(dvc_repo, "push", "-q")
    assert invoke("check-dvc-remote", "--range", "HEAD~1..HEAD") == (0, "")
