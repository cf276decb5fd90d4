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


# ---- scan --all-history -----------------------------------------------------------------------


@pytest.fixture
def history(repo: Path) -> Path:
    """Two commits: a large blob added then removed (a finding only a history scan sees), and
    a data file under the size limit."""
    write(repo / "data" / "big.bin", big(600 * KIB))
    write(repo / "data" / "small.csv", "a,b\n1,2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "add")
    git(repo, "rm", "-q", "data/big.bin")
    git(repo, "commit", "-q", "--no-verify", "-m", "remove")
    return repo


SCAN = ["scan", "--all-history"]


def test_scan_fast_path_says_what_click_says(history: Path) -> None:
    fast, slow = _run(history, ENTRY, SCAN), _run(history, CLICK, SCAN)
    assert fast[:3] == slow[:3]
    assert fast[0] == 1
    assert b"data/big.bin" in fast[1]
    assert (fast[3], slow[3]) == ("click imported: False", "click imported: True")


def test_scan_fast_path_clean_history(repo: Path) -> None:
    write(repo / "small.txt", "x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "small")
    fast, slow = _run(repo, ENTRY, SCAN), _run(repo, CLICK, SCAN)
    assert fast[:3] == slow[:3] == (0, b"", [])
    assert fast[3] == "click imported: False"


def test_scan_fast_path_on_a_bare_repository(history: Path, tmp_path: Path) -> None:
    """A server's repository: the server's policy (built-in defaults here), no work tree."""
    bare = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(history), str(bare))
    fast, slow = _run(bare, ENTRY, SCAN), _run(bare, CLICK, SCAN)
    assert fast[:3] == slow[:3]
    assert (fast[0], fast[3]) == (1, "click imported: False")


def test_scan_fast_path_judges_what_refs_point_at(history: Path) -> None:
    """Tips that are not commits (a raw blob, an annotated tag with a long message) and an
    empty repository: as click says it."""
    blob = git(history, "hash-object", "-w", "--stdin", input=big(600 * KIB)).strip()
    git(history, "tag", "rawblob", blob)
    write(history.parent / "msg", "x" * (70 * KIB))
    git(history, "tag", "-a", "-F", str(history.parent / "msg"), "long", "HEAD")
    empty = history.parent / "empty"
    git(history.parent, "init", "-q", str(empty))
    said = {}
    for where in (history, empty):
        fast, slow = _run(where, ENTRY, SCAN), _run(where, CLICK, SCAN)
        assert fast[:3] == slow[:3]
        assert fast[3] == "click imported: False"
        said[where] = fast[:3]
    code, out, _ = said[history]
    assert code == 1 and b"refs/tags/rawblob" in out and b"refs/tags/long" in out
    assert said[empty] == (0, b"", [])


def _lose_object(repo: Path, rev: str) -> None:
    sha = git(repo, "rev-parse", rev).strip()
    (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param("bad-config", id="bad-config"),
        pytest.param("not-a-repository", id="not-a-repository"),
        pytest.param("missing-blob", id="missing-blob"),  # found after the walk
        pytest.param("missing-tree", id="missing-tree"),  # git log itself fails
    ],
)
def test_scan_errors_are_said_by_click(history: Path, tmp_path: Path, setup: str) -> None:
    where = history
    if setup == "bad-config":
        write(history / "pyproject.toml", "[tool.repro-hooks]\nmax-size = 'lots'\n")
    elif setup == "not-a-repository":
        where = tmp_path / "plain"
        where.mkdir()
    elif setup == "missing-blob":
        _lose_object(history, "HEAD~1:data/big.bin")
    else:
        _lose_object(history, "HEAD~1^{tree}")
    fast, slow = _run(where, ENTRY, SCAN), _run(where, CLICK, SCAN)
    assert fast[:3] == slow[:3]
    assert fast[0] == 2 and fast[2] and fast[3] == "click imported: True"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["scan", "--all-history", "--format", "json"], id="format"),
        pytest.param(["scan", "--all-history", "--all-history"], id="twice"),
        pytest.param(["scan", "--all-history", "extra"], id="argument"),
        pytest.param(["scan", "--all-history", "--range", "HEAD"], id="two-sources"),
    ],
)
def test_other_scan_calls_go_to_click(history: Path, args: list[str]) -> None:
    fast, slow = _run(history, ENTRY, args), _run(history, CLICK, args)
    assert fast[:3] == slow[:3]
    assert fast[3] == "click imported: True"
