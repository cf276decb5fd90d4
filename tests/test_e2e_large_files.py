"""End to end: our manifest through the real pre-commit framework, real `git commit`/`git push`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import VENV_BIN, big, commit, git, install_local_hooks, write

pytestmark = pytest.mark.e2e
KIB = 1024


@pytest.fixture
def hooked(repo: Path) -> Path:
    # the manifest's stages are pre-commit and manual (scan-pushed-commits covers pushes); a
    # user may still run the hook at pre-push, where it checks the pushed commits' blobs
    stages = {"stages": ["pre-commit", "pre-push", "manual"]}
    install_local_hooks(
        repo, ["block-large-files"], ["pre-commit", "pre-push"], {"block-large-files": stages}
    )
    return repo


def blocked(proc: subprocess.CompletedProcess[str], path: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert f"{path}: " in output, output
    assert "Traceback" not in output


def test_commit_blocked_then_allowed(hooked: Path) -> None:
    write(hooked / "data/train.csv", big(600 * KIB))
    blocked(commit(hooked, "add data", verify=True), "data/train.csv")
    git(hooked, "rm", "-q", "--cached", "data/train.csv")
    write(hooked / "README.txt", "small")
    proc = commit(hooked, "docs", "README.txt", verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_non_ascii_name_blocked(hooked: Path) -> None:
    write(hooked / "données ü.parquet", big(600 * KIB))
    blocked(commit(hooked, "x", verify=True), "données ü.parquet")


def test_tracked_file_that_grew_blocked(hooked: Path) -> None:
    write(hooked / "notes.txt", "short")
    assert commit(hooked, "small", verify=True).returncode == 0
    write(hooked / "notes.txt", big(700 * KIB))
    blocked(commit(hooked, "grow", verify=True), "notes.txt")


def test_raw_blob_under_lfs_pattern_blocked(hooked: Path) -> None:
    write(hooked / ".gitattributes", "*.ckpt filter=lfs diff=lfs merge=lfs -text\n")
    write(hooked / "model.ckpt", big(900 * KIB))
    proc = commit(hooked, "x", verify=True)
    blocked(proc, "model.ckpt")
    assert "should be an LFS pointer" in proc.stdout + proc.stderr


def test_staged_large_then_shrunk_blocked(hooked: Path) -> None:
    write(hooked / "w.bin", big(800 * KIB))
    git(hooked, "add", "w.bin")
    write(
        hooked / "w.bin", "tiny"
    )  # unstaged change: pre-commit stashes it, git stores the big blob
    proc = subprocess.run(
        ["git", "commit", "-m", "x"], cwd=hooked, capture_output=True, text=True, check=False
    )
    blocked(proc, "w.bin")
    assert (hooked / "w.bin").read_text() == "tiny"  # the user's working tree is untouched


def test_dangling_symlink_is_no_error(hooked: Path) -> None:
    os.symlink("nowhere/at/all", hooked / "dangling")
    proc = commit(hooked, "link", verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_newline_in_name_blocked(hooked: Path) -> None:
    write(hooked / "line\nbreak.bin", big(600 * KIB))
    blocked(commit(hooked, "x", verify=True), "line\\nbreak.bin")


def test_all_files_in_ci(hooked: Path) -> None:
    write(hooked / "old.bin", big(600 * KIB))
    commit(hooked, "sneaked in with --no-verify")
    proc = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", "--all-files", "block-large-files"],
        cwd=hooked,
        capture_output=True,
        text=True,
        check=False,
    )
    blocked(proc, "old.bin")


@pytest.fixture
def pushed(hooked: Path, tmp_path: Path) -> tuple[Path, Path]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(hooked, "remote", "add", "origin", str(remote))
    git(hooked, "push", "-q", "origin", "main")
    return hooked, remote


def test_push_of_add_then_delete_is_refused(pushed: tuple[Path, Path]) -> None:
    repo, _ = pushed
    write(repo / "dump.csv", big(700 * KIB))
    commit(repo, "add")  # --no-verify: the laptop hook was skipped
    git(repo, "rm", "-q", "dump.csv")
    commit(repo, "remove")
    proc = subprocess.run(
        ["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False
    )
    blocked(proc, "dump.csv")
    assert "commits being pushed" in proc.stdout + proc.stderr


def test_clean_push_is_accepted(pushed: tuple[Path, Path]) -> None:
    repo, remote = pushed
    write(repo / "code.py", "print('hi')\n")
    commit(repo, "code")
    proc = subprocess.run(
        ["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(remote, "rev-parse", "main") == git(repo, "rev-parse", "main")


def test_push_of_new_history_checks_every_commit(hooked: Path, tmp_path: Path) -> None:
    remote = tmp_path / "fresh.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(hooked, "remote", "add", "origin", str(remote))
    write(hooked / "dump.csv", big(700 * KIB))
    commit(hooked, "add")
    git(hooked, "rm", "-q", "dump.csv")
    commit(hooked, "remove")
    proc = subprocess.run(
        ["git", "push", "origin", "main"], cwd=hooked, capture_output=True, text=True, check=False
    )
    blocked(proc, "dump.csv")


def test_fix_moves_data_into_dvc_and_commit_succeeds(repo: Path) -> None:
    subprocess.run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=repo, check=True)
    commit(repo, "dvc init")
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["--fix"]}},
    )
    data = big(900 * KIB)
    write(repo / "data/raw set.csv", data)
    proc = commit(repo, "data", verify=True)
    blocked(proc, "data/raw set.csv")
    assert "moved into DVC" in proc.stdout + proc.stderr
    assert (repo / "data/raw set.csv").read_bytes() == data  # never deleted or altered
    git(repo, "commit", "-m", "data via dvc")
    tracked = git(repo, "ls-files").splitlines()
    assert "data/raw set.csv.dvc" in tracked and "data/.gitignore" in tracked
    assert "data/raw set.csv" not in tracked
    status = subprocess.run([str(VENV_BIN / "dvc"), "status", "-q"], cwd=repo, check=False)
    assert status.returncode == 0  # DVC accepts the .dvc file it wrote


def test_fix_without_dvc_changes_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from repro_hooks.cli import cli
    from repro_hooks.dvc import fix as dvc_fix

    write(repo / "big.csv", big(600 * KIB))
    git(repo, "add", "-A")
    before = git(repo, "ls-files", "-s")
    monkeypatch.setattr(dvc_fix, "dvc_command", lambda: None)  # DVC absent from this environment
    result = CliRunner().invoke(cli, ["check-large-files", "--fix"])
    assert result.exit_code == 2
    assert "--fix needs DVC, which is not installed" in result.stderr
    assert "nothing was changed" in result.stderr
    assert git(repo, "ls-files", "-s") == before


def test_fix_without_dvc_repository_changes_nothing(repo: Path) -> None:
    from click.testing import CliRunner

    from repro_hooks.cli import cli

    write(repo / "big.csv", big(600 * KIB))
    git(repo, "add", "-A")
    before = git(repo, "ls-files", "-s")
    result = CliRunner().invoke(cli, ["check-large-files", "--fix"])
    assert result.exit_code == 2
    assert "not a DVC repository (run `dvc init` first)" in result.stderr
    assert git(repo, "ls-files", "-s") == before


def test_installed_from_this_checkout_as_a_pre_commit_repo(
    repo: Path, plugin_snapshot: Path
) -> None:
    """The published path: `repo:` pointing at a copy of this checkout, `language: python`,
    pre-commit builds its own environment with `pip install .`."""
    plugin = plugin_snapshot
    rev = git(plugin, "rev-parse", "HEAD").strip()
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {plugin}\n  rev: {rev}\n  hooks:\n  - id: block-large-files\n    args: [--max-size, 100KB]\n"
    )
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "config")
    subprocess.run(
        [str(VENV_BIN / "pre-commit"), "install"], cwd=repo, check=True, capture_output=True
    )
    write(repo / "x.bin", big(150 * KIB))
    proc = commit(repo, "x", verify=True)
    blocked(proc, "x.bin")
    assert "150 KiB in git, over the 97.7 KiB size limit" in proc.stdout + proc.stderr
