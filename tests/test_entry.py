"""The console script's fast path: `repro-hooks check-large-files NAMES...` with no option (the
commit-stage hook's call) runs without click and says exactly what the click CLI says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import big, git, write

KIB = 1024
ENTRY = "from repro_hooks.entry import main"
CLICK = "from repro_hooks.cli import main"


def _run(
    repo: Path, entry: str, args: list[str], env: dict[str, str] | None = None
) -> tuple[int, bytes, list[str], str]:
    probe = (
        f"import sys\n{entry}\ncode = main({args!r})\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('click imported: %s\\n' % ('click' in sys.modules))\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, check=False, env=env
    )
    *said, imported = proc.stderr.decode().splitlines()
    return proc.returncode, proc.stdout, said, imported


@pytest.fixture
def staged(repo: Path) -> Path:
    write(repo / "data" / "big.bin", big(600 * KIB))
    write(repo / "data" / "ünïcode big.csv", big(700 * KIB, seed=1))
    write(repo / "small.txt", "x\n")
    git(repo, "add", "-A")
    return repo


CASES = [
    pytest.param(["check-large-files", "data/big.bin", "small.txt"], id="findings"),
    pytest.param(["check-large-files", "small.txt"], id="clean"),
    pytest.param(["check-large-files"], id="no-names"),
    pytest.param(["check-large-files", "data/ünïcode big.csv"], id="non-ascii-finding"),
    pytest.param(["check-large-files", "no-such-file"], id="usage-error"),
    pytest.param(["check-large-files", "--", "data/big.bin"], id="with-an-option"),
]


@pytest.mark.parametrize("args", CASES)
@pytest.mark.parametrize("pre_commit", ["0", "1"])
def test_fast_path_says_what_click_says(
    staged: Path, args: list[str], pre_commit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRE_COMMIT", pre_commit)
    fast, slow = _run(staged, ENTRY, args), _run(staged, CLICK, args)
    assert fast[:3] == slow[:3]
    assert slow[3] == "click imported: True"


def test_non_ascii_on_an_ascii_stream_as_click_says_it(
    staged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under LANG=C with an ASCII stdout, click re-encodes what it prints: the fast path leaves
    such output to it."""
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    monkeypatch.setenv("LC_ALL", "C")
    args = ["check-large-files", "data/ünïcode big.csv", "data/big.bin"]
    fast, slow = _run(staged, ENTRY, args), _run(staged, CLICK, args)
    assert fast[:3] == slow[:3]
    assert fast[0] == 1


def test_bad_configuration_is_said_by_click(staged: Path) -> None:
    write(staged / "pyproject.toml", "[tool.repro-hooks]\nmax-size = 'lots'\n")
    args = ["check-large-files", "small.txt"]
    fast, slow = _run(staged, ENTRY, args), _run(staged, CLICK, args)
    assert fast[:3] == slow[:3]
    assert fast[0] == 2


def test_the_hook_s_call_never_imports_click(staged: Path) -> None:
    # (non-ASCII output is left to click: see test_non_ascii_on_an_ascii_stream_as_click_says_it)
    git(staged, "rm", "-q", "--cached", "data/ünïcode big.csv")
    for args, expected in [
        (["check-large-files", "data/big.bin"], 1),
        (["check-large-files", "small.txt"], 0),
        (["check-large-files"], 1),  # everything staged (the plain pre-commit shim's call)
    ]:
        code, _, said, imported = _run(staged, ENTRY, args)
        assert (code, said, imported) == (expected, [], "click imported: False")
    assert _run(staged, ENTRY, ["check-large-files", "--", "small.txt"])[3] == (
        "click imported: True"
    )
