"""`check-large-files --fix` never loses work, and every fix hint runs as printed.

Real git, real DVC (`dvc status -q` as the oracle), real pre-commit commits for the end-to-end
cases. Every failure case compares the index file and every working-tree file byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.dvc_helpers import dvc
from tests.helpers import VENV_BIN, big, cli_here, git, install_local_hooks, run_cli, write

pytestmark = pytest.mark.e2e
KIB = 1024
SKIP = (".git/", ".dvc/cache/", ".dvc/tmp/")


def state(repo: Path) -> dict[str, object]:
    """The index file's bytes and every working-tree file (bytes, mode, link target)."""
    files: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(repo):
        for name in [*filenames, *(d for d in dirnames if os.path.islink(Path(dirpath, d)))]:
            full = Path(dirpath, name)
            rel = full.relative_to(repo).as_posix()
            if rel.startswith(SKIP):
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                files[rel] = ("link", os.readlink(full))
            else:
                files[rel] = (st.st_mode, hashlib.sha256(full.read_bytes()).hexdigest())
    return {"index": (repo / ".git" / "index").read_bytes(), "files": files}


def git_commit(repo: Path, message: str = "x") -> subprocess.CompletedProcess[str]:
    """`git commit` of what is staged, hooks running; all output in stdout."""
    return subprocess.run(
        ["git", "commit", "-m", message],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def hint_commands(output: str) -> list[str]:
    """The command lines of a printed fix hint (indented, starting with a command name)."""
    return [
        line.strip()
        for line in output.splitlines()
        if line.startswith("  ") and line.split(maxsplit=1)[0] in {"git", "dvc", "cd", "jupyter"}
    ]


def run_as_printed(lines: list[str], cwd: Path) -> None:
    """Run each printed line as a user would (`shlex.split`, `cd` moves the shell)."""
    for line in lines:
        argv = shlex.split(line)
        if argv[0] == "cd":
            cwd = (cwd / argv[1]).resolve()
            continue
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{line!r} failed:\n{proc.stdout}{proc.stderr}"


def dvc_clean(repo: Path) -> None:
    proc = dvc(repo, "status", "-q", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- 13: names are taken literally ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "neighbours"),
    [
        pytest.param("run[12].bin", ["run1.bin", "run2.bin"], id="brackets"),
        pytest.param("*.bin", ["a.bin", "b.bin"], id="star"),
        pytest.param(":(top)x.bin", ["x.bin"], id="pathspec-magic"),
    ],
)
def test_fix_takes_names_literally_through_pre_commit(
    dvc_repo: Path, name: str, neighbours: list[str]
) -> None:
    for other in neighbours:
        write(dvc_repo / other, f"small {other}\n")
    git(dvc_repo, "add", "--", *neighbours)
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "neighbours")
    install_local_hooks(
        dvc_repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["--fix"]}},
    )
    data = big(600 * KIB)
    write(dvc_repo / name, data)
    git(dvc_repo, "--literal-pathspecs", "add", "--", name)
    proc = git_commit(dvc_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "moved into DVC" in proc.stdout
    proc = git_commit(dvc_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tracked = git(dvc_repo, "ls-files", "-z").split("\0")
    assert set(neighbours) <= set(tracked)  # still in git: never matched as a pattern
    assert name + ".dvc" in tracked and name not in tracked
    assert (dvc_repo / name).read_bytes() == data
    for other in neighbours:
        assert (dvc_repo / other).read_text() == f"small {other}\n"
    dvc_clean(dvc_repo)


# ---- 14: all or nothing -----------------------------------------------------------------------


def _overlapping_stage_output(repo: Path) -> tuple[dict[str, bytes], Path]:
    """Two large files staged: `sub/good.bin` (movable) and `out/big.bin`, which `.dvcignore`
    hides from DVC, so `dvc add` refuses it. `sub/.gitignore` already has content. (A file
    inside a dvc.yaml stage output is no failure any more: --fix takes it out of the index.)"""
    write(repo / ".dvcignore", "out/\n")
    write(repo / "sub/.gitignore", "# mine\n*.tmp\n")
    write(repo / ".gitignore", "/scratch\n")
    git(repo, "add", ".dvcignore", "sub/.gitignore", ".gitignore")
    git(repo, "commit", "-q", "--no-verify", "-m", "stage")
    data = {"sub/good.bin": big(600 * KIB, 1), "out/big.bin": big(600 * KIB, 2)}
    for name, content in data.items():
        write(repo / name, content)
    git(repo, "add", "-f", "--", *data)
    return data, repo


def test_failed_fix_puts_everything_back(dvc_repo: Path) -> None:
    data, repo = _overlapping_stage_output(dvc_repo)
    before = state(repo)
    proc = run_cli(repo, "check-large-files", "--fix")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "dvc add failed: " in proc.stderr
    assert "is ignored by .dvcignore" in proc.stderr
    assert "everything was put back as it was" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert state(repo) == before  # index, .gitignore files, no new .dvc file, data intact
    for name, content in data.items():
        assert (repo / name).read_bytes() == content


def test_failed_fix_through_pre_commit_puts_everything_back(dvc_repo: Path) -> None:
    install_local_hooks(
        dvc_repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["--fix"]}},
    )
    data, repo = _overlapping_stage_output(dvc_repo)
    before = state(repo)
    proc = git_commit(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "everything was put back as it was" in proc.stdout
    assert state(repo)["files"] == before["files"]
    assert git(repo, "ls-files", "-s", "sub/good.bin", "out/big.bin").count("\n") == 2
    assert not (repo / "sub/good.bin.dvc").exists()
    for name, content in data.items():
        assert (repo / name).read_bytes() == content


def test_fix_inside_a_directory_dvc_tracks(dvc_repo: Path) -> None:
    """`dvc add d/new.bin` records the file in `d.dvc`: that is the file to stage."""
    write(dvc_repo / "d/x.txt", "x\n")
    dvc(dvc_repo, "add", "-q", "d")
    git(dvc_repo, "add", "d.dvc", ".gitignore")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "d")
    data = big(600 * KIB)
    write(dvc_repo / "d/new.bin", data)
    git(dvc_repo, "add", "-f", "d/new.bin")
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "moved into DVC (d.dvc staged)" in proc.stdout
    assert git(dvc_repo, "diff", "--cached", "--name-status") == "M\td.dvc\n"
    assert (dvc_repo / "d/new.bin").read_bytes() == data
    dvc_clean(dvc_repo)


# ---- 15: a partially staged file --------------------------------------------------------------


def test_partially_staged_file_is_refused(dvc_repo: Path) -> None:
    write(dvc_repo / "w.bin", big(600 * KIB))
    git(dvc_repo, "add", "w.bin")
    write(dvc_repo / "w.bin", big(700 * KIB, 3))  # the rest, unstaged
    before = state(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        "w.bin: staged content differs from the file on disk; stage or stash the rest first "
        "(git add -- w.bin), then re-run with --fix; nothing was changed\n"
    ) in proc.stderr
    assert "use -f" not in proc.stdout + proc.stderr
    assert state(dvc_repo) == before


# ---- 16: link cache types ---------------------------------------------------------------------


@pytest.mark.parametrize("cache_type", ["symlink", "hardlink"])
def test_link_cache_type_keeps_a_private_copy(dvc_repo: Path, cache_type: str) -> None:
    dvc(dvc_repo, "config", "cache.type", cache_type)
    git(dvc_repo, "add", ".dvc/config")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", f"cache.type {cache_type}")
    data = big(600 * KIB)
    write(dvc_repo / "w.bin", data)
    git(dvc_repo, "add", "w.bin")
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    path = dvc_repo / "w.bin"
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1  # a file of its own, no link
    assert st.st_mode & stat.S_IWUSR
    assert path.read_bytes() == data
    assert git_commit(dvc_repo).returncode == 0
    dvc_clean(dvc_repo)
    md5 = yaml.safe_load((dvc_repo / "w.bin.dvc").read_text())["outs"][0]["md5"]
    with open(path, "ab") as handle:  # an edit in place, as a training script would
        handle.write(b"more")
    obj = dvc_repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    assert hashlib.md5(obj.read_bytes()).hexdigest() == md5  # the cache object is intact
    assert dvc(dvc_repo, "status", "-q", check=False).returncode == 1  # DVC sees the change


# ---- 19: notebooks ----------------------------------------------------------------------------


def test_notebook_is_not_moved_and_the_hint_says_strip_outputs(dvc_repo: Path) -> None:
    notebook = '{"cells": [], "outputs": "' + big(400 * KIB).hex() + '"}'
    write(dvc_repo / "nb.ipynb", notebook)
    write(dvc_repo / "data.bin", big(600 * KIB))
    git(dvc_repo, "add", "nb.ipynb", "data.bin")
    staged_nb = git(dvc_repo, "ls-files", "-s", "nb.ipynb")
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "data.bin: " in proc.stdout and "moved into DVC (data.bin.dvc staged)" in proc.stdout
    assert "jupyter nbconvert --clear-output --inplace nb.ipynb" in proc.stdout
    assert git(dvc_repo, "ls-files", "-s", "nb.ipynb") == staged_nb
    assert not (dvc_repo / "nb.ipynb.dvc").exists()
    assert (dvc_repo / "nb.ipynb").read_text() == notebook


def test_notebook_hint_runs_as_printed_through_pre_commit(dvc_repo: Path) -> None:
    cells = [
        {
            "cell_type": "code",
            "execution_count": 1,
            "id": "c1",
            "metadata": {},
            "source": "print('hello')",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": big(400 * KIB).hex()}],
        }
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    write(dvc_repo / "notes/my nb.ipynb", json.dumps(notebook))
    install_local_hooks(dvc_repo, ["block-large-files"], ["pre-commit"])
    git(dvc_repo, "add", "notes/my nb.ipynb")
    proc = git_commit(dvc_repo)
    assert proc.returncode == 1, proc.stdout
    lines = hint_commands(proc.stdout)
    assert lines[0] == "jupyter nbconvert --clear-output --inplace 'notes/my nb.ipynb'", lines
    run_as_printed(lines, dvc_repo)
    proc = git_commit(dvc_repo)
    assert proc.returncode == 0, proc.stdout
    kept = json.loads(git(dvc_repo, "show", "HEAD:notes/my nb.ipynb"))
    assert (
        "".join(kept["cells"][0]["source"]) == "print('hello')"
        and kept["cells"][0]["outputs"] == []
    )


# ---- 17: every hint runs as printed -----------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["data/run[12].bin", "-rf.bin"], id="globs-and-dash"),
        pytest.param(["sub/dir/my data.csv", "top.bin"], id="subdirectory-gitignore"),
    ],
)
@pytest.mark.parametrize("dvc_ready", [True, False], ids=["dvc-repo", "no-dvc-init"])
def test_pre_commit_hint_runs_as_printed(repo: Path, names: list[str], dvc_ready: bool) -> None:
    if dvc_ready:
        dvc(repo, "init", "-q")
        git(repo, "commit", "-q", "--no-verify", "-m", "dvc init")
    write(repo / "data/run1.bin", "one\n")
    git(repo, "add", "data/run1.bin")
    git(repo, "commit", "-q", "--no-verify", "-m", "small")
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    data = {name: big(600 * KIB, i) for i, name in enumerate(names)}
    for name, content in data.items():
        write(repo / name, content)
    git(repo, "--literal-pathspecs", "add", "--", *data)
    proc = git_commit(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "repro-hooks check-large-files --fix" not in proc.stdout  # not on a user's PATH
    lines = hint_commands(proc.stdout)
    assert ("dvc init" in lines) is not dvc_ready
    run_as_printed(lines, repo)
    proc = git_commit(repo, "data via dvc")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tracked = git(repo, "ls-files", "-z").split("\0")
    for name, content in data.items():
        assert name not in tracked and name + ".dvc" in tracked
        assert (repo / name).read_bytes() == content
    assert "data/run1.bin" in tracked
    dvc_clean(repo)


def test_cli_hint_from_a_subdirectory_runs_as_printed(dvc_repo: Path) -> None:
    data = big(600 * KIB)
    write(dvc_repo / "sub/deep/x.bin", data)
    git(dvc_repo, "add", "sub/deep/x.bin")
    cwd = dvc_repo / "sub/deep"
    proc = subprocess.run(
        [str(VENV_BIN / "repro-hooks"), "check-large-files"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = hint_commands(proc.stdout)
    assert lines[0] == "cd ../.."
    run_as_printed(lines, cwd)
    assert git_commit(dvc_repo).returncode == 0
    assert (dvc_repo / "sub/deep/x.bin").read_bytes() == data
    dvc_clean(dvc_repo)


def test_cli_fix_command_in_the_hint_runs_as_printed(dvc_repo: Path) -> None:
    write(dvc_repo / "sub/x.bin", big(300 * KIB))
    git(dvc_repo, "add", "sub/x.bin")
    cwd = dvc_repo / "sub"
    proc = subprocess.run(
        [str(VENV_BIN / "repro-hooks"), "check-large-files", "--max-size", "100KiB", "x.bin"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    prefix = "or let repro-hooks do it: "
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(prefix))
    assert line == prefix + "repro-hooks check-large-files --fix --max-size 100KiB -- x.bin"
    argv = shlex.split(line.removeprefix(prefix))
    fixed = subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fixed.returncode == 1 and "moved into DVC" in fixed.stdout, fixed.stdout
    assert git_commit(dvc_repo).returncode == 0
    dvc_clean(dvc_repo)


def test_check_dvc_hint_runs_as_printed(dvc_repo: Path) -> None:
    write(dvc_repo / "data/in git.csv", "a,b\n1,2\n")
    git(dvc_repo, "add", "data/in git.csv")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "csv in git")
    write(dvc_repo / "other/new[1].parquet", big(10 * KIB))
    write(dvc_repo / "kept/my table.csv", "x\n1\n")
    dvc(dvc_repo, "add", "-q", "kept/my table.csv")
    git(dvc_repo, "add", "kept")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "kept")
    write(dvc_repo / "kept/my table.csv", "x\n1\n2\n")  # changed data: stale-dvc
    proc = cli_here(dvc_repo, "check-dvc")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "<path>" not in proc.stdout and "<file>" not in proc.stdout
    assert {"data-in-git", "stale-dvc"} <= {  # untracked data never blocks
        f["rule"]
        for f in json.loads(cli_here(dvc_repo, "check-dvc", "--format", "json").stdout)["findings"]
    }
    lines = hint_commands(proc.stdout)
    assert lines, proc.stdout
    run_as_printed(lines, dvc_repo)
    assert git_commit(dvc_repo).returncode == 0
    proc = cli_here(dvc_repo, "check-dvc")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dvc_clean(dvc_repo)


def test_manual_stage_alias_runs_the_fixer_as_documented(dvc_repo: Path) -> None:
    """docs/commands.md: a second entry with `alias: move-to-dvc`, `args: [--fix]`,
    `stages: [manual]`, run with `pre-commit run move-to-dvc --hook-stage manual`."""
    install_local_hooks(dvc_repo, ["block-large-files"], ["pre-commit"])
    config = yaml.safe_load((dvc_repo / ".pre-commit-config.yaml").read_text())
    hooks = config["repos"][0]["hooks"]
    hooks.append({**hooks[0], "alias": "move-to-dvc", "args": ["--fix"], "stages": ["manual"]})
    (dvc_repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(dvc_repo, "add", ".pre-commit-config.yaml")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "alias")
    data = big(600 * KIB)
    write(dvc_repo / "data/x.bin", data)
    git(dvc_repo, "add", "data/x.bin")
    assert git_commit(dvc_repo).returncode == 1  # the ordinary hook only blocks
    assert git(dvc_repo, "ls-files", "data/x.bin") == "data/x.bin\n"
    proc = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", "move-to-dvc", "--hook-stage", "manual"],
        cwd=dvc_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "moved into DVC" in proc.stdout, proc.stdout
    proc = git_commit(dvc_repo)
    assert proc.returncode == 0, proc.stdout
    assert (dvc_repo / "data/x.bin").read_bytes() == data
    dvc_clean(dvc_repo)


def test_unstaged_changes_survive_a_fix_through_pre_commit(dvc_repo: Path) -> None:
    """pre-commit stashes the unstaged part, the fixer moves the staged content into DVC, and
    pre-commit puts the unstaged part back: both versions survive."""
    install_local_hooks(
        dvc_repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["--fix"]}},
    )
    staged = big(600 * KIB)
    write(dvc_repo / "w.bin", staged)
    git(dvc_repo, "add", "w.bin")
    write(dvc_repo / "w.bin", "tiny, unstaged\n")
    proc = git_commit(dvc_repo)
    assert proc.returncode == 1 and "moved into DVC" in proc.stdout, proc.stdout
    assert (dvc_repo / "w.bin").read_text() == "tiny, unstaged\n"  # the user's edit is back
    md5 = yaml.safe_load((dvc_repo / "w.bin.dvc").read_text())["outs"][0]["md5"]
    assert md5 == hashlib.md5(staged).hexdigest()  # the staged version is in DVC
    obj = dvc_repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    assert obj.read_bytes() == staged


def test_symlinked_gitignore_is_refused(dvc_repo: Path, tmp_path: Path) -> None:
    """`dvc add` would append to the link's target, which may lie outside the repository."""
    outside = tmp_path / "elsewhere-gitignore"
    outside.write_text("# not the repository's\n")
    (dvc_repo / "sub").mkdir()
    os.symlink(outside, dvc_repo / "sub" / ".gitignore")
    write(dvc_repo / "sub/w.bin", big(600 * KIB))
    git(dvc_repo, "add", "sub/w.bin")
    before = state(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sub/.gitignore: a symbolic link; dvc add would write through it" in proc.stderr
    assert state(dvc_repo) == before
    assert outside.read_text() == "# not the repository's\n"


@pytest.mark.parametrize("cache_type", ["copy", "symlink"])
def test_failure_after_dvc_add_puts_everything_back(dvc_repo: Path, cache_type: str) -> None:
    """`dvc add` succeeds (cache written, `.gitignore` written, `.dvc` file written, the file
    linked then unprotected), then staging fails (git ignores `sub/.gitignore`): all of it is
    undone."""
    dvc(dvc_repo, "config", "cache.type", cache_type)
    write(dvc_repo / ".gitignore", "sub/.gitignore\n")
    git(dvc_repo, "add", ".gitignore", ".dvc/config")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "ignore sub/.gitignore")
    data = big(600 * KIB)
    write(dvc_repo / "sub/w.bin", data)
    git(dvc_repo, "add", "sub/w.bin")
    before = state(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "git add: " in proc.stderr and "everything was put back as it was" in proc.stderr
    assert state(dvc_repo) == before
    assert not (dvc_repo / "sub/w.bin").is_symlink()
    assert (dvc_repo / "sub/w.bin").read_bytes() == data


def test_restore_rewrites_a_data_file_dvc_left_linked(dvc_repo: Path) -> None:
    """The last line of defence: a data file DVC left as a link (or changed) is rewritten from
    its staged blob, as a regular file, without writing through the link."""
    from repro_hooks.dvc.fix import _plan, _restore
    from repro_hooks.git import Git

    data = big(600 * KIB)
    write(dvc_repo / "w.bin", data)
    git(dvc_repo, "add", "w.bin")
    repo_git = Git.discover(dvc_repo)
    plan = _plan(repo_git, ["w.bin"])
    index = plan.index_file.read_bytes()
    target = write(dvc_repo.parent / "cache-object", data)
    (dvc_repo / "w.bin").unlink()
    os.symlink(target, dvc_repo / "w.bin")
    assert _restore(repo_git, plan, index, {}) == []
    assert not (dvc_repo / "w.bin").is_symlink()
    assert (dvc_repo / "w.bin").read_bytes() == data
    assert target.read_bytes() == data  # the link's target was not written through


@pytest.mark.parametrize("how", [["-a"], ["--", "w.bin"]], ids=["commit-a", "commit-paths"])
def test_fix_refuses_a_commit_that_stages_by_itself(dvc_repo: Path, how: list[str]) -> None:
    """`git commit -a` / `git commit <paths>` commit a temporary index that git drops when the
    hook fails: what --fix staged there would be lost, half done. It refuses instead."""
    install_local_hooks(
        dvc_repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["--fix"]}},
    )
    write(dvc_repo / "w.bin", "small\n")
    git(dvc_repo, "add", "w.bin")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "small")
    write(dvc_repo / "w.bin", big(600 * KIB))
    before = state(dvc_repo)
    proc = subprocess.run(
        ["git", "commit", "-m", "x", *how],
        cwd=dvc_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout
    assert "--fix: this commit stages files itself (git commit -a, or with paths)" in proc.stdout
    assert "nothing was changed" in proc.stdout
    assert state(dvc_repo) == before


def test_check_dvc_pipeline_hints_run_as_printed(dvc_repo: Path) -> None:
    """stale-lock and not-ignored: the printed lines, pasted into a POSIX shell, fix them."""
    write(dvc_repo / "data/a.txt", "one\n")
    write(
        dvc_repo / "dvc.yaml",
        "stages:\n  copy:\n    cmd: cp data/a.txt 'out [1].txt'\n    deps: [data/a.txt]\n"
        "    outs: ['out [1].txt']\n",
    )
    dvc(dvc_repo, "repro", "-q")
    write(dvc_repo / ".gitignore", "")  # DVC's `/out \[1\].txt` entry is lost
    git(dvc_repo, "add", "-A")
    git(dvc_repo, "reset", "-q", "--", "out [1].txt")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "pipeline")
    write(dvc_repo / "data/a.txt", "two\n")  # the pipeline is stale
    proc = cli_here(dvc_repo, "check-dvc")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rules = {
        f["rule"]
        for f in json.loads(cli_here(dvc_repo, "check-dvc", "--format", "json").stdout)["findings"]
    }
    assert {"stale-lock", "not-ignored"} <= rules, rules
    lines = [
        ln.strip()
        for ln in proc.stdout.splitlines()
        if ln.startswith("    ") and ln.split()[0] in {"dvc", "git", "printf", "cd"}
    ]
    assert any(ln.startswith("printf") for ln in lines), proc.stdout
    for line in lines:  # pasted into a shell, as printed
        done = subprocess.run(
            ["sh", "-c", line], cwd=dvc_repo, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{line!r}: {done.stdout}{done.stderr}"
    assert git_commit(dvc_repo).returncode == 0
    proc = cli_here(dvc_repo, "check-dvc")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dvc_clean(dvc_repo)
    assert "out [1].txt" not in git(dvc_repo, "ls-files")


@pytest.mark.parametrize("way", ["hint", "fix"])
def test_dvc_init_subdir_project(repo: Path, way: str) -> None:
    """A DVC project in a subdirectory (`dvc init --subdir`): `dvc add` must run inside it."""
    (repo / "proj").mkdir()
    dvc(repo / "proj", "init", "-q", "--subdir")
    git(repo, "commit", "-q", "--no-verify", "-m", "dvc init --subdir")
    data = big(600 * KIB)
    write(repo / "proj/data/x.bin", data)
    git(repo, "add", "proj/data/x.bin")
    if way == "hint":
        proc = run_cli(repo, "check-large-files")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = hint_commands(proc.stdout)
        assert "dvc --cd proj add -- data/x.bin" in lines
        run_as_printed(lines, repo)
    else:
        proc = run_cli(repo, "check-large-files", "--fix")
        assert proc.returncode == 1 and "moved into DVC" in proc.stdout, proc.stdout
    assert git_commit(repo).returncode == 0
    assert "proj/data/x.bin.dvc" in git(repo, "ls-files")
    assert (repo / "proj/data/x.bin").read_bytes() == data
    dvc_clean(repo / "proj")


# ---- a staged dvc.yaml stage output is taken out of the index, never `dvc add`ed ----

STAGE = "stages:\n  train:\n    cmd: {py} train.py\n    deps: [train.py]\n    outs: [{out}]\n"


def _stage_output_staged(repo: Path, out: str, name: str) -> bytes:
    """The textbook mistake: a dvc.yaml stage declares `out`, the script is run by hand before
    any `dvc repro` (so no .gitignore line yet) and `git add -A` stages the large file `name`
    (the output, or a file inside it)."""
    import sys

    script = "import os\n"
    script += f"os.makedirs(os.path.dirname({name!r}) or '.', exist_ok=True)\n"
    script += f"open({name!r}, 'wb').write(b'model')\n"
    write(repo / "train.py", script)
    write(repo / "dvc.yaml", STAGE.format(py=sys.executable, out=out))
    git(repo, "add", "train.py", "dvc.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "stage")
    data = big(600 * KIB, 7)
    write(repo / name, data)
    git(repo, "add", "-A")
    return data


@pytest.mark.parametrize(
    ("out", "name"),
    [
        pytest.param("model.bin", "model.bin", id="file"),
        pytest.param("models", "models/m.bin", id="inside-a-directory"),
    ],
)
def test_stage_output_hint_runs_as_printed_through_pre_commit(
    dvc_repo: Path, out: str, name: str
) -> None:
    install_local_hooks(dvc_repo, ["block-large-files"], ["pre-commit"])
    data = _stage_output_staged(dvc_repo, out, name)
    proc = git_commit(dvc_repo)
    assert proc.returncode == 1, proc.stdout
    assert "dvc add --" not in proc.stdout  # DVC refuses it: the output overlaps the stage
    lines = hint_commands(proc.stdout)
    assert lines == [f"git rm --cached -q -- {name}"], proc.stdout
    run_as_printed(lines, dvc_repo)
    write(dvc_repo / "notes.txt", "notes\n")
    git(dvc_repo, "add", "notes.txt")
    proc = git_commit(dvc_repo)
    assert proc.returncode == 0, proc.stdout
    assert name not in git(dvc_repo, "ls-files")
    assert (dvc_repo / name).read_bytes() == data
    dvc(dvc_repo, "repro", "-q")  # DVC takes the output over from here
    assert not git(dvc_repo, "status", "--porcelain", "--untracked-files=all", "--", name)


def test_fix_takes_a_stage_output_out_of_the_index(dvc_repo: Path) -> None:
    install_local_hooks(
        dvc_repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["--fix"]}},
    )
    data = _stage_output_staged(dvc_repo, "model.bin", "model.bin")
    write(dvc_repo / "sub" / "other.bin", big(600 * KIB, 8))  # plain data: dvc add
    git(dvc_repo, "add", "-A")
    proc = git_commit(dvc_repo)
    assert proc.returncode == 1, proc.stdout
    assert "model.bin: " in proc.stdout
    assert "taken out of the index (an output of dvc.yaml:train: " in proc.stdout
    assert "sub/other.bin: " in proc.stdout and "moved into DVC" in proc.stdout
    proc = git_commit(dvc_repo)
    assert proc.returncode == 0, proc.stdout
    tracked = git(dvc_repo, "ls-files").split()
    assert "model.bin" not in tracked and "model.bin.dvc" not in tracked
    assert "sub/other.bin.dvc" in tracked
    assert (dvc_repo / "model.bin").read_bytes() == data


# ---- --fix on names a .gitignore line cannot say as they are ---------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name", ["data\nbig.bin", "big.bin\r"], ids=["newline", "final-carriage-return"]
)
def test_fix_refuses_names_no_gitignore_line_can_say(dvc_repo: Path, name: str) -> None:
    os.makedirs(dvc_repo / "data", exist_ok=True)
    write(dvc_repo / "data" / "keep.txt", "kept in git\n")
    write(dvc_repo / name, big(600 * KIB))
    git(dvc_repo, "add", "-A")
    before = state(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().split("\n")
    assert len(err) == 1, proc.stderr
    assert "no .gitignore line can name it" in err[0] and "nothing was changed" in err[0]
    assert state(dvc_repo) == before
    assert not (dvc_repo / ".gitignore").exists()
    assert "or run: repro-hooks check-large-files --fix" not in proc.stdout


@pytest.mark.e2e
def test_fix_escapes_names_gitignore_can_escape(dvc_repo: Path) -> None:
    names = ["x  ", "a*b.bin", "q?.bin", "r[1].bin", "back\\slash.bin", "#hash.bin", "!bang.bin"]
    neighbours = ["x", "aab.bin", "q1.bin", "r1.bin", "backslash.bin"]
    for other in neighbours:
        write(dvc_repo / other, f"small {other}\n")
    for i, name in enumerate(names):
        write(dvc_repo / name, big(600 * KIB, seed=i))
    git(dvc_repo, "--literal-pathspecs", "add", "--", *names, *neighbours)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("moved into DVC") == len(names), proc.stdout
    ignored = git(
        dvc_repo,
        "check-ignore",
        "--no-index",
        "-z",
        "--stdin",
        input=b"".join(n.encode() + b"\0" for n in [*names, *neighbours]),
        check=False,
    ).split("\0")
    assert sorted(n for n in ignored if n) == sorted(names)
    # the next `git add -A` keeps every moved file out of git, every neighbour in
    git(dvc_repo, "add", "-A")
    tracked = set(git(dvc_repo, "ls-files", "-z").split("\0"))
    assert not set(names) & tracked
    assert set(neighbours) <= tracked
    assert {n + ".dvc" for n in names} <= tracked


@pytest.mark.e2e
def test_fix_hint_says_the_gitignore_line_for_trailing_spaces(dvc_repo: Path) -> None:
    write(dvc_repo / "x  ", big(600 * KIB))
    write(dvc_repo / "x", "small\n")
    git(dvc_repo, "add", "-A")
    proc = run_cli(dvc_repo, "check-large-files")
    assert proc.returncode == 1
    commands = [line.strip() for line in proc.stdout.split("\n") if line.startswith("  ")]
    assert "printf '%s\\n' '/x\\ \\ ' >> .gitignore" in commands, proc.stdout
    for line in commands:  # run the hint as printed
        subprocess.run(line, shell=True, cwd=dvc_repo, check=True, capture_output=True)
    git(dvc_repo, "add", "-A")
    tracked = set(git(dvc_repo, "ls-files", "-z").split("\0"))
    assert "x  " not in tracked and "x" in tracked and "x  .dvc" in tracked


# ---- the --fix refusals: one line on stderr in every format -----------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_fix_refusal_is_one_line_on_stderr(dvc_repo: Path, fmt: str) -> None:
    write(dvc_repo / "w.bin", big(600 * KIB))
    git(dvc_repo, "add", "w.bin")
    write(dvc_repo / "w.bin", big(700 * KIB, 3))  # the rest, unstaged
    before = state(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix", "--format", fmt)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        "repro-hooks: --fix: w.bin: staged content differs from the file on disk; stage or "
        "stash the rest first (git add -- w.bin), then re-run with --fix; nothing was changed\n"
    )
    assert "nothing was changed" not in proc.stdout
    assert "w.bin" in proc.stdout  # the findings stand, in the format asked for
    if fmt in ("json", "sarif"):
        json.loads(proc.stdout)
    assert state(dvc_repo) == before
