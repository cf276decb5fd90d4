"""Shared harness of the fault-matrix tests (docs/RELIABILITY.md).

Every case runs the real console script and asserts the same three things: the documented exit
code, no traceback (nor an "internal error", exit 3), and no user file deleted or altered (the
index and every working-tree file hashed before and after).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import VENV_BIN

REPRO = str(VENV_BIN / "repro-hooks")
KIB = 1024
BIG = 600 * KIB  # over the default 500 KiB size limit


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def assert_no_crash(text: str) -> None:
    assert "Traceback" not in text, text
    assert "internal error" not in text, text


def cli(
    cwd: Path,
    *args: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,  # a cap against hangs, never a budget
) -> Outcome:
    """The installed `repro-hooks` in a subprocess; never a traceback, and an exit 2 from our own
    code is exactly one `repro-hooks: ...` line."""
    proc = subprocess.run(
        [REPRO, *args],
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    outcome = Outcome(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    assert_no_crash(outcome.text)
    assert outcome.code in (0, 1, 2), outcome
    if outcome.code == 2 and outcome.err.startswith("repro-hooks: "):
        assert len(outcome.err.strip().splitlines()) == 1, outcome.err
    return outcome


def snapshot(repo: Path) -> tuple[bytes, dict[bytes, str]]:
    """The index (`git ls-files -s -z`) and a hash of every working-tree file and symlink."""
    index = subprocess.run(
        ["git", "ls-files", "-s", "-z"], cwd=repo, capture_output=True, check=True
    ).stdout
    root = os.fsencode(repo)
    files: dict[bytes, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root and b".git" in dirnames:
            dirnames.remove(b".git")
        for name in [
            *filenames,
            *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))),
        ]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                files[rel] = "link:" + os.fsdecode(os.readlink(full))
            elif os.path.isfile(full):
                with open(full, "rb") as fh:
                    files[rel] = hashlib.sha256(fh.read()).hexdigest()
    return index, files


@contextmanager
def unchanged(repo: Path) -> Iterator[None]:
    """Assert that the block leaves the index and every working-tree file as they were."""
    before = snapshot(repo)
    yield
    after = snapshot(repo)
    assert after[0] == before[0], "the index changed"
    assert after[1] == before[1], "a working-tree file changed"


def git_run(
    cwd: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A git command whose failure is the point (a blocked commit, a rejected push). git sends a
    hook's output to stderr: `stdout` of the result holds both streams, stderr the second."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    assert_no_crash(out + err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out + err, err)
