"""Progress bars for long work: on stderr when it is a terminal (a real pty here), and nothing
at all anywhere else, so piped and captured output stays byte for byte what it was."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import subprocess
from pathlib import Path

import pytest

from repro_hooks.dvc.hashing import PROGRESS_MIN_BYTES
from repro_hooks.history.run import PROGRESS_MIN_COMMITS
from tests.dvc_helpers import dvc
from tests.helpers import VENV_BIN, commit, git, write


def cli(repo: Path, *args: str, tty: bool) -> tuple[int, bytes, bytes]:
    """Run the console script with stderr on a pty (tty=True) or a pipe; stdout is a pipe."""
    argv = [str(VENV_BIN / "repro-hooks"), *args]
    if not tty:
        proc = subprocess.run(argv, cwd=repo, capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    with subprocess.Popen(argv, cwd=repo, stdout=subprocess.PIPE, stderr=slave) as proc:
        os.close(slave)
        assert proc.stdout is not None
        err = b""
        while True:  # drain the pty until the child closes it (EIO on Linux)
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                err += chunk
            elif proc.poll() is not None:
                break
        out = proc.stdout.read()
        code = proc.wait()
    os.close(master)
    return code, out, err


def both(repo: Path, *args: str) -> tuple[bytes, bytes]:
    """Run on a terminal and off one: same exit code and stdout; off a terminal, no stderr.
    Returns (terminal stderr, stdout)."""
    code_t, out_t, err_t = cli(repo, *args, tty=True)
    code_p, out_p, err_p = cli(repo, *args, tty=False)
    assert code_t == code_p, (out_t, err_t, out_p, err_p)
    assert out_t == out_p
    assert err_p == b"", err_p
    return err_t, out_p


def test_scan_all_history_shows_progress_on_a_terminal_only(repo: Path) -> None:
    n = PROGRESS_MIN_COMMITS + 20
    stream = b"reset refs/heads/main\nfrom refs/heads/main^0\n\n" + b"".join(
        b"commit refs/heads/main\ncommitter T <t@e> %d +0000\ndata 2\nc\n"
        b"M 100644 inline f%d.txt\ndata 2\n%d\n\n" % (1_700_000_000 + i, i % 50, i % 10)
        for i in range(n)
    )
    git(repo, "fast-import", "--quiet", input=stream)
    git(repo, "reset", "-q", "--hard", "main")
    err, out = both(repo, "scan", "--all-history")
    assert out == b""
    assert b"repro-hooks: scanning commits" in err
    assert b"%d/%d" % (n + 1, n + 1) in err  # counted to the end (root commit included)
    # a short history: no bar even on a terminal
    small = repo.parent / "small"
    git(repo.parent, "init", "-q", "-b", "main", str(small))
    git(small, "commit", "-q", "--allow-empty", "-m", "one")
    assert both(small, "scan", "--all-history")[0] == b""


def test_check_dvc_cold_hashing_shows_progress(dvc_repo: Path) -> None:
    data = os.urandom(1 << 20) * (PROGRESS_MIN_BYTES // (1 << 20) + 2)
    write(dvc_repo / "big.bin", data)
    md5 = hashlib.md5(data).hexdigest()
    write(
        dvc_repo / "big.bin.dvc",
        f"outs:\n- md5: {md5}\n  size: {len(data)}\n  hash: md5\n  path: big.bin\n",
    )
    write(dvc_repo / ".gitignore", "/big.bin\n")
    commit(dvc_repo, "big data in DVC")
    err, out = both(dvc_repo, "check-dvc", "--no-cache", "--format", "json")
    assert b"repro-hooks: hashing data (66 MiB)" in err, err
    found = json.loads(out)["findings"]
    assert [f["message"] for f in found] == ["not in the DVC cache (dvc commit big.bin.dvc)"]
    # the stale case: same verdict on and off a terminal (both() checks stdout is identical)
    write(dvc_repo / "big.bin", data[:-1] + b"x")
    err, out = both(dvc_repo, "check-dvc", "--no-cache")
    assert b"big.bin.dvc" in out and b"hashing data" in err


@pytest.mark.e2e
def test_check_dvc_remote_shows_progress(dvc_repo: Path, tmp_path: Path) -> None:
    dvc(dvc_repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    write(dvc_repo / "a.txt", "a\n")
    dvc(dvc_repo, "add", "-q", "a.txt")
    commit(dvc_repo, "data")
    err, out = both(dvc_repo, "check-dvc-remote", "--all-history")
    assert b"a.txt: " in out and b"not in DVC remote" in out
    assert b"repro-hooks: checking DVC remote" in err and b"1/1" in err, err
