"""docs/RELIABILITY.md is kept true by the tests: every test it cites exists, and its summary
numbers are computed from the tests' own tables."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.test_reliability_dvc import CONFIG_WAYS, CORRUPT_CACHES, HOSTILE_DATA_NAMES
from tests.test_reliability_git import (
    BAD_PRE_RECEIVE_STDIN,
    CONFIG_CASES,
    CONFIG_COMMANDS,
    CONFLICTS,
    HOSTILE_NAMES,
    NAME_WAYS,
)
from tests.test_reliability_server import DVC_CASES, DVC_WAYS

DOC = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
CITED = sorted(set(re.findall(r"`tests/(\w+)\.py::(\w+)`", DOC)))

# (cases, ways each is tried), in the order of the doc's "Table-driven cases" rows
TABLES = [
    (len(HOSTILE_NAMES), len(NAME_WAYS)),
    (len(HOSTILE_NAMES) - 1, 1),  # through pre-commit: all but the invalid UTF-8 name
    (1, 1),  # the invalid UTF-8 name through pre-commit, then the plain shim
    (len(CONFIG_CASES), len(CONFIG_COMMANDS)),
    (len(CONFLICTS), 1),
    (len(BAD_PRE_RECEIVE_STDIN), 1),
    (len(DVC_CASES), len(DVC_WAYS)),
    (len(DVC_CASES), 1),  # check-dvc-remote
]
# the same for "### Table-driven cases (check-dvc)"
DVC_TABLES = [
    (len(DVC_CASES), 1),
    (len(CONFIG_CASES), len(CONFIG_WAYS)),
    (len(HOSTILE_DATA_NAMES), 1),
    (len(CORRUPT_CACHES), 1),
]
# every table whose rows are one condition each
CONDITION_TABLES = [
    "## Repository shapes and service conditions",
    "### Conditions (check-dvc)",
    "## MLflow linking (tag-mlflow)",
]


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else None]


def _table_after(heading: str) -> str:
    """The text from a heading (any level) to the next heading."""
    start = DOC.index(f"\n{heading}\n") + 1
    end = DOC.find("\n#", start + 1)
    return DOC[start : end if end != -1 else None]


def _rows(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[1:]]


@pytest.mark.parametrize("cited", CITED, ids=[f"{m}::{t}" for m, t in CITED])
def test_every_cited_test_exists(cited: tuple[str, str]) -> None:
    module, name = cited
    assert callable(getattr(importlib.import_module(f"tests.{module}"), name, None)), cited


def test_table_driven_case_counts_match_the_tests() -> None:
    rows = _rows(_table_after("## Table-driven cases"))
    assert [int(r[1]) for r in rows] == [cases for cases, _ in TABLES]
    dvc_rows = _rows(_table_after("### Table-driven cases (check-dvc)"))
    assert [int(r[1]) for r in dvc_rows] == [cases for cases, _ in DVC_TABLES]
    assert all(re.search(r"`tests/\w+\.py::\w+`", r[3]) for r in rows + dvc_rows)
    total = sum(cases * ways for cases, ways in TABLES + DVC_TABLES)
    assert f"**{total} bad inputs tried**" in DOC


def test_condition_count_matches_the_tables() -> None:
    rows = [row for heading in CONDITION_TABLES for row in _rows(_table_after(heading))]
    assert f"**{len(rows)} repository shapes and service conditions**" in DOC
    assert all(len(r) == 4 for r in rows), [r for r in rows if len(r) != 4]
    assert all(re.search(r"`tests/\w+\.py::\w+`", r[2]) for r in rows)


def test_every_section_is_filled() -> None:
    assert "## DVC freshness (check-dvc)" in DOC
    assert "## MLflow linking (tag-mlflow)" in DOC
    assert "Placeholder" not in DOC


def test_fix_section_rows_cite_tests_and_are_counted() -> None:
    rows = _rows(_table_after("## --fix: all or nothing"))
    assert all(len(r) == 4 for r in rows), [r for r in rows if len(r) != 4]
    assert all(re.search(r"`tests/\w+\.py::\w+`", r[2]) for r in rows)
    assert f"**`--fix`: {len(rows)} failure and edge cases, 0 files lost**" in DOC


# ---- bypass matrices: one row per door, each citing its end-to-end test ----------


@pytest.mark.parametrize(
    "title",
    [
        "Bypass matrix: commit stage and configuration",
        "Bypass matrix: push, CI and server",
        "Bypass matrix: round three",
    ],
)
def test_bypass_matrix_rows_cite_tests(title: str) -> None:
    rows = _rows(_table_after(f"## {title}"))
    assert rows, title
    assert all(len(r) == 4 for r in rows), [r for r in rows if len(r) != 4]
    assert all(re.search(r"`tests/\w+\.py::\w+`", r[2]) for r in rows)


def test_deploy_gate_matrix_has_a_row_per_door_citing_its_test() -> None:
    """Doors 1 to 7 of the deploy gate, each row citing an end-to-end test that exists."""
    rows = _rows(_table_after("## Bypass matrix: deploy gate"))
    assert all(len(r) == 4 for r in rows), [r for r in rows if len(r) != 4]
    doors = {r[0].split(".", 1)[0] for r in rows}
    assert doors == {str(n) for n in range(1, 8)}
    root = Path(__file__).resolve().parent.parent
    for row in rows:
        cited = re.findall(r"`(tests/\w+\.py)::(\w+)", row[2])
        assert cited, row
        for file, name in cited:
            assert re.search(rf"^def {name}\(", (root / file).read_text(), re.M), (file, name)
