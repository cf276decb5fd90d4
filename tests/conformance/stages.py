"""Stages as check-dvc resolves them and as DVC does, in one comparable shape.

Each stage is keyed by (dvc.yaml relative to the git root, stage name as dvc.lock records it,
`name@key` for foreach/matrix), with its command, dependencies and outputs (paths relative to
the git root, in order; outputs with their cache flag) and params (file relative to the git
root -> sorted keys, None for the whole file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

StageKey = tuple[str, str]
StageShape = dict[str, Any]


def _shape(
    cmd: Any, deps: list[str], outs: list[tuple[str, bool]], params: dict[str, list[str] | None]
) -> StageShape:
    return {
        "cmd": cmd,
        "deps": deps,
        "outs": outs,
        "params": {f: None if not keys else sorted(set(keys)) for f, keys in params.items()},
    }


def our_stages(repo: Path) -> dict[StageKey, StageShape]:
    """check-dvc's view: every dvc.yaml's stages, through `collect` (what check-dvc reads)."""
    from repro_hooks.dvc.check import Scope
    from repro_hooks.dvc.worktree import collect
    from repro_hooks.git import Git

    files = collect(Git.discover(repo), Scope(), use_cache=False).files
    assert not files.malformed, files.malformed
    out: dict[StageKey, StageShape] = {}
    for pipeline in files.pipelines:
        for name, stage in pipeline.stages.items():
            out[(pipeline.yaml_file, name)] = _shape(
                stage.cmd,
                list(stage.deps),
                [(o.path, bool(o.cache)) for o in stage.outs],
                dict(stage.params),
            )
    return out


def _rel(root: Path, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def dvc_stages(repo: Path, projects: tuple[str, ...]) -> dict[StageKey, StageShape]:
    """DVC's view, in this process: `Repo(project).index.stages` for each DVC project."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    root = repo.resolve()
    out: dict[StageKey, StageShape] = {}
    for project in projects:
        with Repo(str(root / project)) as dvc_repo:
            for stage in dvc_repo.index.stages:
                if not isinstance(stage, PipelineStage):
                    continue  # .dvc files: not templated
                params: dict[str, list[str] | None] = {}
                deps = []
                for dep in stage.deps:
                    if isinstance(dep, ParamsDependency):
                        keys = params.setdefault(_rel(root, dep.fs_path), [])
                        assert keys is not None
                        keys.extend(dep.params)
                    else:
                        deps.append(_rel(root, dep.fs_path))
                outs = [(_rel(root, o.fs_path), bool(o.use_cache)) for o in stage.outs]
                out[(_rel(root, stage.path), stage.name)] = _shape(stage.cmd, deps, outs, params)
    return out


def dvc_stage_names(repo: Path, projects: tuple[str, ...]) -> set[StageKey]:
    """`dvc stage list --all --name-only` from each project's root: (dvc.yaml, name)."""
    from tests.dvc_helpers import dvc

    names: set[StageKey] = set()
    for project in projects:
        where = repo / project if project else repo
        proc = dvc(where, "stage", "list", "--all", "--name-only")
        for line in proc.stdout.split("\n"):
            line = line.strip()
            if not line:
                continue
            # `name` for the project's own dvc.yaml, `<dir>/dvc.yaml:name` for the others
            file, _, name = line.rpartition(":")
            if not file and name.endswith(".dvc"):
                continue  # a .dvc file (`dvc add`), not a pipeline stage
            file = file or "dvc.yaml"
            names.add((os.path.normpath(os.path.join(project, file)).replace(os.sep, "/"), name))
    return names


def stage_mismatch(repo: Path, projects: tuple[str, ...]) -> str:
    """Where check-dvc's resolved stages differ from DVC's ("" when they do not)."""
    theirs = dvc_stages(repo, projects)
    try:
        ours = our_stages(repo)
    except AssertionError as exc:
        return f"check-dvc could not read the pipeline: {exc}"
    if sorted(ours) != sorted(theirs):
        only_ours, only_theirs = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        return f"stage names: only check-dvc {only_ours}, only DVC {only_theirs}"
    for key, stage in sorted(theirs.items()):
        if ours[key] != stage:
            return f"{key}: check-dvc {ours[key]}, DVC {stage}"
    return ""
