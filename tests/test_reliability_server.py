"""Fault matrix, second half: DVC files as hostile input (parsers and scan), symlinks leading
outside the repository, server-side pushes, and pre-commit splitting the file list.

See tests/reliability.py for what every case asserts; docs/RELIABILITY.md for the table.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from repro_hooks.dvc.files import DvcFileError, parse_dvc_file, parse_dvc_lock, parse_dvc_yaml
from tests.helpers import big, commit, git, install_local_hooks, write
from tests.reliability import BIG, cli, git_run, unchanged

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
)

# id: (file name, content, what the reason says)
DVC_CASES: dict[str, tuple[str, bytes, str]] = {
    "malformed-yaml": ("a.dvc", b"outs: [\n", "malformed YAML"),
    "not-a-mapping": ("a.dvc", b"- just\n- a list\n", "must be a mapping"),
    "outs-wrong-type": ("a.dvc", b"outs: 5\n", "outs must be a list"),
    "missing-path": ("a.dvc", f"outs:\n- md5: {MD5}\n".encode(), "path is required"),
    # DVC accepts a .dvc file without outs: an out without a path it refuses
    "missing-outs": ("a.dvc", b"frozen: true\nouts:\n- {}\n", "path is required"),
    "md5-wrong-type": ("a.dvc", b"outs:\n- path: x\n  md5: 12\n", "md5 must be a hash"),
    "size-negative": ("a.dvc", b"outs:\n- path: x\n  size: -1.5\n", "size must be an integer"),
    "duplicate-output": ("a.dvc", b"outs:\n- path: x\n- path: ./x\n", "listed twice"),
    "absolute-path": ("a.dvc", b"outs:\n- path: /etc/passwd\n", "is absolute"),
    "windows-absolute": ("a.dvc", b"outs:\n- path: C:\\\\x\n", "is absolute"),
    "escapes-repo": ("sub/a.dvc", b"outs:\n- path: ../../etc/passwd\n", "escapes"),
    "wdir-escapes": ("a.dvc", b"wdir: ..\nouts:\n- path: x\n", "escapes"),
    "url-output": ("a.dvc", b"outs:\n- path: s3://bucket/x\n", "not in the repository"),
    "nul-in-path": ("a.dvc", b'outs:\n- path: "a\\0b"\n', "NUL"),
    "alias-bomb-dvc": ("a.dvc", (BOMB + "\nouts: *a9\n").encode(), "aliases are expanded"),
    "alias-bomb-dvc-yaml": (
        "dvc.yaml",
        (BOMB + "\nstages:\n  s:\n    cmd: *a9\n").encode(),
        "aliases are expanded",
    ),
    "alias-bomb-dvc-lock": (
        "dvc.lock",
        (BOMB + "\nstages: *a9\n").encode(),
        "aliases are expanded",
    ),
    "yaml-stage-out-escapes": (
        "dvc.yaml",
        b"stages:\n  s:\n    cmd: x\n    outs: [../out]\n",
        "escapes",
    ),
    "lock-bad-schema": ("dvc.lock", b"schema: '9.0'\nstages: {}\n", "unsupported dvc.lock schema"),
    "lock-stage-wrong-type": ("dvc.lock", b"schema: '2.0'\nstages:\n  s: 5\n", "mapping"),
    "not-utf8": ("a.dvc", b"outs:\n- path: \xff\xfe\n", "YAML"),
    "ten-megabytes": (
        "a.dvc",
        b"outs:\n" + b"".join(b"- path: f%07d\n" % i for i in range(700_000)),
        "too large",
    ),
}
DVC_WAYS = ("parser in-process", "scan --range over a commit")


def _parse(name: str, content: bytes) -> object:
    if name.endswith("dvc.yaml"):
        return parse_dvc_yaml(content, name)
    if name.endswith("dvc.lock"):
        return parse_dvc_lock(content, name)
    return parse_dvc_file(content, name)


@pytest.mark.parametrize(
    ("name", "content", "reason"), list(DVC_CASES.values()), ids=list(DVC_CASES)
)
def test_hostile_dvc_file(repo: Path, name: str, content: bytes, reason: str) -> None:
    with pytest.raises(DvcFileError, match=re.escape(reason)):
        _parse(name, content)  # bounded work: the subprocess below runs under cli's cap too
    write(repo / name, content)
    commit(repo, "dvc file")
    with unchanged(repo):
        out = cli(repo, "scan", "--range", "HEAD~1..HEAD", "--format", "json")
    assert out.code == 1
    assert f'"path": "{name}"' in out.out
    assert '"rule": "malformed-dvc"' in out.out
    assert reason in out.out


def test_duplicate_output_across_two_dvc_files(repo: Path) -> None:
    write(repo / "a.dvc", f"outs:\n- md5: {MD5}\n  path: data/x.csv\n")
    commit(repo, "a")
    base = git(repo, "rev-parse", "HEAD").strip()
    with unchanged(repo):
        assert cli(repo, "scan", "--all-history").code == 0
    write(repo / "data" / "x.csv.dvc", f"outs:\n- md5: {MD5}\n  path: x.csv\n")
    commit(repo, "b")
    with unchanged(repo):
        out = cli(repo, "scan", "--range", f"{base}..HEAD")
    assert out.code == 1
    assert out.out.startswith("data/x.csv.dvc: output 'data/x.csv' is also recorded in a.dvc")
    # moving the record from one file to the other in one commit is no duplicate
    git(repo, "rm", "-q", "a.dvc")
    commit(repo, "drop a")
    assert cli(repo, "scan", "--range", "HEAD~1..HEAD").code == 0
    # a stage output in dvc.yaml against a .dvc file
    write(repo / "dvc.yaml", "stages:\n  make:\n    cmd: make\n    outs: [data/x.csv]\n")
    commit(repo, "stage")
    out = cli(repo, "scan", "--range", "HEAD~1..HEAD")
    assert out.code == 1
    assert "output 'data/x.csv' is also recorded in" in out.out


@pytest.mark.e2e
def test_check_dvc_remote_skips_hostile_dvc_files(repo: Path) -> None:
    assert subprocess.run(["dvc", "init", "-q"], cwd=repo, check=False).returncode == 0
    commit(repo, "dvc init")
    for i, (name, content, _) in enumerate(DVC_CASES.values()):
        write(repo / f"case{i:02d}" / name, content)
    commit(repo, "hostile DVC files")
    with unchanged(repo):
        # nothing usable is referenced (scan reports the files): no remote is even needed
        out = cli(repo, "check-dvc-remote", "--range", "HEAD~1..HEAD")
    assert out.code == 0, out


@pytest.mark.e2e
def test_symlinks_leading_outside_are_never_read(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "secret.csv")  # opening it would block: the test would time out
    os.mkfifo(outside / "x.dvc")
    (repo / "link").symlink_to(outside)
    (repo / "linked.dvc").symlink_to(outside / "x.dvc")
    write(repo / "through.dvc", "outs:\n- path: link/secret.csv\n")
    commit(repo, "symlinks")
    with unchanged(repo):
        out = cli(repo, "scan", "--range", "HEAD~1..HEAD")
        assert out.code == 1
        assert "linked.dvc: a symbolic link, not a DVC file" in out.out
        assert "secret" not in out.out
        assert cli(repo, "check-large-files", "--all").code == 0
        assert cli(repo, "check-large-files", "linked.dvc", "link").code == 0
    # --fix never follows a symlinked directory out of the repository
    assert subprocess.run(["dvc", "init", "-q"], cwd=repo, check=False).returncode == 0
    commit(repo, "dvc init")
    write(repo / "inner" / "big.csv", big(BIG))
    git(repo, "add", "inner/big.csv")
    shutil.rmtree(repo / "inner")
    write(outside / "big.csv", big(BIG))
    (repo / "inner").symlink_to(outside)
    with unchanged(repo):
        fix = cli(repo, "check-large-files", "--fix")
    assert fix.code == 2
    assert "outside the repository" in fix.text and "nothing was changed" in fix.text
    assert not (outside / "big.csv.dvc").exists()


# ---- server side ------------------------------------------------------------------------------


def _bare_with_hook(tmp_path: Path, repo: Path) -> Path:
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    assert cli(bare, "install").code == 0
    return bare


def _fast_import_commits(repo: Path, branch: str, n: int, big_at: int | None) -> float:
    """n commits on `branch` (from main), one small file each; commit `big_at` adds a large
    blob. Returns the seconds fast-import took."""
    parent = git(repo, "rev-parse", "main").strip()
    stream = [f"reset refs/heads/{branch}\nfrom {parent}\n".encode()]
    for i in range(n):
        stream.append(
            f"commit refs/heads/{branch}\ncommitter T <t@example.com> {1700000000 + i} +0000\n"
            f"data 3\nc{i % 10}\n".encode()
        )
        content = big(BIG, seed=i) if i == big_at else f"{i}\n".encode()
        stream.append(f"M 100644 inline f/{i:05d}.bin\ndata {len(content)}\n".encode())
        stream.append(content + b"\n")
    start = time.perf_counter()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)
    return time.perf_counter() - start


@pytest.mark.e2e
def test_push_of_thousands_of_commits(
    repo: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    bare = _bare_with_hook(tmp_path, repo)
    _fast_import_commits(repo, "clean", 3000, None)
    _fast_import_commits(repo, "dirty", 3000, 1500)
    start = time.perf_counter()
    ok = git_run(repo, "push", "origin", "clean")
    clean_seconds = time.perf_counter() - start
    assert ok.returncode == 0, ok.stdout
    start = time.perf_counter()
    bad = git_run(repo, "push", "origin", "dirty")
    dirty_seconds = time.perf_counter() - start
    assert bad.returncode != 0
    assert "remote: f/01500.bin: 600 KiB in git, over the 500 KiB size limit" in bad.stdout
    assert bad.stdout.count(" in git, over ") == 1
    assert git(bare, "branch", "--list", "dirty") == ""
    record_property("push_3000_clean_seconds", round(clean_seconds, 2))
    record_property("push_3000_rejected_seconds", round(dirty_seconds, 2))
    print(f"3000-commit push: accepted {clean_seconds:.2f}s, rejected {dirty_seconds:.2f}s")


@pytest.mark.e2e
def test_force_pushes(repo: Path, tmp_path: Path) -> None:
    bare = _bare_with_hook(tmp_path, repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    # a large file that reached the server before the hook existed
    hook = bare / "hooks" / "pre-receive"
    hook.rename(hook.with_suffix(".off"))
    write(repo / "old.bin", big(BIG))
    commit(repo, "legacy large file")
    assert git_run(repo, "push", "origin", "main").returncode == 0
    hook.with_suffix(".off").rename(hook)
    bad = git(repo, "rev-parse", "HEAD").strip()
    # a new ref at a commit the server already reaches: nothing new to scan, accepted
    assert git_run(repo, "push", "origin", f"{bad}:refs/heads/keep").returncode == 0
    assert git_run(repo, "push", "origin", f"{bad}:refs/tags/light").returncode == 0
    # rewritten history: drop the bad commit, add a clean one, force push: accepted
    git(repo, "reset", "-q", "--hard", base)
    write(repo / "clean.txt", "clean\n")
    commit(repo, "clean instead")
    assert git_run(repo, "push", "--force", "origin", "main").returncode == 0
    # a force push whose rewrite brings a new large blob: rejected
    write(repo / "new.bin", big(BIG, seed=3))
    commit(repo, "new large")
    git(repo, "reset", "-q", "--soft", "HEAD~2")
    commit(repo, "squashed")
    proc = git_run(repo, "push", "--force", "origin", "main")
    assert proc.returncode != 0
    assert "remote: new.bin: 600 KiB in git" in proc.stdout
    assert "old.bin" not in proc.stdout
    # deleting refs: accepted
    assert git_run(repo, "push", "origin", "--delete", "keep", "light").returncode == 0
    # an annotated tag on a new commit with a large file: rejected
    git(repo, "tag", "-a", "-m", "v2", "v2")
    assert git_run(repo, "push", "origin", "v2").returncode != 0


# ---- pre-commit splitting the file list -------------------------------------------------------


SPLIT_NAMES = [f"dir-{i // 100:03d}/a-rather-long-file-name-{i:05d}.txt" for i in range(4100)]
SPLIT_LARGE = (0, 2050, 4099)


def _split_run(repo: Path, serial: bool, count_file: Path) -> tuple[int, set[str], int]:
    """Install the hook (require_serial as given) through a wrapper that counts invocations,
    stage 4,100 files (three of them large) and commit."""
    wrapper = f"sh -c 'echo run >> {count_file}; exec repro-hooks check-large-files \"$@\"' --"
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"entry": wrapper, "require_serial": serial}},
    )
    for i, name in enumerate(SPLIT_NAMES):
        write(repo / name, big(BIG, seed=i) if i in SPLIT_LARGE else b"x\n")
    git(repo, "add", "-A")
    with unchanged(repo):
        proc = git_run(repo, "commit", "-m", "many files")
    reported = set(re.findall(r"^(\S+): \d+(?:\.\d)? KiB in git", proc.stdout, re.M))
    invocations = len(count_file.read_text().splitlines())
    return proc.returncode, reported, invocations


@pytest.mark.e2e
def test_pre_commit_split_gives_the_same_verdict(repo: Path, tmp_path: Path) -> None:
    serial_repo, single = tmp_path / "serial", tmp_path / "single"
    shutil.copytree(repo, serial_repo, symlinks=True)
    shutil.copytree(repo, single, symlinks=True)
    parallel = _split_run(repo, False, tmp_path / "count-parallel")
    serial = _split_run(serial_repo, True, tmp_path / "count-serial")
    # the oracle: one process over every staged file
    for i, name in enumerate(SPLIT_NAMES):
        write(single / name, big(BIG, seed=i) if i in SPLIT_LARGE else b"x\n")
    git(single, "add", "-A")
    one = cli(single, "check-large-files")
    expected = {SPLIT_NAMES[i] for i in SPLIT_LARGE}
    assert one.code == 1
    assert set(re.findall(r"^(\S+): \d+ KiB in git", one.out, re.M)) == expected
    assert parallel[2] > 1, "pre-commit did not split the file list"
    # require_serial only stops concurrency: pre-commit still splits a long list by length
    assert serial[2] >= 1
    assert parallel[0] == serial[0] == one.code
    assert parallel[1] == serial[1] == expected
    print(f"invocations: parallel {parallel[2]}, require_serial {serial[2]}")
