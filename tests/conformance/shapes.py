"""Project shapes modelled on public DVC projects, mutations, a seeded generator, and the
comparison of check-dvc's verdict with DVC's own.

A *base* is a small project built once with the real DVC (`dvc add`, `dvc repro`), then committed:
- `registry`: a data registry: a directory and a file under `datasets/`, their .dvc files in
  `meta/` written with `wdir: ..` (as dataset registries do);
- `pipeline`: a dvc.yaml with a stage reading params in YAML, JSON, TOML and Python (a class
  with `self.x = ...` in `__init__`), a `foreach` stage with a `cache: false` metric, a stage in
  `sub/dvc.yaml` with `wdir: ..`, and a frozen stage;
- `subdir`: a `dvc init --subdir` project below the git root;
- `import`: a frozen `dvc import` from another (local) repository;
- `tpl-root`, `tpl-subdir`, `tpl-beside`, `tpl-nested`: one templated pipeline (`vars`, `${...}`,
  `foreach`, `matrix`) in each project layout (tests/conformance/templated.py).

A *case* is a copy of a base plus mutations. Both tools are asked (DVC from the root of each
DVC project of the repository, its verdicts combined); they agree when
- DVC fails on the project (exit 255: a file it refuses) exactly when check-dvc reports a
  `malformed-dvc` finding, and otherwise
- the exit codes agree (`dvc status --json` non-empty means 1) and the sets of paths DVC lists
  under "changed deps"/"changed outs" equal the paths of check-dvc's state findings that are not
  DVC files (DVC names a stage, not a file, for "always changed" or a changed command).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conformance.templated import TEMPLATED_BASES, TEMPLATED_MUTATIONS
from tests.dvc_helpers import dvc
from tests.helpers import cli_here, git, write

DVC_STATE_RULES = {"stale-dvc", "missing-output", "stale-lock"}


def _commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "base")


# ---- bases ------------------------------------------------------------------------------------


def build_registry(repo: Path) -> None:
    write(repo / "datasets/images/a.bin", b"\x00\x01" * 50)
    write(repo / "datasets/images/sub/b.bin", b"b" * 10)
    write(repo / "datasets/labels.csv", "id,label\n1,cat\n")
    dvc(repo, "add", "-q", "datasets/images", "datasets/labels.csv")
    (repo / "meta").mkdir()
    for name in ("images", "labels.csv"):
        text = (repo / f"datasets/{name}.dvc").read_text()
        (repo / f"datasets/{name}.dvc").unlink()
        text = text.replace(f"path: {name}\n", f"path: datasets/{name}\n")
        write(repo / f"meta/{name}.dvc", "wdir: ..\n" + text)
    _commit(repo)


PARAMS_PY = """LR = 0.1


class Train:
    batch = 32

    def __init__(self):
        self.dropout = 0.5
"""


def build_pipeline(repo: Path) -> None:
    write(repo / "data/raw.csv", "x\n1\n2\n")
    write(repo / "params.yaml", "lr: 0.001\nepochs: 10\nflag: true\nname: on\n")
    write(repo / "params.json", '{"seed": 1, "opt": {"beta": 0.9}}\n')
    write(repo / "params.toml", "[model]\ndepth = 3\n")
    write(repo / "params.py", PARAMS_PY)
    write(repo / "prep.py", "print('prep')\n")
    write(
        repo / "dvc.yaml",
        """stages:
  prep:
    cmd: cp data/raw.csv features.csv
    deps:
    - data/raw.csv
    - prep.py
    params:
    - lr
    - epochs
    - name
    - params.json:
      - seed
      - opt.beta
    - params.toml:
      - model.depth
    - params.py:
      - LR
      - Train.dropout
    outs:
    - features.csv
  report:
    foreach: [a, b]
    do:
      cmd: echo ${item} > metric_${item}.csv
      deps:
      - features.csv
      metrics:
      - metric_${item}.csv:
          cache: false
  frozen:
    cmd: cp data/raw.csv frozen.csv
    frozen: true
    deps:
    - data/raw.csv
    outs:
    - frozen.csv
""",
    )
    write(
        repo / "sub/dvc.yaml",
        """stages:
  up:
    cmd: cp features.csv model.bin
    wdir: ..
    deps:
    - features.csv
    outs:
    - model.bin
""",
    )
    write(repo / "frozen.csv", "x\n1\n2\n")
    dvc(repo, "add", "-q", "data/raw.csv")  # raw data in DVC, as pipelines keep it
    dvc(repo, "repro", "-q", "dvc.yaml:prep", "dvc.yaml:report", "sub/dvc.yaml:up")
    dvc(repo, "commit", "-q", "-f", "dvc.yaml:frozen")
    _commit(repo)


def build_subdir(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc")
    (repo / ".dvcignore").unlink(missing_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "no dvc at the root")
    proj = repo / "proj"
    proj.mkdir()
    dvc(proj, "init", "-q", "--subdir")
    dvc(proj, "config", "core.autostage", "false")
    write(proj / "data/train.csv", "a\n1\n")
    write(proj / "data/dir/x.bin", b"xx")
    dvc(proj, "add", "-q", "data/train.csv", "data/dir")
    _commit(repo)


def build_import(repo: Path) -> None:
    """`dvc import` from another (local) repository: a frozen import, as DVC writes it."""
    source = repo.parent / "source"
    shutil.copytree(repo, source, symlinks=True)
    write(source / "shared/vocab.txt", "a\nb\n")
    dvc(source, "add", "-q", "shared/vocab.txt")
    _commit(source)
    dvc(repo, "import", "-q", str(source), "shared/vocab.txt", "-o", "vocab.txt")
    _commit(repo)


BASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    # name -> (builder, the DVC projects, directories relative to the git root)
    "registry": (build_registry, ("",)),
    "pipeline": (build_pipeline, ("",)),
    "subdir": (build_subdir, ("proj",)),
    "import": (build_import, ("",)),
    # templated pipelines in every layout (tests/conformance/templated.py)
    **{name: (build, projects) for name, (build, projects, _) in TEMPLATED_BASES.items()},
}


# ---- mutations --------------------------------------------------------------------------------

Mutation = Callable[[Path, random.Random], object]


def _edit(path: Path, old: str, new: str) -> None:
    """Replace `old` once; nothing when an earlier mutation of the same case changed it."""
    text = path.read_text()
    path.write_text(text.replace(old, new, 1))


def _append(path: Path, data: str = "z") -> None:
    with path.open("a") as fh:
        fh.write(data)


# YAML scalars whose value YAML 1.2 (DVC) and YAML 1.1 (PyYAML) read differently, each with the
# value it replaces in params.yaml: `same` when DVC reads the same value.
TRICKY_PARAMS = [
    ("lr: 0.001", "lr: 1e-3", "same"),
    ("lr: 0.001", "lr: 1.0e-3", "same"),
    ("epochs: 10", "epochs: 010", "same"),
    ("epochs: 10", "epochs: 0o12", "same"),
    ("epochs: 10", "epochs: 1_0", "same"),
    ("name: on", "name: 'on'", "same"),
    ("name: on", "name: true", "changed"),
    ("flag: true", "flag: yes", "untracked"),
    ("lr: 0.001", "lr: 0.002", "changed"),
    ("epochs: 10", "epochs: 0x0A", "same"),
]

MUTATIONS: dict[str, dict[str, Mutation]] = {
    "registry": {
        "none": lambda r, g: None,
        "edit-file": lambda r, g: _append(r / "datasets/labels.csv"),
        "add-to-dir": lambda r, g: write(r / f"datasets/images/n{g.randrange(9)}.bin", b"n"),
        "remove-from-dir": lambda r, g: (r / "datasets/images/sub/b.bin").unlink(),
        "remove-output": lambda r, g: (r / "datasets/labels.csv").unlink(),
        "dvcignore-in-dir": lambda r, g: write(r / "datasets/images/.dvcignore", "*.tmp\n"),
        # found by the generated sweep: without the listing in its cache DVC does not refuse
        "dvcignore-in-dir-no-cache": lambda r, g: (
            write(r / "datasets/images/.dvcignore", "*.tmp\n"),
            shutil.rmtree(r / ".dvc/cache/files", ignore_errors=True),
        ),
        "dvcignored-in-dir": lambda r, g: (
            write(r / ".dvcignore", "*.tmp\n"),
            write(r / "datasets/images/x.tmp", "t"),
        ),
        "always-changed": lambda r, g: _edit(
            r / "meta/labels.csv.dvc", "wdir: ..\n", "wdir: ..\nalways_changed: true\n"
        ),
        "unknown-key": lambda r, g: _edit(
            r / "meta/labels.csv.dvc", "  hash: md5\n", "  hash: md5\n  sizes: 3\n"
        ),
        "deps-null": lambda r, g: _append(r / "meta/labels.csv.dvc", "deps:\n"),
        "outs-null": lambda r, g: write(r / "meta/empty.dvc", "outs:\n"),
        "drop-cache": lambda r, g: shutil.rmtree(r / ".dvc/cache/files", ignore_errors=True),
        "wdir-dot": lambda r, g: _edit(r / "meta/labels.csv.dvc", "wdir: ..\n", "wdir: ../.\n"),
    },
    "pipeline": {
        "none": lambda r, g: None,
        "edit-dep": lambda r, g: _append(r / "data/raw.csv", "3\n"),
        "edit-out": lambda r, g: _append(r / "features.csv", "9\n"),
        "remove-out": lambda r, g: (r / "sub/../model.bin").unlink(),
        "tricky-param": lambda r, g: _edit(r / "params.yaml", *g.choice(TRICKY_PARAMS)[:2]),
        "json-param": lambda r, g: _edit(r / "params.json", '"seed": 1', '"seed": 2'),
        "json-param-same": lambda r, g: _edit(r / "params.json", '"seed": 1', '"seed": 1.0'),
        "toml-param": lambda r, g: _edit(r / "params.toml", "depth = 3", "depth = 4"),
        "py-init-param": lambda r, g: _edit(
            r / "params.py", "self.dropout = 0.5", "self.dropout = 0.2"
        ),
        "py-untracked-param": lambda r, g: _edit(r / "params.py", "batch = 32", "batch = 64"),
        "respell-dep": lambda r, g: _edit(r / "dvc.yaml", "    - prep.py\n", "    - ./prep.py\n"),
        "respell-out": lambda r, g: _edit(
            r / "sub/dvc.yaml", "    - model.bin\n", "    - ./model.bin\n"
        ),
        "always-changed": lambda r, g: _edit(
            r / "dvc.yaml", "    frozen: true\n", "    frozen: true\n    always_changed: true\n"
        ),
        "frozen-dep": lambda r, g: _edit(
            r / "dvc.yaml",
            "    cmd: cp data/raw.csv frozen.csv",
            "    cmd: cp data/raw.csv frozen.csv  ",
        ),
        "dvcignore-dep": lambda r, g: write(r / ".dvcignore", "prep.py\n"),
        "dep-mapping": lambda r, g: _edit(r / "dvc.yaml", "    - prep.py\n", "    - prep.py: {}\n"),
        "deps-null": lambda r, g: _edit(
            r / "sub/dvc.yaml", "    deps:\n    - features.csv\n", "    deps:\n"
        ),
        "cmd-changed": lambda r, g: _edit(
            r / "sub/dvc.yaml", "cp features.csv model.bin", "cp  features.csv model.bin"
        ),
        "lock-schema-float": lambda r, g: _edit(r / "dvc.lock", "schema: '2.0'", "schema: 2.0"),
        "yaml-duplicate-key": lambda r, g: _append(r / "params.yaml", "lr: 0.5\n"),
        "foreach-metric": lambda r, g: _append(r / "metric_a.csv", "x\n"),
    },
    "import": {
        "none": lambda r, g: None,
        "edit-imported": lambda r, g: _append(r / "vocab.txt"),
        "remove-imported": lambda r, g: (r / "vocab.txt").unlink(),
        "drop-cache": lambda r, g: shutil.rmtree(r / ".dvc/cache/files", ignore_errors=True),
    },
    "subdir": {
        "none": lambda r, g: None,
        "edit-file": lambda r, g: _append(r / "proj/data/train.csv"),
        "add-to-dir": lambda r, g: write(r / "proj/data/dir/y.bin", b"y"),
        "drop-cache": lambda r, g: shutil.rmtree(r / "proj/.dvc/cache/files", ignore_errors=True),
    },
    **TEMPLATED_MUTATIONS,
}


# ---- the comparison ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    error: bool  # DVC failed on the project / check-dvc found a malformed DVC file
    rc: int
    paths: frozenset[str]


def dvc_verdict(repo: Path, project: str) -> Verdict:
    """`dvc status --json` asked from the project's own root (a `--subdir` project is a
    separate project: DVC at the git root calls it "dvc-ignored"); paths relative to the git
    root."""
    where = repo / project if project else repo
    proc = dvc(where, "status", "--json", check=False)
    if proc.returncode != 0:
        return Verdict(True, 255, frozenset())
    status = json.loads(proc.stdout or "{}")
    paths: set[str] = set()
    for changes in status.values():
        for change in changes:
            if isinstance(change, dict):
                for entries in change.values():
                    for path in entries:
                        rel = os.path.normpath(os.path.join(project, path)).replace(os.sep, "/")
                        paths.add(rel)
    return Verdict(False, 1 if status else 0, frozenset(paths))


def combined(verdicts: list[Verdict]) -> Verdict:
    """DVC's verdict over every project of a repository: an error when any project fails, else
    the worst exit code and every path."""
    if any(v.error for v in verdicts):
        return Verdict(True, 255, frozenset())
    paths = frozenset(p for v in verdicts for p in v.paths)
    return Verdict(False, max((v.rc for v in verdicts), default=0), paths)


def our_verdict(repo: Path) -> Verdict:
    proc = cli_here(repo, "check-dvc", "--format", "json")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    if any(f["rule"] == "malformed-dvc" for f in findings):
        return Verdict(True, 255, frozenset())
    state = [f for f in findings if f["rule"] in DVC_STATE_RULES]
    paths = {
        f["path"].rstrip("/")
        for f in state
        if not f["path"].endswith((".dvc", "dvc.yaml", "dvc.lock"))
    }
    return Verdict(False, 1 if state else 0, frozenset(paths))


def agree(theirs: Verdict, ours: Verdict) -> bool:
    if theirs.error or ours.error:
        return theirs.error == ours.error
    return theirs == ours


@dataclass(frozen=True)
class Case:
    base: str
    mutations: tuple[str, ...]
    seed: int = 0

    @property
    def id(self) -> str:
        return f"{self.base}:{'+'.join(self.mutations)}" + (f"#{self.seed}" if self.seed else "")


def generated_cases(count: int, seed: int = 11) -> list[Case]:
    """A seeded generator: up to three mutations of one base, each with its own seed."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        base = rng.choice(sorted(MUTATIONS))
        names = sorted(n for n in MUTATIONS[base] if n != "none")
        picked = tuple(sorted(set(rng.sample(names, rng.randint(1, min(3, len(names)))))))
        cases.append(Case(base, picked, rng.randrange(1, 10**6)))
    return cases


def shape_cases() -> list[Case]:
    """Every mutation of every base on its own (the corpus of shapes)."""
    return [Case(base, (name,)) for base in sorted(MUTATIONS) for name in MUTATIONS[base]]


def suite_shape_cases() -> list[Case]:
    """The shapes the normal suite runs: all of them for the plain bases; for the templated
    ones, which share most of their mutations, each shared mutation in one layout (taking the
    layouts in turn) plus `none` and each layout's own mutations everywhere: every mutation and
    every layout, a quarter of the cases (`make conformance` runs them all)."""
    layouts = sorted(TEMPLATED_BASES)
    shared = sorted(set.intersection(*(set(MUTATIONS[b]) for b in layouts)) - {"none"})
    turn = {name: layouts[i % len(layouts)] for i, name in enumerate(shared)}
    return [
        case
        for case in shape_cases()
        if case.base not in TEMPLATED_BASES
        or case.mutations[0] not in turn
        or turn[case.mutations[0]] == case.base
    ]


def run_case(case: Case, bases: dict[str, Path], dest: Path) -> tuple[Verdict, Verdict]:
    repo = dest / "repo"
    shutil.copytree(bases[case.base], repo, symlinks=True)
    rng = random.Random(case.seed)
    for name in case.mutations:
        MUTATIONS[case.base][name](repo, rng)
    theirs = combined([dvc_verdict(repo, project) for project in BASES[case.base][1]])
    return theirs, our_verdict(repo)
