"""Fault matrix, DVC freshness: `check-dvc` (and `require-dvc-files` through pre-commit) against
hostile DVC files, symlinks and FIFOs leading outside the repository, odd repository shapes,
hostile data file names, a broken hash cache and bad configuration.

See tests/reliability.py for what every case asserts; docs/RELIABILITY.md for the table.
DVC files are written the way `dvc add` writes them (DVC 3 `.dvc` file, object in
`.dvc/cache/files/md5/`), without running DVC: the DVC oracle tests live in
tests/test_check_dvc_oracle.py.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers import commit, git, install_local_hooks, write
from tests.reliability import cli, git_run, unchanged
from tests.test_reliability_git import CONFIG_CASES
from tests.test_reliability_server import DVC_CASES

CACHE = ".git/repro-hooks/dvc-hashes.bin"


def dvc_add(repo: Path, rel: str, content: bytes) -> str:
    """Data file + its `.dvc` file + its object in DVC's cache, as `dvc add` leaves them."""
    data = write(repo / rel, content)
    md5 = hashlib.md5(content).hexdigest()
    name = os.path.basename(rel)
    write(
        data.parent / f"{name}.dvc",
        f"outs:\n- md5: {md5}\n  size: {len(content)}\n  hash: md5\n  path: {json.dumps(name)}\n",
    )
    obj = write(repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:], content)
    assert obj.exists()
    return md5


def prepare(repo: Path) -> None:
    (repo / ".dvc").mkdir(exist_ok=True)
    write(repo / ".gitignore", "*.csv\n/data/\n/.dvc/cache/\n")


def same_size_rewrite(path: Path, content: bytes) -> None:
    """Rewrite in place with the same size, then set mtime back (`touch -d`): only ctime moves."""
    st = path.stat()
    assert len(content) == st.st_size
    with path.open("r+b") as fh:
        fh.write(content)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def check(repo: Path, *args: str, cwd: Path | None = None, timeout: float = 600) -> dict[str, str]:
    """check-dvc --format json: {path: its messages, one per line}."""
    out = cli(cwd or repo, "check-dvc", "--format", "json", *args, timeout=timeout)
    assert out.code in (0, 1), out
    findings = json.loads(out.out)["findings"]
    assert out.code == (1 if findings else 0)
    got: dict[str, str] = {}
    for f in findings:
        got[f["path"]] = "\n".join(filter(None, [got.get(f["path"]), f["message"]]))
    return got


# ---- hostile DVC files ------------------------------------------------------------------------

STAGE = b"stages:\n  s:\n    cmd: x\n    outs: [o.csv]\n"


@pytest.mark.parametrize(
    ("name", "content", "reason"), list(DVC_CASES.values()), ids=list(DVC_CASES)
)
def test_hostile_dvc_file_check_dvc(repo: Path, name: str, content: bytes, reason: str) -> None:
    prepare(repo)
    write(repo / name, content)
    if name.endswith("dvc.lock"):  # a dvc.lock is read beside its dvc.yaml
        write(repo / "dvc.yaml", STAGE)
    with unchanged(repo):  # a hang (a FIFO read) fails on cli's cap, not on a clock budget
        out = cli(repo, "check-dvc", "--format", "json")
    assert out.code == 1, out
    findings = json.loads(out.out)["findings"]
    hit = [f for f in findings if f["path"] == name and f["rule"] == "malformed-dvc"]
    assert hit and reason in hit[0]["message"], findings


def test_output_recorded_twice(repo: Path) -> None:
    prepare(repo)
    dvc_add(repo, "data.csv", b"1,2\n")
    write(repo / "copy.dvc", (repo / "data.csv.dvc").read_bytes())
    with unchanged(repo):
        got = check(repo)
    assert got == {"data.csv.dvc": "output 'data.csv' is also recorded in copy.dvc"}
    (repo / "copy.dvc").unlink()
    write(repo / "dvc.yaml", "stages:\n  make:\n    cmd: make\n    outs: [data.csv]\n")
    got = check(repo)
    assert "output 'data.csv' is also recorded in data.csv.dvc" in got["dvc.yaml"], got
    (repo / "dvc.yaml").unlink()
    write(repo / "twice.dvc", "outs:\n- path: data.csv\n- path: ./data.csv\n")
    assert "listed twice" in check(repo)["twice.dvc"]


@pytest.mark.e2e
def test_nothing_outside_the_repository_is_read(repo: Path, tmp_path: Path) -> None:
    """Every path that leads outside ends at a FIFO: opening any of them would block, and the
    command would time out. A FIFO inside the repository is refused the same way."""
    prepare(repo)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("secret.csv", "x.dvc", "params.yaml", "inner.csv", "ignore", "config"):
        os.mkfifo(outside / name)
    md5 = "ab" * 16
    (repo / "link").symlink_to(outside)  # a symlinked directory leading outside
    write(repo / "through.dvc", f"outs:\n- md5: {md5}\n  hash: md5\n  path: link/secret.csv\n")
    (repo / "linked.dvc").symlink_to(outside / "x.dvc")  # the .dvc file itself
    (repo / "params.yaml").symlink_to(outside / "params.yaml")
    write(repo / "dvc.yaml", "stages:\n  s:\n    cmd: x\n    params: [lr]\n    outs: [o.csv]\n")
    write(repo / "data" / "in.csv", "1\n")
    (repo / "data" / "inner.csv").symlink_to(outside / "inner.csv")  # inside a directory output
    write(repo / "data.dvc", f"outs:\n- md5: {md5}.dir\n  hash: md5\n  path: data\n")
    (repo / ".dvcignore").symlink_to(outside / "ignore")
    (repo / ".dvc" / "config").symlink_to(outside / "config")
    os.mkfifo(repo / "fifo.csv")  # inside the repository
    write(repo / "fifo.csv.dvc", f"outs:\n- md5: {md5}\n  hash: md5\n  path: fifo.csv\n")
    with unchanged(repo):  # a FIFO opened would hang: cli's cap fails the test then
        got = check(repo)
    leads_out = "a symlink leading outside the repository"
    assert got["link/secret.csv"].startswith(f"{leads_out}: not read (through.dvc)")
    assert got["linked.dvc"] == leads_out
    assert got["params.yaml"].endswith(f"params file unreadable: {leads_out}: not read")
    assert got["data"].startswith(f"data/inner.csv: {leads_out}: not read")
    assert got["fifo.csv"].startswith("not a regular file (a FIFO, socket or device): not read")
    # require-dvc-files through pre-commit: blocked, and in bounded time
    install_local_hooks(repo, ["require-dvc-files"], ["pre-commit"])
    write(repo / "notes.txt", "x")
    git(repo, "add", "notes.txt")
    proc = git_run(repo, "commit", "-m", "x")
    assert proc.returncode == 1
    assert "fifo.csv: not a regular file" in proc.stdout


# ---- repository shapes ------------------------------------------------------------------------


def _fresh_then_stale(repo: Path, cwd: Path | None = None) -> None:
    prepare(repo)
    dvc_add(repo, "data.csv", b"1,2\n")
    with unchanged(repo):
        assert check(repo, cwd=cwd) == {}
    write(repo / "data.csv", b"3,4\n")
    with unchanged(repo):
        got = check(repo, cwd=cwd)
    assert got["data.csv"].startswith("differs from data.csv.dvc")


def test_repository_without_commits(empty_repo: Path) -> None:
    _fresh_then_stale(empty_repo)
    git(empty_repo, "add", "-A")
    assert "data.csv" in check(empty_repo)


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    _fresh_then_stale(repo)


def test_dvc_repository_in_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "-b", "side")
    _fresh_then_stale(wt)
    assert check(repo) == {}  # the main work tree has no DVC file
    assert not (repo / "data.csv").exists()


@pytest.mark.e2e
def test_require_dvc_files_from_a_subdirectory(repo: Path) -> None:
    prepare(repo)
    dvc_add(repo, "sub/deeper/data.csv", b"1,2\n")
    write(repo / ".gitignore", "*.csv\n")
    install_local_hooks(repo, ["require-dvc-files"], ["pre-commit"])
    git(repo, "add", "-A")
    assert git_run(repo, "commit", "-m", "data").returncode == 0
    write(repo / "sub" / "deeper" / "data.csv", b"3,4\n")
    write(repo / "sub" / "deeper" / "notes.txt", "x")
    git(repo, "add", "sub/deeper/notes.txt")
    proc = git_run(repo / "sub" / "deeper", "commit", "-m", "x")
    assert proc.returncode == 1
    assert "sub/deeper/data.csv: differs from sub/deeper/data.csv.dvc" in proc.stdout


def test_sparse_checkout(repo: Path) -> None:
    prepare(repo)
    dvc_add(repo, "a/x.csv", b"a\n")
    dvc_add(repo, "b/y.csv", b"b\n")
    git(repo, "add", "-A")
    commit(repo, "two outputs")
    git(repo, "sparse-checkout", "set", "a")
    assert not (repo / "b" / "y.csv.dvc").exists()
    with unchanged(repo):
        assert check(repo) == {}  # b/ is not checked out: nothing to compare there
    write(repo / "a" / "x.csv", b"c\n")
    assert list(check(repo)) == ["a/x.csv"]


def test_autocrlf(repo: Path) -> None:
    prepare(repo)
    dvc_add(repo, "data.csv", b"1,2\r\n3,4\r\n")
    write(repo / "old.csv", b"x\r\ny\r\n")  # a DVC 2 entry: md5 of the text with CRLF -> LF
    legacy = hashlib.md5(b"x\ny\n").hexdigest()
    write(
        repo / "old.csv.dvc",
        f"outs:\n- md5: {legacy}\n  size: 6\n  path: old.csv\n  cache: false\n",
    )
    git(repo, "add", "-A")
    commit(repo, "data")
    git(repo, "config", "core.autocrlf", "true")
    for name in ("data.csv.dvc", "old.csv.dvc", ".gitignore"):
        (repo / name).unlink()
    git(repo, "checkout", "--", ".")
    assert b"\r\n" in (repo / "data.csv.dvc").read_bytes()  # git wrote the .dvc file with CRLF
    with unchanged(repo):
        assert check(repo) == {}


HOSTILE_DATA_NAMES = {
    "newline": "new\nline.csv",
    "non-ascii": "données-ü.csv",
    "dash-rf": "-rf.csv",
    "space": "with space.csv",
}


def test_hostile_data_file_names(repo: Path) -> None:
    prepare(repo)
    for i, name in enumerate(HOSTILE_DATA_NAMES.values()):
        dvc_add(repo, name, f"{i},{i}\n".encode())
    with unchanged(repo):
        assert check(repo) == {}
    for i, name in enumerate(HOSTILE_DATA_NAMES.values()):
        write(repo / name, f"{i},x\n".encode())
    with unchanged(repo):
        got = check(repo)
    assert sorted(got) == sorted(["new\\nline.csv", "données-ü.csv", "-rf.csv", "with space.csv"])
    with unchanged(repo):
        out = cli(repo, "check-dvc", "-rf.csv")  # an existing name is a path, never an option
    assert out.code == 1
    assert out.out.startswith("-rf.csv: differs from -rf.csv.dvc")
    assert "with space" not in out.out
    text = cli(repo, "check-dvc").out
    assert "new\\nline.csv: differs from new\\nline.csv.dvc" in text  # one line per finding


# ---- the hash cache ---------------------------------------------------------------------------

CORRUPT_CACHES = {
    # id: (cache bytes from a good cache and the data file's absolute path)
    "garbage": lambda good, path: b"\x00garbage\xff" * 100,
    "truncated": lambda good, path: good[: len(good) // 2],
    "empty": lambda good, path: b"",
    "wrong-version": lambda good, path: marshal.dumps(("repro-hooks-hash-cache", 1, {})),
    "wrong-shapes": lambda good, path: marshal.dumps(
        ("repro-hooks-hash-cache", 2, {(path, "md5"): 5, 7: (1, 2)})
    ),
}


@pytest.mark.e2e
def test_hash_cache_faults_never_change_the_verdict(repo: Path) -> None:
    prepare(repo)
    data = repo / "data.csv"
    dvc_add(repo, "data.csv", b"1,2\n")
    # inside the 2 s window: same size, mtime set back, right after the first run
    assert check(repo) == {}
    same_size_rewrite(data, b"9,9\n")
    assert "data.csv" in check(repo)
    same_size_rewrite(data, b"1,2\n")
    time.sleep(2.2)  # outside the window: the hash is cached now
    assert check(repo) == {}
    cache = repo / CACHE
    good = cache.read_bytes()
    assert str(data).encode() in good
    # outside the window: same size, same mtime; only ctime tells (fixed: served stale before)
    same_size_rewrite(data, b"9,9\n")
    assert "data.csv" in check(repo)
    same_size_rewrite(data, b"1,2\n")
    time.sleep(2.2)
    assert check(repo) == {}
    for make in CORRUPT_CACHES.values():
        cache.write_bytes(make(good, str(data)))
        with unchanged(repo):
            assert check(repo) == {}
            same_size_rewrite(data, b"9,9\n")
            assert "data.csv" in check(repo)
            same_size_rewrite(data, b"1,2\n")
    # the cache directory cannot be created (a file where it should be): same verdicts
    shutil.rmtree(repo / ".git" / "repro-hooks")
    write(repo / ".git" / "repro-hooks", "in the way")
    assert check(repo) == {}
    write(data, b"5,6\n")
    assert "data.csv" in check(repo)
    assert (repo / ".git" / "repro-hooks").read_text() == "in the way"


# ---- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "key"), list(CONFIG_CASES.values()), ids=list(CONFIG_CASES))
def test_bad_config_check_dvc(repo: Path, tmp_path: Path, body: bytes, key: str) -> None:
    prepare(repo)
    dvc_add(repo, "data.csv", b"1\n")
    policy = write(tmp_path / "policy.toml", body)
    write(repo / "pyproject.toml", b"[tool.repro-hooks]\n" + body)
    with unchanged(repo):
        for args, file in (([], "pyproject.toml"), (["--config", str(policy)], str(policy))):
            out = cli(repo, "check-dvc", *args)
            assert out.code == 2, (args, out)
            assert out.err.startswith(f"repro-hooks: {file}: "), (args, out.err)
            assert key in out.err, (args, out.err)


CONFIG_WAYS = ("check-dvc (pyproject.toml)", "check-dvc --config")
