"""`make census`: each Python process the tests start records its cost at exit, and
bench/suite_census.py adds the records up by kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite_census import kind, main, table, tally
from tests.conftest import CENSUS_ENV, SUBPROCESS_COVERAGE


def test_each_process_appends_its_line_at_exit(tmp_path: Path) -> None:
    census = tmp_path / "census.jsonl"
    env = {**os.environ, CENSUS_ENV: str(census), "PYTHONPATH": str(SUBPROCESS_COVERAGE)}
    env.pop("REPRO_HOOKS_TEST_COVERAGE", None)  # the census alone, without coverage's start-up
    for code in ("pass", "sum(range(3 * 10**6))"):
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    subprocess.run([sys.executable, "-c", "raise SystemExit(3)"], env=env, check=False)
    records = [json.loads(line) for line in census.read_text().splitlines()]
    assert [r["program"] for r in records] == [
        ["-c", "pass"],
        ["-c", "sum(range(3 * 10**6))"],
        ["-c", "raise SystemExit(3)"],
    ]
    assert [r["argv"][1:] for r in records] == [
        ["-c", "pass"],
        ["-c", "sum(range(3 * 10**6))"],
        ["-c", "raise SystemExit(3)"],
    ]
    assert all(r["cpu"] >= 0 and r["wall"] >= 0 and r["mlflow"] is False for r in records)
    assert records[1]["cpu"] > 0  # its own processor time: the loop's, read at its exit


def test_no_variable_no_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SUBPROCESS_COVERAGE)}
    env.pop(CENSUS_ENV, None)
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_program_is_read_past_the_interpreters_options() -> None:
    """One reading of a command line serves both the census and the choice of processes that
    start coverage: pre-commit's git hook (`python -mpre_commit hook-impl`) is pre-commit's."""
    cases = {
        "repro": (
            ["py", "/v/bin/repro-hooks", "check-dvc", "a.dvc"],
            ["/v/bin/repro-hooks", "check-dvc"],
            False,
        ),
        "hook": (["py", "-mpre_commit", "hook-impl", "--config=x"], ["-m", "pre_commit"], True),
        "module": (["py", "-u", "-m", "dvc.cli", "add"], ["-m", "dvc.cli"], True),
        "valued": (["py", "-X", "dev", "-W", "error", "train.py"], ["train.py"], False),
        "code": (["py", "-I", "-cimport x"], ["-c", "import x"], False),
        "dvc": (["py", "/v/bin/dvc", "--quiet", "add"], ["/v/bin/dvc", "--quiet"], True),
        "bare": (["py"], [], False),
    }
    code = (
        "import json, sys, sitecustomize as s\n"
        "cases = json.loads(sys.stdin.read())\n"
        "print(json.dumps({k: [s._program(a)[:2], s._foreign(a)] for k, (a, _, _) in cases.items()}))"
    )
    env = {**os.environ, "PYTHONPATH": str(SUBPROCESS_COVERAGE)}
    env.pop("REPRO_HOOKS_TEST_COVERAGE", None)
    env.pop(CENSUS_ENV, None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(cases),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == {k: [program, foreign] for k, (_, program, foreign) in cases.items()}


def test_kinds_name_what_the_process_did() -> None:
    assert kind(["/venv/bin/repro-hooks", "check-dvc"]) == "repro-hooks check-dvc"
    assert kind(["-m", "repro_hooks.links.delivery"]) == "python -m repro_hooks.links.delivery"
    assert kind(["train.py"]) == "train.py"
    assert kind(["/venv/bin/dvc", "--quiet"]) == "dvc"
    assert kind(["-c", "import  sys;\nprint(1)"]) == "python -c import sys; print(1)"
    assert kind([]) == "python"


def test_tally_adds_up_by_kind_largest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def line(argv: list[str], cpu: float, mlflow: bool = False) -> str:
        return json.dumps(
            {"argv": argv, "program": argv[1:3], "cpu": cpu, "wall": cpu, "mlflow": mlflow}
        )

    lines = [
        line(["py", "x/repro-hooks", "scan"], 0.1),
        line(["py", "-m", "repro_hooks.links.delivery", "g"], 1.2, mlflow=True),
        line(["py", "x/repro-hooks", "scan"], 0.2),
        "",
        line(["py", "train.py"], 1.0, mlflow=True),
    ]
    kinds = tally(lines)
    assert [(k.name, k.count, round(k.cpu, 2), k.mlflow) for k in kinds] == [
        ("python -m repro_hooks.links.delivery", 1, 1.2, 1),
        ("train.py", 1, 1.0, 1),
        ("repro-hooks scan", 2, 0.3, 0),
    ]
    out = table(kinds, top=2)
    assert out.splitlines()[0] == ("4 processes, 2 s of CPU; 2 s in the kinds that import MLflow")
    assert "| 1 other kinds | 2 | 0.3 | | 0 |" in out
    census = tmp_path / "census.jsonl"
    census.write_text("\n".join(lines) + "\n")
    assert main([str(census), "--top", "5"]) == 0
    assert "| `repro-hooks scan` | 2 | 0.3 | 0.15 | 0 |" in capsys.readouterr().out
