"""Templated pipelines (`vars`, `${...}`, `foreach`, `matrix`) in every project layout, modelled
on public DVC projects, and their mutations.

The pipeline (`PIPELINE`) takes its shapes from:
- iterative/magnetic-tiles-defect (history): `${section.key}` from params.yaml in deps and outs,
  whole sections as params (`- data_split`), a `cache: false` metric;
- softboiler/boilercv: `${stage.scale}` floats and flags interpolated into `cmd`, the whole
  `stage` section as a param;
- simplymathematics/deckard: `vars` selecting keys of other files (`conf/x.yaml:key`, also one
  above the dvc.yaml's folder, `../conf/plots.yaml:cat_plot`), `foreach` over a list with
  `${item}` in cmd/deps/outs, `matrix` with `${item.key}`, a dvc.yaml in a subfolder of a
  project (`plots/dvc.yaml`), several `dvc init --subdir` projects in one git repository;
- iterative/monorepo-dvc-repro: `dvc init --subdir` projects side by side, none at the git root;
- DVC's documentation (dvc.org, "Templating"): inline `vars`, stage-level `vars`, `wdir` and
  `foreach` over an interpolated value and over a dict (`${key}`, `${item.x}`).
(iterative/pipeline-configuration could not be fetched here.)

Layouts (base name -> where the pipeline lives; DVC projects DVC is asked from):
- `tpl-root`: at the git root, the git root is the DVC project;
- `tpl-subdir`: in `proj/`, a `dvc init --subdir` project; no DVC project at the git root;
- `tpl-beside`: in `sub/`, a `dvc init --subdir` project beside a (templated) root project;
- `tpl-nested`: in `pipelines/train/` of the root project, with a vars file above it.
"""

from __future__ import annotations

import posixpath
import random
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.dvc_helpers import dvc
from tests.helpers import git, write

Mutation = Callable[[Path, random.Random], object]

PARAMS = """prep:
  split: 0.2
  out: prepared
  flag: true
stage:
  scale: 1.3
  precision: 3
langs: [en, fr]
regions:
  north:
    size: 2
  south:
    size: 3
"""

MODELS = """models:
  small:
    layers: 2
  big:
    layers: 4
unused:
  x: 1
"""

PATHS_JSON = '{"paths": {"reports": "reports", "wd": "work"}}\n'

PIPELINE = """vars:
  - conf/models.yaml:models
  - conf/paths.json
  - tag: v1
    report_name: summary.txt
{extra_vars}stages:
  prep:
    cmd: cp data/raw.csv ${{prep.out}}.csv && echo ${{prep.split}} ${{prep.flag}} ${{stage.scale}} ${{stage.precision}}{extra_cmd} >> ${{prep.out}}.csv
    deps:
      - data/raw.csv
    params:
      - prep
      - stage
    outs:
      - ${{prep.out}}.csv
  split:
    foreach: [train, test]
    do:
      cmd: echo ${{item}} ${{prep.split}} > split_${{item}}.txt
      deps:
        - ${{prep.out}}.csv
      outs:
        - split_${{item}}.txt
  lang:
    foreach: ${{langs}}
    do:
      cmd: mkdir -p ${{paths.reports}} && cat data/${{item}}.txt ${{prep.out}}.csv > ${{paths.reports}}/out_${{item}}.txt
      deps:
        - data/${{item}}.txt
        - ${{prep.out}}.csv
      outs:
        - ${{paths.reports}}/out_${{item}}.txt
  region:
    foreach:
      north:
        rows: 2
      south:
        rows: 3
    do:
      cmd: head -n ${{item.rows}} data/${{key}}.csv > region_${{key}}.csv
      deps:
        - data/${{key}}.csv
      params:
        - regions.${{key}}.size
      outs:
        - region_${{key}}.csv
  fit:
    matrix:
      model: [small, big]
      seed: [1, 2]
    cmd: mkdir -p fit && echo ${{item.model}} ${{item.seed}} ${{tag}} > fit/${{item.model}}-${{item.seed}}.txt
    deps:
      - ${{paths.reports}}/out_en.txt
    outs:
      - fit/${{item.model}}-${{item.seed}}.txt
  layers:
    cmd: echo ${{models.small.layers}} ${{models.big.layers}} > layers.txt
    outs:
      - layers.txt
  report:
    vars:
      - params.yaml:scale
      - header: report
    wdir: ${{paths.wd}}
    cmd: echo ${{header}} ${{scale}} > ${{report_name}}
    deps:
      - ../${{paths.reports}}/out_en.txt
    params:
      - scale
    metrics:
      - ${{report_name}}:
          cache: false
  final:
    cmd: cat layers.txt > final.txt
    deps:
      - layers.txt
    outs:
      - final.txt
"""

ROOT_PIPELINE = """stages:
  top:
    foreach: [x, y]
    do:
      cmd: echo ${item} ${seed} > top_${item}.txt
      params:
        - seed
      outs:
        - top_${item}.txt
"""


def write_pipeline(where: Path, *, above: bool = False) -> None:
    """The templated pipeline and its inputs in `where`; `above`: also a vars file selected from
    two folders up (`../../shared.yaml:common`, as deckard's `../conf/plots.yaml:cat_plot`)."""
    write(where / "params.yaml", PARAMS)
    write(where / "conf/models.yaml", MODELS)
    write(where / "conf/paths.json", PATHS_JSON)
    write(where / "work/params.yaml", "scale: 2\n")
    write(where / "data/raw.csv", "x\n1\n2\n")
    for name in ("en", "fr"):
        write(where / f"data/{name}.txt", f"{name}\n")
    write(where / "data/north.csv", "a\nb\nc\n")
    write(where / "data/south.csv", "d\ne\nf\n")
    extra_vars = "  - ../../shared.yaml:common\n" if above else ""
    extra_cmd = " ${common.suffix}" if above else ""
    write(where / "dvc.yaml", PIPELINE.format(extra_vars=extra_vars, extra_cmd=extra_cmd))


def _commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "base")


def _drop_root_project(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc")
    (repo / ".dvcignore").unlink(missing_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "no dvc at the root")


def _init_subdir(project: Path) -> None:
    project.mkdir(parents=True, exist_ok=True)
    dvc(project, "init", "-q", "--subdir")
    dvc(project, "config", "core.autostage", "false")


RAW_DATA = ("data/raw.csv", "data/north.csv", "data/south.csv")


def _add_raw(project: Path, folder: str = "") -> None:
    """The raw data in DVC, as pipelines keep it (`dvc add`, from the project's root)."""
    dvc(project, "add", "-q", *(f"{folder}{p}" for p in RAW_DATA))


def build_tpl_root(repo: Path) -> None:
    write_pipeline(repo)
    _add_raw(repo)
    dvc(repo, "repro", "-q")
    _commit(repo)


def build_tpl_subdir(repo: Path) -> None:
    _drop_root_project(repo)
    proj = repo / "proj"
    _init_subdir(proj)
    write_pipeline(proj)
    _add_raw(proj)
    dvc(proj, "repro", "-q")
    _commit(repo)


def build_tpl_beside(repo: Path) -> None:
    write(repo / "params.yaml", "seed: 7\n")
    write(repo / "dvc.yaml", ROOT_PIPELINE)
    dvc(repo, "repro", "-q")
    sub = repo / "sub"
    _init_subdir(sub)
    write_pipeline(sub)
    _add_raw(sub)
    dvc(sub, "repro", "-q")
    _commit(repo)


def build_tpl_nested(repo: Path) -> None:
    write(repo / "shared.yaml", "common:\n  suffix: shared\nother:\n  y: 1\n")
    write_pipeline(repo / "pipelines/train", above=True)
    _add_raw(repo, "pipelines/train/")
    dvc(repo, "repro", "-q", "pipelines/train/dvc.yaml")
    _commit(repo)


# name -> (builder, DVC projects relative to the git root, the pipeline's folder)
TEMPLATED_BASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...], str]] = {
    "tpl-root": (build_tpl_root, ("",), ""),
    "tpl-subdir": (build_tpl_subdir, ("proj",), "proj"),
    "tpl-beside": (build_tpl_beside, ("", "sub"), "sub"),
    "tpl-nested": (build_tpl_nested, ("",), "pipelines/train"),
}


# ---- mutations --------------------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    """Replace `old` once; nothing when an earlier mutation of the same case changed it."""
    text = path.read_text()
    path.write_text(text.replace(old, new, 1))


def _append(path: Path, data: str = "z\n") -> None:
    with path.open("a") as fh:
        fh.write(data)


def _append_each(*paths: Path) -> None:
    for path in paths:
        _append(path)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


MERGED = """  merged:
    cmd: echo ${prep.extra} ${prep.split} > merged.txt
    outs:
      - merged.txt
"""


def appender(rel: str, text: str) -> Mutation:
    return lambda r, g: _append(r / rel, text)


LIST_IN_DICT = """  listy:
    vars:
      - run:
          tags: [a, b]
          fast: false
    cmd: echo ${run} > listy.txt
    outs:
      - listy.txt
"""

PARSING = "[parsing]\n    bool = boolean_optional\n    list = append\n"


def templated_mutations(folder: str, project: str) -> dict[str, Mutation]:
    """Mutations of the pipeline in `folder` of the DVC project `project` (both relative to the
    git root)."""

    def at(repo: Path, rel: str) -> Path:
        return repo / folder / rel

    def in_project(rel: str) -> str:
        """A path of the pipeline's folder relative to its DVC project's root."""
        return posixpath.normpath(
            posixpath.join(posixpath.relpath(folder or ".", project or "."), rel)
        )

    def parsing(r: Path) -> None:
        _append(r / project / ".dvc/config", PARSING)
        _append(at(r, "dvc.yaml"), LIST_IN_DICT)

    def merge(r: Path) -> None:
        _edit(at(r, "dvc.yaml"), "  - tag: v1\n", "  - prep:\n      extra: 9\n  - tag: v1\n")
        _append(at(r, "dvc.yaml"), MERGED)

    def add_lang(r: Path) -> None:
        write(at(r, "data/de.txt"), "de\n")
        _edit(at(r, "params.yaml"), "langs: [en, fr]", "langs: [en, fr, de]")

    return {
        "none": lambda r, g: None,
        # a value of params.yaml used through ${} (DVC: the command changed; params too)
        "tracked-var": lambda r, g: _edit(at(r, "params.yaml"), "split: 0.2", "split: 0.3"),
        # the same value spelled otherwise: the interpolated command is the same
        "tracked-var-same": lambda r, g: _edit(at(r, "params.yaml"), "split: 0.2", "split: 2e-1"),
        # YAML 1.2: `yes` is a string, so the command now says `yes` where it said `true`
        "flag-yes": lambda r, g: _edit(at(r, "params.yaml"), "flag: true", "flag: yes"),
        # an int become a float: `3` -> `3.0` in the command
        "precision-float": lambda r, g: _edit(
            at(r, "params.yaml"), "precision: 3", "precision: 3.0"
        ),
        "scale-same": lambda r, g: _edit(at(r, "params.yaml"), "scale: 1.3", "scale: 1.30"),
        # a param a foreach-over-dict item tracks through `regions.${key}.size`
        "dict-item-param": lambda r, g: _edit(
            at(r, "params.yaml"), "north:\n    size: 2", "north:\n    size: 5"
        ),
        "foreach-out": lambda r, g: _append(at(r, "reports/out_fr.txt")),
        "foreach-dep": lambda r, g: _append(at(r, "data/fr.txt")),
        "dict-item-dep": lambda r, g: _append(at(r, "data/south.csv")),
        "list-item-out": lambda r, g: _append(at(r, "split_test.txt")),
        "matrix-out-removed": lambda r, g: _unlink(at(r, "fit/big-2.txt")),
        "remove-output": lambda r, g: _unlink(at(r, "prepared.csv")),
        "edit-output": lambda r, g: _append(at(r, "prepared.csv")),
        "metric-edit": lambda r, g: _append(at(r, "work/summary.txt")),
        "metric-removed": lambda r, g: _unlink(at(r, "work/summary.txt")),
        # a vars file (not params.yaml): its selected key changes a command
        "vars-file-edit": lambda r, g: _edit(at(r, "conf/models.yaml"), "layers: 2", "layers: 3"),
        # a key of a vars file that `file:key` does not select: nothing changes
        "vars-file-unselected": lambda r, g: _edit(at(r, "conf/models.yaml"), "x: 1", "x: 2"),
        "inline-var": lambda r, g: _edit(at(r, "dvc.yaml"), "tag: v1", "tag: v2"),
        # the stage-level vars file (relative to the stage's wdir), also its params file
        "stage-vars-file": lambda r, g: _edit(at(r, "work/params.yaml"), "scale: 2", "scale: 3"),
        # the same output spelled `./reports/...` through a var
        "respell-var": lambda r, g: _edit(
            at(r, "conf/paths.json"), '"reports": "reports"', '"reports": "./reports"'
        ),
        "foreach-item-added": lambda r, g: add_lang(r),
        "foreach-item-removed": lambda r, g: _edit(
            at(r, "params.yaml"), "langs: [en, fr]", "langs: [en]"
        ),
        "matrix-value-changed": lambda r, g: _edit(
            at(r, "dvc.yaml"), "seed: [1, 2]", "seed: [1, 3]"
        ),
        # DVC refuses these (exit 255): check-dvc must say malformed-dvc
        "vars-conflict": lambda r, g: _edit(
            at(r, "conf/paths.json"), '{"paths"', '{"tag": "x", "paths"'
        ),
        "undefined-var": lambda r, g: _edit(at(r, "dvc.yaml"), "${tag}", "${tagg}"),
        "vars-file-missing": lambda r, g: _unlink(at(r, "conf/models.yaml")),
        "vars-file-broken": lambda r, g: write(at(r, "conf/paths.json"), '{"paths": '),
        "foreach-not-iterable": lambda r, g: _edit(
            at(r, "params.yaml"), "langs: [en, fr]", "langs: 3"
        ),
        # a list inside a dict in cmd: `--tags a b` (DVC's default parsing.list, nargs)
        "list-in-dict": lambda r, g: _append(at(r, "dvc.yaml"), LIST_IN_DICT),
        # the project's [parsing] config: `--no-fast`, `--tags a --tags b`
        "parsing-config": lambda r, g: parsing(r),
        # scalars whose text DVC renders its own way: 1e-05, None, duplicates, a number as a path
        "float-exponent": lambda r, g: _edit(at(r, "params.yaml"), "split: 0.2", "split: 1e-5"),
        "null-var": lambda r, g: _edit(at(r, "params.yaml"), "split: 0.2", "split: null"),
        "big-int": lambda r, g: _edit(
            at(r, "params.yaml"), "precision: 3", "precision: 123456789012345678901234567890"
        ),
        "foreach-duplicates": lambda r, g: _edit(
            at(r, "params.yaml"), "langs: [en, fr]", "langs: [en, fr, en]"
        ),
        "number-as-path": lambda r, g: _edit(
            at(r, "dvc.yaml"),
            "      - layers.txt\n  report:",
            "      - ${stage.precision}\n  report:",
        ),
        # .dvcignore naming a vars file and a params file
        "dvcignore-vars-file": lambda r, g: _append(
            r / project / ".dvcignore", f"/{in_project('conf/paths.json')}\n"
        ),
        "dvcignore-params-file": lambda r, g: _append(
            r / project / ".dvcignore", f"/{in_project('params.yaml')}\n"
        ),
        # params.yaml named again in vars: DVC loads it once
        "vars-params-again": lambda r, g: _edit(
            at(r, "dvc.yaml"), "vars:\n", "vars:\n  - params.yaml\n"
        ),
        # part of params.yaml named again: DVC refuses it (already loaded whole)
        "vars-params-partial": lambda r, g: _edit(
            at(r, "dvc.yaml"), "vars:\n", "vars:\n  - params.yaml:prep\n"
        ),
        # an inline dict merged into params.yaml's `prep`, used by a new stage
        "vars-merge": lambda r, g: merge(r),
        # an inline dict redefining a value of params.yaml: DVC refuses it
        "vars-redefine": lambda r, g: _edit(
            at(r, "dvc.yaml"), "  - tag: v1\n", "  - prep:\n      split: 9\n  - tag: v1\n"
        ),
        **{
            f"feature-{name}": appender(f"{folder}/dvc.yaml" if folder else "dvc.yaml", text)
            for name, text in FEATURES.items()
        },
    }


# More of DVC's templating, each a stage appended to the pipeline's dvc.yaml (not in dvc.lock, so
# DVC reports it changed); the stages themselves are compared with DVC's after each case.
FEATURES = {
    # a dict in cmd: `--split 0.2 --out prepared --flag` (DVC's parsing.bool)
    "cmd-dict": """  unpack:
    cmd: echo ${prep} > unpack.txt
    outs:
      - unpack.txt
""",
    # a list on its own: DVC refuses it ("Cannot interpolate data of type 'list'")
    "cmd-list": """  unlist:
    cmd: echo ${langs} > unlist.txt
    outs:
      - unlist.txt
""",
    # foreach over a list of dicts: names `sweep@0`, `sweep@1`
    "foreach-list-of-dicts": """  sweep:
    foreach:
      - lr: 0.1
        name: a
      - lr: 0.2
        name: b
    do:
      cmd: echo ${item.lr} > sweep_${item.name}.txt
      outs:
        - sweep_${item.name}.txt
""",
    "foreach-numbers": """  shard:
    foreach: [1, 2]
    do:
      cmd: echo ${item} > shard_${item}.txt
      outs:
        - shard_${item}.txt
""",
    # matrix over dicts (names `grid@cfg0-en`) and over an interpolated list
    "matrix-dicts": """  grid:
    matrix:
      cfg:
        - depth: 1
        - depth: 2
      lang: ${langs}
    cmd: echo ${item.cfg.depth} ${item.lang} > grid_${item.cfg.depth}_${item.lang}.txt
    outs:
      - grid_${item.cfg.depth}_${item.lang}.txt
""",
    "foreach-dict-from-params": """  area:
    foreach: ${regions}
    do:
      cmd: echo ${key} ${item.size} > area_${key}.txt
      params:
        - regions.${key}.size
      outs:
        - area_${key}.txt
""",
    "index-syntax": """  idx:
    cmd: echo ${langs[1]} ${regions.north.size} > idx.txt
    outs:
      - idx.txt
""",
    "escaped": """  esc:
    cmd: echo \\${HOME} ${tag} > esc.txt
    outs:
      - esc.txt
""",
    "folded-cmd": """  fold:
    cmd: >-
      echo ${tag}
      ${prep.split} > fold.txt
    outs:
      - fold.txt
""",
    "cmd-as-list": """  steps:
    cmd:
      - echo ${tag} > steps.txt
      - echo ${prep.out} >> steps.txt
    outs:
      - steps.txt
""",
    "do-stage-vars": """  local:
    foreach: [p, q]
    do:
      vars:
        - suffix: sfx
      cmd: echo ${item} ${suffix} > local_${item}.txt
      outs:
        - local_${item}.txt:
            cache: false
""",
    "cmd-nested-dict": """  nested:
    cmd: echo ${regions} > nested.txt
    outs:
      - nested.txt
""",
    "cmd-dict-false": """  opts:
    vars:
      - opts:
          verbose: false
          dry: true
          n: 2
          name: x y
    cmd: echo ${opts} > opts.txt
    outs:
      - opts.txt
""",
    # a wdir per foreach item: its params.yaml is the item folder's
    "wdir-per-item": """  perdir:
    foreach: [work]
    do:
      wdir: ${item}
      cmd: echo ${item} > perdir.txt
      params:
        - scale
      outs:
        - perdir.txt
""",
    # a params file named through ${...} (a key of the params mapping)
    "params-file-var": """  pfile:
    cmd: echo x > pfile.txt
    params:
      - ${paths.wd}/params.yaml:
          - scale
    outs:
      - pfile.txt
""",
    "whole-number-float": """  num:
    cmd: echo ${stage.scale} ${prep.split} 1e3 > num.txt
    params:
      - stage.scale
    outs:
      - num.txt
""",
}


TEMPLATED_MUTATIONS: dict[str, dict[str, Mutation]] = {
    name: templated_mutations(folder, projects[-1])
    for name, (_, projects, folder) in TEMPLATED_BASES.items()
}
# the root project beside `sub/`: its own templated stages change too
TEMPLATED_MUTATIONS["tpl-beside"].update(
    {
        "root-param": lambda r, g: _edit(r / "params.yaml", "seed: 7", "seed: 8"),
        "root-out": lambda r, g: _append(r / "top_y.txt"),
        "root-and-sub": lambda r, g: _append_each(r / "top_x.txt", r / "sub/data/en.txt"),
    }
)
# a vars file outside the `--subdir` project (inside the git repository)
OUTSIDE = """  outside:
    cmd: echo ${far.value} > outside.txt
    outs:
      - outside.txt
"""


def _vars_outside_project(r: Path, g: random.Random) -> None:
    write(r / "far.yaml", "far:\n  value: 1\n")
    _edit(r / "proj/dvc.yaml", "vars:\n", "vars:\n  - ../far.yaml:far\n")
    _append(r / "proj/dvc.yaml", OUTSIDE)


TEMPLATED_MUTATIONS["tpl-subdir"]["vars-outside-project"] = _vars_outside_project
# a root stage depending on a file of the project beside it
TEMPLATED_MUTATIONS["tpl-beside"]["root-dep-in-sub"] = lambda r, g: _edit(
    r / "dvc.yaml", "      params:\n", "      deps:\n        - sub/data/en.txt\n      params:\n"
)
# the vars file above the nested pipeline's folder
TEMPLATED_MUTATIONS["tpl-nested"].update(
    {
        "vars-above-edit": lambda r, g: _edit(r / "shared.yaml", "suffix: shared", "suffix: other"),
        "vars-above-unselected": lambda r, g: _edit(r / "shared.yaml", "y: 1", "y: 2"),
    }
)
