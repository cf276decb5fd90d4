"""Fault matrix, git half: hostile names, odd repository shapes, bad configuration.

Each case asserts the documented exit code, no traceback, and an unchanged index and working
tree (tests/reliability.py). docs/RELIABILITY.md cites these tests by name; a meta-test keeps
the two in step.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from repro_hooks.report import display_path
from tests.helpers import big, commit, git, init_repo, install_local_hooks, write
from tests.reliability import BIG, cli, git_run, unchanged

# ---- names ------------------------------------------------------------------------------------

LONG_NAME = b"n" * 251 + b".bin"  # NAME_MAX (255 bytes)
LONG_PATH = b"/".join([b"d" * 250] * 15) + b"/f.bin"  # ~3,800 bytes, near PATH_MAX with tmp
HOSTILE_NAMES: dict[str, bytes] = {
    "space": b"with space.bin",
    "leading-dash": b"-rf.csv",
    "double-dash-help": b"--help.bin",
    "named-like-a-flag": b"--fix",
    "named-like-the-separator": b"--",
    "dash-h-cluster": b"-hx.bin",
    "non-ascii": "données/entraînement ü.bin".encode(),
    "newline": b"new\nline.bin",
    "tab": b"tab\there.bin",
    "invalid-utf8": b"bad\xff\xfe.bin",
    "name-max": LONG_NAME,
    "near-path-max": LONG_PATH,
}
NAME_WAYS = ("staged", "explicit path (as pre-commit passes it)", "scan --range", "json")


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_name(repo: Path, name: bytes) -> None:
    path = os.fsdecode(name)
    write(repo / path, big(BIG))
    write(repo / "small.txt", "small\n")
    git(repo, "add", "-A")
    shown = display_path(name)
    with unchanged(repo):
        staged = cli(repo, "check-large-files")
        assert staged.code == 1
        assert staged.out.startswith(f"{shown}: 600 KiB in git")
        explicit = cli(repo, "check-large-files", path, "small.txt")
        assert explicit.code == 1
        assert explicit.out.startswith(f"{shown}: 600 KiB in git")
    commit(repo, "hostile name")
    with unchanged(repo):
        scanned = cli(repo, "scan", "--range", "HEAD~1..HEAD")
        assert scanned.code == 1
        assert f"{shown}: 600 KiB in git" in scanned.out
        doc = json.loads(cli(repo, "scan", "--range", "HEAD~1..HEAD", "--format", "json").out)
        assert [f["path"] for f in doc["findings"]] == [shown]


@pytest.mark.e2e
def test_hostile_names_through_pre_commit(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    names = [n for k, n in HOSTILE_NAMES.items() if k != "invalid-utf8"]
    for name in names:
        write(repo / os.fsdecode(name), big(BIG))
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo, "commit", "-m", "hostile")
    assert proc.returncode == 1
    for name in names:
        assert f"{display_path(name)}: 600 KiB in git" in proc.stdout
    for name in names:
        write(repo / os.fsdecode(name), b"small\n")
    git(repo, "add", "-A")
    assert git_run(repo, "commit", "-m", "small").returncode == 0


@pytest.mark.e2e
def test_invalid_utf8_name_pre_commit_fails_closed_plain_shim_reports(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / os.fsdecode(b"bad\xff.bin"), b"small\n")
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo, "commit", "-m", "bad name")
    # pre-commit itself cannot decode the name (its own UnicodeDecodeError, not ours): the
    # commit is blocked whatever its size. The plain shim has no such limit.
    assert proc.returncode != 0
    assert "UnicodeDecodeError" in proc.stderr
    (repo / ".git" / "hooks" / "pre-commit").unlink()
    assert cli(repo, "install", "--hook", "pre-commit").code == 0
    assert git_run(repo, "commit", "-m", "small, bad name").returncode == 0
    write(repo / os.fsdecode(b"bad\xfe.bin"), big(BIG))
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo, "commit", "-m", "large, bad name")
    assert proc.returncode == 1
    assert "bad\\xfe.bin: 600 KiB in git" in proc.stdout


def test_case_only_rename(repo: Path) -> None:
    write(repo / "Data.csv", big(BIG))
    commit(repo, "data")
    git(repo, "mv", "Data.csv", "data.csv")
    with unchanged(repo):
        # a rename counts as adding the new path (the blob is still over the limit)
        staged = cli(repo, "check-large-files")
        assert staged.code == 1
        assert staged.out.startswith("data.csv: 600 KiB in git")
    commit(repo, "rename")
    scanned = cli(repo, "scan", "--range", "HEAD~1..HEAD", "--format", "json")
    assert {(f["path"], f["rule"]) for f in json.loads(scanned.out)["findings"]} == {
        ("data.csv", "large-file")
    }


# ---- repository shapes ------------------------------------------------------------------------


def test_repository_without_commits(empty_repo: Path) -> None:
    write(empty_repo / "big.bin", big(BIG))
    git(empty_repo, "add", "-A")
    with unchanged(empty_repo):
        assert cli(empty_repo, "check-large-files").code == 1
        assert cli(empty_repo, "check-large-files", "--all").code == 1
        assert cli(empty_repo, "scan", "--all-history").code == 0  # no ref: nothing to scan
        bad = cli(empty_repo, "scan", "--range", "HEAD")
        assert bad.code == 2
        assert bad.err.startswith("repro-hooks: ")


@pytest.mark.e2e
def test_initial_commit_on_orphan_branch_through_pre_commit(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    git(repo, "checkout", "-q", "--orphan", "fresh")  # no HEAD commit on this branch
    write(repo / "big.bin", big(BIG))
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo, "commit", "-m", "first")
    assert proc.returncode == 1
    assert "big.bin: 600 KiB in git" in proc.stdout


@pytest.mark.e2e
def test_detached_head(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    git(repo, "checkout", "-q", "--detach")
    write(repo / "big.bin", big(BIG))
    git(repo, "add", "-A")
    with unchanged(repo):
        assert git_run(repo, "commit", "-m", "detached").returncode == 1
    commit(repo, "bypass")
    assert cli(repo, "scan", "--range", "main..HEAD").code == 1


def test_scan_over_a_merge(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "side")
    write(repo / "big.bin", big(BIG))
    commit(repo, "side")
    side = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    write(repo / "other.txt", "x\n")
    commit(repo, "main")
    git(repo, "merge", "-q", "--no-ff", "--no-verify", "-m", "merge", "side")
    with unchanged(repo):
        out = cli(repo, "scan", "--range", f"{base}..HEAD", "--format", "json")
    findings = json.loads(out.out)["findings"]
    # reported once, at the commit that introduced it (not again at the merge)
    assert [(f["path"], f["commit"]) for f in findings] == [("big.bin", side)]


@pytest.mark.e2e
def test_merge_resolving_a_conflict_with_a_large_blob(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / "f.txt", "base\n")
    commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "side")
    write(repo / "f.txt", "side\n")
    commit(repo, "side")
    git(repo, "checkout", "-q", "main")
    write(repo / "f.txt", "main\n")
    commit(repo, "main")
    assert git_run(repo, "merge", "side").returncode != 0  # conflict
    write(repo / "f.txt", big(BIG))
    git(repo, "add", "f.txt")
    with unchanged(repo):
        proc = git_run(repo, "commit", "--no-edit")
    assert proc.returncode == 1
    assert "f.txt: 600 KiB in git" in proc.stdout
    assert git_run(repo, "commit", "--no-edit", "--no-verify").returncode == 0
    merge = git(repo, "rev-parse", "HEAD").strip()
    # the merge itself introduces the blob (it differs from both parents)
    out = cli(repo, "scan", "--range", "HEAD^1..HEAD", "--format", "json")
    assert [(f["path"], f["commit"]) for f in json.loads(out.out)["findings"]] == [("f.txt", merge)]


@pytest.mark.e2e
def test_hook_in_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "-b", "wt")
    write(wt / "big.bin", big(BIG))
    git(wt, "add", "-A")
    with unchanged(wt):
        proc = git_run(wt, "commit", "-m", "in worktree")
    assert proc.returncode == 1
    assert "big.bin: 600 KiB in git" in proc.stdout
    assert cli(wt, "check-large-files", "big.bin").code == 1


@pytest.mark.e2e
def test_two_commits_at_once_in_two_worktrees(repo: Path, tmp_path: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    trees = [tmp_path / "wt-big", tmp_path / "wt-small"]
    for i, wt in enumerate(trees):
        git(repo, "worktree", "add", "-q", str(wt), "-b", f"b{i}")
    write(trees[0] / "big.bin", big(BIG))
    write(trees[1] / "small.txt", "small\n")
    for wt in trees:
        git(wt, "add", "-A")
    procs = [
        subprocess.Popen(
            ["git", "commit", "-m", "at once"],
            cwd=wt,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for wt in trees
    ]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [1, 0], outputs
    assert "big.bin: 600 KiB in git" in outputs[0]
    assert "Traceback" not in "".join(outputs)
    assert git(trees[1], "log", "-1", "--format=%s").strip() == "at once"


def test_submodule(repo: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    init_repo(sub)
    write(sub / "huge.bin", big(BIG))
    commit(sub, "sub data")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor/sub")
    commit(repo, "submodule")
    with unchanged(repo):
        # the gitlink has no blob: the submodule's own files are its repository's business
        assert cli(repo, "check-large-files", "--all").code == 0
        assert cli(repo, "scan", "--range", "HEAD~1..HEAD").code == 0
        # run inside the submodule, it checks the submodule's own index
        inner = cli(repo / "vendor" / "sub", "check-large-files", "--all")
        assert inner.code == 1
        assert inner.out.startswith("huge.bin: 600 KiB in git")


@pytest.mark.e2e
def test_sparse_checkout(repo: Path) -> None:
    write(repo / "keep" / "a.txt", "a\n")
    write(repo / "away" / "big.csv", big(BIG))
    commit(repo, "two dirs")
    assert subprocess.run(["dvc", "init", "-q"], cwd=repo, check=False).returncode == 0
    commit(repo, "dvc init")
    git(repo, "sparse-checkout", "set", "keep", ".dvc")
    assert not (repo / "away").exists()
    with unchanged(repo):
        every = cli(repo, "check-large-files", "--all")
        assert every.code == 1  # sized from the index: the blob, not the (absent) file
        assert every.out.startswith("away/big.csv: 600 KiB in git")
        fix = cli(repo, "check-large-files", "--all", "--fix")
        assert fix.code == 2
        assert "not a regular file in the working tree; nothing was changed" in fix.out + fix.err


def _shallow_clone(tmp_path: Path) -> tuple[Path, list[str]]:
    origin = tmp_path / "origin"
    init_repo(origin)
    shas = []
    for i in range(3):
        write(origin / f"f{i}.txt", f"{i}\n")
        commit(origin, f"c{i}")
        shas.append(git(origin, "rev-parse", "HEAD").strip())
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
    return clone, shas


def test_shallow_clone_with_missing_base(tmp_path: Path) -> None:
    clone, shas = _shallow_clone(tmp_path)
    with unchanged(clone):
        for args in (["--range", f"{shas[0]}..HEAD"], ["--range", "HEAD~2..HEAD"]):
            out = cli(clone, "scan", *args)
            assert out.code == 2
            assert "shallow clone" in out.err and "git fetch --unshallow" in out.err
        env = {"PRE_COMMIT_FROM_REF": shas[0], "PRE_COMMIT_TO_REF": "HEAD"}
        for command in ("scan", "check-large-files"):
            out = cli(clone, command, env=env)
            assert out.code == 2
            assert "shallow clone" in out.err
        # the whole (shallow) history: the boundary commit counts as adding every file
        assert cli(clone, "scan", "--all-history").code == 0
        assert cli(clone, "check-large-files", "--all").code == 0


@pytest.mark.e2e
def test_hooks_path_and_subdirectory(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")  # relative: to the work tree's top
    assert cli(repo, "install", "--hook", "pre-commit").code == 0
    assert (repo / ".githooks" / "pre-commit").is_file()
    git(repo, "add", ".githooks")
    commit(repo, "hooks")
    write(repo / "sub" / "deeper" / "big.bin", big(BIG))
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo / "sub" / "deeper", "commit", "-m", "from a subdirectory")
    assert proc.returncode == 1
    assert "sub/deeper/big.bin: 600 KiB in git" in proc.stdout


@pytest.mark.e2e
def test_pre_commit_from_a_subdirectory(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / "sub" / "big.bin", big(BIG))
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo / "sub", "commit", "-m", "from sub")
    assert proc.returncode == 1
    assert "sub/big.bin: 600 KiB in git" in proc.stdout


def test_cli_from_a_subdirectory_with_relative_paths(repo: Path) -> None:
    write(repo / "top.bin", big(BIG, seed=1))
    write(repo / "sub" / "big.bin", big(BIG, seed=2))
    write(repo / "sub" / "ok.txt", "ok\n")
    git(repo, "add", "-A")
    sub = repo / "sub"
    with unchanged(repo):
        out = cli(sub, "check-large-files", "big.bin", "../top.bin", "./ok.txt")
        assert out.code == 1
        assert [line.split(":")[0] for line in out.out.splitlines()[:2]] == [
            "sub/big.bin",
            "top.bin",
        ]
        outside = cli(sub, "check-large-files", "../../elsewhere.bin")
        assert outside.code == 2
        assert "outside the repository" in outside.err
        assert cli(sub, "check-large-files", "--all").code == 1


def test_autocrlf_and_attributes_size_the_stored_blob(repo: Path) -> None:
    git(repo, "config", "core.autocrlf", "true")
    git(repo, "config", "filter.double.clean", "sed p")  # the stored blob doubles every line
    write(repo / ".gitattributes", "*.txt text eol=crlf\n*.dbl filter=double\n")
    line = b"x" * 98
    write(repo / "crlf.txt", (line + b"\r\n") * 5000)  # 500,000 bytes on disk, 495,000 stored
    write(repo / "small-on-disk.dbl", (line + b"\n") * 3000)  # 297,000 on disk, 594,000 stored
    git(repo, "add", "-A")
    assert int(git(repo, "cat-file", "-s", ":crlf.txt")) == 495000
    with unchanged(repo):
        out = cli(repo, "check-large-files", "--max-size", "495000")
        assert out.code == 1
        assert out.out.splitlines()[0].startswith("small-on-disk.dbl: 580.1 KiB in git")
        assert "crlf.txt" not in out.out


@pytest.mark.e2e
def test_hundred_thousand_tracked_files(repo: Path, record_property: pytest.RecordProperty) -> None:
    small = git(repo, "hash-object", "-w", "--stdin", input=b"tiny\n").strip()
    large = git(repo, "hash-object", "-w", "--stdin", input=big(BIG)).strip()
    lines = [f"100644 {small}\td{i // 1000:03d}/f{i:06d}.txt" for i in range(100_000)]
    lines.append(f"100644 {large}\td050/zz-big.bin")
    git(repo, "update-index", "--index-info", input="\n".join(lines).encode() + b"\n")
    assert len(git(repo, "ls-files", "-z").split("\0")) == 100_002
    # a test of scale, not of coverage (every line it runs is covered elsewhere): untraced, the
    # tracer tripled its time (5 s -> 18 s)
    untraced = {"REPRO_HOOKS_TEST_COVERAGE": ""}
    start = time.perf_counter()
    out = cli(repo, "check-large-files", "--all", env=untraced)
    seconds = time.perf_counter() - start
    assert out.code == 1
    assert [line.split(":")[0] for line in out.out.splitlines() if ": " in line][:1] == [
        "d050/zz-big.bin"
    ]
    assert out.out.count(" in git, over ") == 1
    commit_sha = git(
        repo, "commit-tree", git(repo, "write-tree").strip(), "-p", "HEAD", "-m", "100k"
    ).strip()
    start = time.perf_counter()
    scanned = cli(repo, "scan", "--range", f"HEAD..{commit_sha}", env=untraced)
    scan_seconds = time.perf_counter() - start
    assert scanned.code == 1
    assert scanned.out.count(" in git, over ") == 1
    record_property("check_large_files_all_seconds", round(seconds, 2))
    record_property("scan_seconds", round(scan_seconds, 2))
    print(f"100k files: check-large-files --all {seconds:.2f}s, scan {scan_seconds:.2f}s")


# ---- configuration ----------------------------------------------------------------------------

CONFIG_CASES: dict[str, tuple[bytes, str]] = {
    # id: (policy file body, the key (or "toml") the message must name)
    "malformed-toml": (b"max-size = [\n", "toml"),
    "not-utf8": (b"max-size = '\xff'\n", "toml"),
    "unknown-key": (b'max-sise = "1MB"\n', "max-sise"),
    "bad-size-unit": (b'max-size = "1XB"\n', "max-size"),
    "negative-size": (b"max-size = -5\n", "max-size"),
    "size-wrong-type": (b"max-size = true\n", "max-size"),
    "globs-wrong-type": (b'exclude = "*.csv"\n', "exclude"),
    "empty-glob": (b'data-patterns = [""]\n', "data-patterns"),
    "size-table-bad": (b'size-limits = { "*.ipynb" = "big" }\n', "size-limits"),
    "mlflow-not-a-table": (b'mlflow = "x"\n', "mlflow"),
}
CONFIG_COMMANDS = (
    "check-large-files (pyproject.toml)",
    "check-large-files --config",
    "scan (pyproject.toml)",
    "scan --config",
    "pre-receive --config",
    "pre-receive (git config repro-hooks.policy)",
)


@pytest.mark.parametrize(("body", "key"), list(CONFIG_CASES.values()), ids=list(CONFIG_CASES))
def test_bad_config_every_command(repo: Path, tmp_path: Path, body: bytes, key: str) -> None:
    write(repo / "big.bin", big(BIG))
    commit(repo, "big")
    git(repo, "add", "-A")
    policy = write(tmp_path / "policy.toml", body)
    bare = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    git(bare, "config", "repro-hooks.policy", str(policy))
    write(repo / "pyproject.toml", b"[tool.repro-hooks]\n" + body)
    head = git(repo, "rev-parse", "HEAD").strip()
    stdin = f"{'0' * 40} {head} refs/heads/new\n".encode()
    runs = [
        (repo, ["check-large-files", "--all"], "pyproject.toml"),
        (repo, ["check-large-files", "--all", "--config", str(policy)], str(policy)),
        (repo, ["scan", "--all-history"], "pyproject.toml"),
        (repo, ["scan", "--all-history", "--config", str(policy)], str(policy)),
        (bare, ["pre-receive", "--config", str(policy)], str(policy)),
        (bare, ["pre-receive"], str(policy)),
    ]
    assert len(runs) == len(CONFIG_COMMANDS)
    with unchanged(repo):
        for cwd, args, file in runs:
            out = cli(cwd, *args, stdin=stdin)
            assert out.code == 2, (args, out)
            assert out.err.startswith(f"repro-hooks: {file}: "), (args, out.err)
            assert key in out.err, (args, out.err)


CONFLICTS: dict[str, tuple[str, ...]] = {
    "max-size-and-maxkb": ("check-large-files", "--max-size", "1MB", "--maxkb", "5"),
    "bad-max-size-flag": ("check-large-files", "--max-size", "lots"),
    "missing-config-file": ("check-large-files", "--config", "nope.toml"),
    "range-and-all-history": ("scan", "--range", "HEAD", "--all-history"),
    "all-history-and-pre-push": ("scan", "--all-history", "--pre-push"),
    "range-starting-with-dash": ("scan", "--range", "--all"),
    "unknown-revision": ("scan", "--range", "no-such-branch..HEAD"),
    "remote-without-pre-push": ("scan", "origin"),
    "scan-nothing-selected": ("scan",),
    "malformed-pre-push-stdin": ("scan", "--pre-push", "origin"),
    "remote-range-and-all-history": ("check-dvc-remote", "--range", "HEAD", "--all-history"),
    "remote-without-pre-push-flag": ("check-dvc-remote", "origin"),
    "install-unknown-hook": ("install", "--hook", "nope"),
    "install-missing-dir": ("install", "missing-dir"),
}


@pytest.mark.parametrize("args", list(CONFLICTS.values()), ids=list(CONFLICTS))
def test_conflicting_and_bad_options(repo: Path, args: tuple[str, ...]) -> None:
    with unchanged(repo):
        out = cli(repo, *args, stdin=b"one two three\n")
    assert out.code == 2
    assert out.err.startswith("repro-hooks: ")


BAD_PRE_RECEIVE_STDIN = (
    b"garbage\n",
    b"\xff\xfe\n",
    f"{'0' * 40} {'f' * 40} refs/heads/x\n".encode(),
)


def test_bad_pre_receive_input(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    for stdin in BAD_PRE_RECEIVE_STDIN:
        out = cli(bare, "pre-receive", stdin=stdin)
        assert out.code == 2
        assert out.err.startswith("repro-hooks: ")
