"""check-dvc against `dvc status`, case by case (tests/conformance/shapes.py).

The fast part runs with the suite: every base reports nothing when clean, every templated base
resolves its stages as DVC does, every shape of the plain bases, and each templated mutation in
one of the four layouts (shapes.suite_shape_cases). The full sweep (every shape in every layout
plus generated combinations, the resolved stages compared after each templated case) runs with
`make conformance` (`pytest -m conformance`) and writes its figures to $CONFORMANCE_REPORT when
set.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conformance.shapes import (
    BASES,
    Case,
    agree,
    generated_cases,
    run_case,
    shape_cases,
    suite_shape_cases,
)
from tests.conformance.stages import dvc_stage_names, dvc_stages, our_stages, stage_mismatch
from tests.conformance.templated import TEMPLATED_BASES
from tests.dvc_helpers import clone_template
from tests.helpers import built_once, cli_here

# Where check-dvc deliberately differs from `dvc status` (docs/design.md): none of the shapes.
DELIBERATE: dict[str, str] = {}


@pytest.fixture(scope="session")
def bases(dvc_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every base project, built once per run and shared by the workers (tests/helpers.built_once);
    each case works on its own copy."""

    def build(path: Path) -> None:
        for name, (make, _) in BASES.items():
            make(clone_template(dvc_template, path / name / "repo"))

    root = built_once(tmp_path_factory, "conformance-bases", build)
    return {name: root / name / "repo" for name in BASES}


@pytest.mark.parametrize("base", sorted(BASES))
def test_bases_are_clean(base: str, bases: dict[str, Path], tmp_path: Path) -> None:
    """Nothing at all to report in a freshly built project: no `data-in-git` for a templated
    stage's `cache: false` metric in git, no `not-ignored` for outputs below a `wdir: ..`,
    nothing "not in the DVC cache" in a `dvc init --subdir` project."""
    repo = tmp_path / "repo"
    shutil.copytree(bases[base], repo, symlinks=True)
    proc = cli_here(repo, "check-dvc")
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stdout + proc.stderr


@pytest.mark.parametrize("base", sorted(TEMPLATED_BASES))
def test_resolved_stages_match_dvc(base: str, bases: dict[str, Path], tmp_path: Path) -> None:
    """Every templated stage as check-dvc resolves it (name, cmd, deps, outs, params) is DVC's
    own: `dvc stage list --all` for the names, `Repo(project).index.stages` for the rest, each
    project asked from its own root."""
    repo = tmp_path / "repo"
    shutil.copytree(bases[base], repo, symlinks=True)
    projects = BASES[base][1]
    theirs = dvc_stages(repo, projects)
    assert set(theirs) == dvc_stage_names(repo, projects)
    ours = our_stages(repo)
    assert sorted(ours) == sorted(theirs)
    for key, stage in sorted(theirs.items()):
        assert ours[key] == stage, key


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in suite_shape_cases()])
def test_shape_agrees_with_dvc(case: Case, bases: dict[str, Path], tmp_path: Path) -> None:
    theirs, ours = run_case(case, bases, tmp_path)
    assert agree(theirs, ours), f"dvc status: {theirs}\ncheck-dvc:  {ours}"


@pytest.mark.conformance
def test_full_sweep(bases: dict[str, Path], tmp_path: Path) -> None:
    count = int(os.environ.get("CONFORMANCE_CASES", "200"))
    cases = shape_cases() + generated_cases(count)
    disagreements: list[dict[str, str]] = []
    stage_disagreements: list[dict[str, str]] = []
    compared = 0
    for i, case in enumerate(cases):
        dest = tmp_path / str(i)
        dest.mkdir()
        theirs, ours = run_case(case, bases, dest)
        if not agree(theirs, ours) and case.id not in DELIBERATE:
            disagreements.append({"case": case.id, "dvc": repr(theirs), "ours": repr(ours)})
        if case.base in TEMPLATED_BASES and not theirs.error:
            # the stages themselves, as both resolve them after the mutations
            compared += 1
            mismatch = stage_mismatch(dest / "repo", BASES[case.base][1])
            if mismatch:
                stage_disagreements.append({"case": case.id, "stages": mismatch})
        shutil.rmtree(dest)
    figures = {
        "cases": len(cases),
        "agreements": len(cases) - len(disagreements),
        "disagreements": len(disagreements),
        "templated cases whose stages were compared": compared,
        "stage disagreements": len(stage_disagreements),
        "details": disagreements + stage_disagreements,
    }
    report = os.environ.get("CONFORMANCE_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    assert not disagreements
    assert not stage_disagreements
