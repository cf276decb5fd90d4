"""The server-side gate: hooks/pre-receive in a bare repository, real `git push` over file://."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import big, cli_here, commit, git, run_cli, write

BIG = 600 * 1024


@pytest.fixture
def server(tmp_path: Path, repo: Path) -> Path:
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    assert git(repo, "push", "-q", "origin", "main") == ""
    proc = run_cli(bare, "install")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("hooks/pre-receive")
    return bare


def push(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "push", "origin", *args], cwd=repo, capture_output=True, text=True, check=False
    )


@pytest.mark.e2e
def test_rejects_large_file_visibly(repo: Path, server: Path) -> None:
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    git(repo, "rm", "-q", "big.bin")
    commit(repo, "delete")
    proc = push(repo, "main")
    assert proc.returncode != 0
    assert "remote: repro-hooks: push rejected: 1 problem(s)" in proc.stderr
    assert "remote: big.bin: 600 KiB in git, over the 500 KiB size limit" in proc.stderr
    assert "pre-receive hook declined" in proc.stderr
    assert git(server, "rev-parse", "main") != git(repo, "rev-parse", "main")


@pytest.mark.e2e
def test_policy_comes_from_the_server(repo: Path, server: Path, tmp_path: Path) -> None:
    # the pusher raises max-size in pyproject.toml in the same push: still rejected
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax-size = "10MB"\n')
    write(repo / "big.bin", big(BIG))
    commit(repo, "bypass attempt")
    proc = push(repo, "main")
    assert proc.returncode != 0
    assert "remote: big.bin:" in proc.stderr
    # the server's own policy file decides
    policy = write(tmp_path / "policy.toml", 'max-size = "1MB"\ndata-patterns = []\n')
    git(server, "config", "repro-hooks.policy", str(policy))
    assert push(repo, "main").returncode == 0
    # a broken server policy rejects (fail closed) with one line
    write(policy, "max-size = [\n")
    write(repo / "more.bin", big(BIG, seed=5))
    commit(repo, "more")
    proc = push(repo, "main")
    assert proc.returncode != 0
    assert "remote: repro-hooks: " in proc.stderr
    assert "malformed TOML" in proc.stderr


@pytest.mark.e2e
def test_only_new_commits_tags_and_deletions(repo: Path, server: Path) -> None:
    # history already on the server holds a large file (pushed before the hook, simulated by
    # pushing with the hook disabled)
    hook = server / "hooks" / "pre-receive"
    hook.rename(hook.with_suffix(".off"))
    write(repo / "old.bin", big(BIG))
    commit(repo, "old")
    assert push(repo, "main").returncode == 0
    hook.with_suffix(".off").rename(hook)
    # a new branch on top of it: accepted, only its new commits count
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "notes.txt", "notes\n")
    commit(repo, "notes")
    assert push(repo, "feature").returncode == 0
    # a tag on existing history brings no commit: accepted
    git(repo, "tag", "-a", "-m", "v1", "v1", "main")
    assert push(repo, "v1").returncode == 0
    # a tag that brings a commit with a large file: rejected
    write(repo / "big.bin", big(BIG, seed=9))
    commit(repo, "big")
    git(repo, "tag", "v2")
    proc = push(repo, "v2")
    assert proc.returncode != 0
    assert "remote: big.bin:" in proc.stderr
    # deleting a ref: accepted
    proc = push(repo, "--delete", "feature")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.e2e
def test_server_baseline_and_json(repo: Path, server: Path, tmp_path: Path) -> None:
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    baseline = tmp_path / "baseline.json"
    assert (
        cli_here(repo, "scan", "--all-history", "--write-baseline", str(baseline)).returncode == 0
    )
    git(server, "config", "repro-hooks.baseline", str(baseline))
    assert push(repo, "main").returncode == 0


def test_pre_receive_cli_in_bare_repo(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    new = git(repo, "rev-parse", "HEAD").strip()
    old = git(repo, "rev-parse", "HEAD~1").strip()
    git(repo, "push", "-q", str(bare), "main:refs/heads/incoming")
    # simulate the pre-receive input for a ref update while `incoming` already exists
    git(bare, "update-ref", "-d", "refs/heads/incoming")
    proc = subprocess.run(
        [
            str(Path(run_cli.__globals__["VENV_BIN"]) / "repro-hooks"),
            "pre-receive",
            "--format",
            "json",
        ],
        cwd=bare,
        input=f"{old} {new} refs/heads/main\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert '"rule": "large-file"' in proc.stdout
    proc = cli_here(bare, "scan", "--all-history")
    assert proc.returncode == 0  # the bare clone's refs hold no large file
