"""Verdicts as DVC gives them, and bounded cost, on the shapes the conformance harness
does not cover on its own (corrupt repositories, bombs, huge values, Python params)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro_hooks.dvc.params import python_params
from tests.helpers import cli_here, commit, git, run_cli, write


def test_scan_of_a_corrupt_repository_is_an_error(repo: Path) -> None:
    """Item 10: a blob missing in a repository that is not a partial clone: exit 2, named."""
    write(repo / "data/table.txt", "rows\n")
    commit(repo, "add table")
    sha = git(repo, "rev-parse", "HEAD:data/table.txt").strip()
    (repo / ".git/objects" / sha[:2] / sha[2:]).unlink()
    proc = run_cli(repo, "scan", "--range", "HEAD~1..HEAD")  # the exit, as a process ends
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"data/table.txt: object {sha}" in proc.stderr
    assert "corrupt" in proc.stderr and "Traceback" not in proc.stderr


def test_scan_in_a_partial_clone_is_not_an_error(repo: Path) -> None:
    write(repo / "data/table.txt", "rows\n")
    commit(repo, "add table")
    sha = git(repo, "rev-parse", "HEAD:data/table.txt").strip()
    (repo / ".git/objects" / sha[:2] / sha[2:]).unlink()
    git(repo, "config", "remote.origin.promisor", "true")
    proc = cli_here(repo, "scan", "--range", "HEAD~1..HEAD")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _bomb(levels: int = 30) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nlr: *a{levels - 1}\n"


def _pipeline(repo: Path, params: str, locked: str) -> None:
    write(repo / "params.yaml", params)
    write(repo / "dvc.yaml", "stages:\n  train:\n    cmd: python t.py\n    params: [lr]\n")
    write(
        repo / "dvc.lock",
        f"schema: '2.0'\nstages:\n  train:\n    cmd: python t.py\n"
        f"    params:\n      params.yaml:\n        lr: {locked}\n",
    )


@pytest.mark.parametrize("where", ["params", "lock"])
def test_alias_bombs_are_refused_in_one_line(repo: Path, where: str) -> None:
    """Item 12: a bomb in params.yaml or dvc.lock is refused at once (it ran for minutes)."""
    if where == "params":
        _pipeline(repo, _bomb(), "0.1")
    else:
        write(repo / "params.yaml", "lr: 0.1\n")
        write(repo / "dvc.yaml", "stages:\n  train:\n    cmd: python t.py\n    params: [lr]\n")
        write(repo / "dvc.lock", "schema: '2.0'\n" + _bomb().replace("\nlr:", "\nstages:"))
    proc = cli_here(repo, "check-dvc", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert any("once aliases are expanded" in f["message"] for f in findings), findings


def test_scan_refuses_a_bomb_in_dvc_lock(repo: Path) -> None:
    write(repo / "dvc.yaml", "stages:\n  s:\n    cmd: x\n")
    write(repo / "dvc.lock", "schema: '2.0'\n" + _bomb().replace("\nlr:", "\nstages:"))
    commit(repo, "bomb")
    proc = cli_here(repo, "scan", "--range", "HEAD~1..HEAD")
    assert proc.returncode == 1
    assert "dvc.lock: too large: more than 2,000,000 values" in proc.stdout


def test_huge_param_values_are_abbreviated(repo: Path) -> None:
    """Item 12: a 100,000-item param printed a 689 KB message."""
    items = ", ".join(str(i) for i in range(100_000))
    _pipeline(repo, f"lr: [{items}]\n", "[1, 2]")
    proc = cli_here(repo, "check-dvc")
    assert proc.returncode == 1
    assert "lr [1, 2] locked, <list of 100000 items> now" in proc.stdout
    assert len(proc.stdout) < 2000


def test_python_params_as_dvc_reads_them() -> None:
    """Item 5: DVC reads `self.x = ...` in a class's `__init__` (dvc/utils/serialize/_py.py)."""
    source = (
        "import os\nLR = 0.1\nA, B = 1, 2\nNAME: str = 'x'\nBAD = os.getcwd()\n"
        "D = {'a': 1}\nT = (1, 2)\n"
        "class Train:\n    batch = 32\n    def __init__(self):\n        self.dropout = 0.5\n"
        "        self.path = os.sep\n        local = 3\n"
    )
    assert python_params(source) == {
        "LR": 0.1,
        "NAME": "x",
        "D": {"a": 1},
        "T": (1, 2),
        "Train": {"batch": 32, "dropout": 0.5},
    }


def test_templated_stage_outputs_keep_wdir_and_cache_flags(tmp_path: Path) -> None:
    """Item 6: in a templated dvc.yaml, `cache: false` and `wdir` are kept, so a metric in git
    is no data-in-git and the cached model is what git must ignore."""
    from repro_hooks.dvc.check import DvcFiles, GitFacts, OutputIndex, WorkTree, dvc_findings
    from repro_hooks.dvc.hashing import DvcIgnore
    from repro_hooks.dvc.worktree import load_dvc_files
    from repro_hooks.policy.config import Policy

    write(
        tmp_path / "dvc.yaml",
        (
            "stages:\n  train:\n    foreach: [a, b]\n    do:\n      cmd: t ${item}\n      wdir: sub\n"
            "      outs:\n      - model_${item}.pkl\n      metrics:\n      - m_${item}.csv:\n"
            "          cache: false\n"
        ),
    )
    entry = "      - path: {}\n        hash: md5\n        md5: 0123456789abcdef0123456789abcdef\n"
    write(
        tmp_path / "dvc.lock",
        "schema: '2.0'\nstages:\n"
        + "".join(
            f"  train@{k}:\n    cmd: t {k}\n    outs:\n"
            + entry.format(f"model_{k}.pkl")
            + entry.format(f"m_{k}.csv")
            for k in "ab"
        ),
    )
    files: DvcFiles = load_dvc_files(
        tmp_path, ["dvc.yaml", "dvc.lock"], DvcIgnore({}), lambda p: True
    )
    index = OutputIndex.build(files)
    assert index.covering("sub/model_a.pkl") == ("sub/model_a.pkl", True, "dvc.yaml")
    assert index.covering("sub/m_b.csv") == ("sub/m_b.csv", False, "dvc.yaml")
    # Outputs are the resolved paths, never patterns: `m_c.csv` is no output of
    # the stage (it is data in git like any other csv), `m_a.csv` is one that git may keep
    facts = GitFacts(tracked=["sub/m_a.csv", "sub/m_c.csv"])
    found = dvc_findings(files, facts, WorkTree(), Policy())
    in_git = [(f.path, f.message) for f in found if f.rule == "data-in-git"]
    assert in_git == [("sub/m_c.csv", "data file stored in git")]
