"""Core: dvc.yaml templating, resolved natively and compared with DVC's own resolver.

Every case writes a dvc.yaml and its vars/params files into a DVC project and resolves it twice:
with DVC (`DataResolver(repo, wdir, d).resolve()` and `.tracked_vars`, in-process) and with
`repro_hooks.dvc.templating.resolve_stages`. Names, bodies and tracked vars must be equal; when
DVC refuses the file, ours must refuse it too, with DVC's reason.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_hooks.dvc.files import DvcFileError, load_yaml
from repro_hooks.dvc.templating import ResolvedStage, resolve_stages, uses_templating
from repro_hooks.dvc.worktree import _load_params
from tests.helpers import git

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="session")
def dvc_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`.dvc/` of a project made by DVC (`dvc init --no-scm`), once per session."""
    from dvc.repo import Repo

    path = tmp_path_factory.mktemp("templating") / "project"
    Repo.init(str(path), no_scm=True).close()
    return path


@pytest.fixture
def project(dvc_project_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(dvc_project_template, root)
    monkeypatch.chdir(root)
    return root


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _set_parsing(root: Path, parsing: dict[str, str] | None) -> None:
    if parsing:
        lines = "".join(f"    {k} = {v}\n" for k, v in parsing.items())
        with open(root / ".dvc" / "config", "a") as config:
            config.write(f"[parsing]\n{lines}")


def _wdir_of(dvc_dir: str, body: dict[str, Any]) -> str:
    from dvc.parsing.interpolate import to_str

    wdir = body.get("wdir")
    return posixpath.normpath(posixpath.join(dvc_dir, to_str(wdir) if wdir else ""))


def _dvc_resolve(root: Path, file: str) -> tuple[dict[str, Any], dict[str, Any]] | Exception:
    """DVC's verdict, from the current directory `root`: (stages, tracked vars keyed relative to
    each stage's wdir), or the exception DVC raised."""
    from dvc.parsing import DataResolver
    from dvc.repo import Repo
    from dvc.utils.serialize import parse_yaml

    repo = Repo(str(root))
    try:
        data = parse_yaml((root / file).read_text(), file)
        resolver = DataResolver(repo, str((root / file).parent), data or {})
        stages = resolver.resolve()["stages"] or {}  # None when there is none
    except Exception as exc:  # DVC's own verdict, whatever its kind
        return exc
    finally:
        repo.close()
    tracked = {}
    for name, body in stages.items():
        wdir = _wdir_of(posixpath.dirname(file), body)
        tracked[name] = {
            posixpath.relpath(source, wdir): list(keys)
            for source, keys in resolver.tracked_vars.get(name, {}).items()
        }
    return stages, tracked


def _loader(root: Path) -> Any:
    calls: list[str] = []

    def load(path: str) -> Any:
        calls.append(path)
        try:
            return _load_params(root / path)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise DvcFileError(path, "is a directory") from None

    load.calls = calls  # type: ignore[attr-defined]
    return load


def _ours(
    root: Path, file: str, base: str = "", parsing: dict[str, str] | None = None
) -> dict[str, ResolvedStage] | DvcFileError:
    """Ours; `base` is where the DVC project sits in the repository (a `--subdir` project)."""
    repo_root = root.parent if base else root
    name = posixpath.join(base, file)
    data = load_yaml((root / file).read_bytes(), name)
    try:
        return resolve_stages(data, name, _loader(repo_root), parsing)
    except DvcFileError as exc:
        return exc


def _dvc_reason(exc: Exception, file: str) -> str:
    """DVC's message in our one-line shape: no "in '<file>'" (DvcFileError names the file)."""
    msg = _ANSI.sub("", str(exc)).replace(f" in '{file}'", "", 1)
    lines = msg.split("\n")
    if len(lines) == 4 and lines[3].startswith("ParseException"):
        return f"{lines[0]} {lines[1]}: {lines[3]}"  # pyparsing: expression, pointer, why
    return msg.replace(":\n", ": ")


def _typed(value: Any) -> Any:
    """`value` with each scalar's type beside it: 1, 1.0 and True are not the same resolution."""
    if isinstance(value, dict):
        return {_typed(k): _typed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, *(_typed(v) for v in value)]
    return (type(value).__name__, value)


def _compare(
    root: Path, file: str = "dvc.yaml", parsing: dict[str, str] | None = None, base: str = ""
) -> dict[str, ResolvedStage] | DvcFileError:
    _set_parsing(root, parsing)
    theirs = _dvc_resolve(root, file)
    ours = _ours(root, file, base, parsing)
    if isinstance(ours, DvcFileError):
        assert ours.file == posixpath.join(base, file)
        assert "\n" not in ours.reason  # one line
    if isinstance(theirs, Exception):
        assert isinstance(ours, DvcFileError), f"DVC refused ({theirs!r}), we resolved {ours}"
        from dvc.parsing import EntryNotFound, ResolveError

        if isinstance(theirs, (ResolveError, EntryNotFound)):
            assert ours.reason == _dvc_reason(theirs, posixpath.normpath(file))
        elif str(theirs):  # DVC crashed (a TypeError, ...): its words, at least
            assert str(theirs) in ours.reason
        return ours
    assert not isinstance(ours, DvcFileError), f"we refused: {ours}; DVC: {theirs}"
    stages, tracked = theirs
    assert list(ours) == list(stages)
    assert {n: s.name for n, s in ours.items()} == {n: n for n in stages}
    assert _typed({n: s.body for n, s in ours.items()}) == _typed(stages)
    assert {n: s.tracked for n, s in ours.items()} == tracked
    for body in stages.values():
        assert not {"foreach", "do", "matrix", "vars"} & set(body)
    return ours


PARAMS = """
    x: 1
    f: 0.5
    s: hello world
    yes_: true
    no_: false
    nothing: null
    lst: [a, b, c]
    nums: [1, 2]
    models: [{name: m1, lr: 0.1}, {name: m2, lr: 0.2}]
    nested: {a: {b: [10, {c: deep}]}}
    d: {a: 1, b: true, c: [1, two], e: off, f: false, g: {h: 2}}
    sweep: {small: {size: 1}, large: {size: 100}}
    flags: [true, false]
"""


def _case(
    files: dict[str, str], file: str = "dvc.yaml", parsing: dict[str, str] | None = None, *, id: str
) -> Any:
    return pytest.param(files, file, parsing, id=id)


CASES = [
    # ---- interpolation
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${x} ${s} ${f}\n"}, id="scalars"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${yes_} ${no_} ${nothing}\n"}, id="bool-null"),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    cmd: ${x}\n    desc: ${yes_}\n    meta: ${nothing}\n"},
        id="whole-string-keeps-type",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    cmd: a ${lst[1]} ${nested.a.b[1].c} ${models[0].lr}\n"},
        id="indexed-and-dotted",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    cmd: a ${ lst [ 1 ] } ${nested .a.b[0]} ${lst[-1]}\n"},
        id="whitespace-and-negative-index",
    ),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: train ${d}\n"}, id="dict-in-cmd"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: ${d}\n"}, id="whole-dict-cmd"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: 'echo \\${x} ${x}'\n"}, id="escaped"),
    _case(
        {
            "dvc.yaml": "stages:\n  s:\n    cmd: echo ${x}\n    outs:\n      - ${s}/${x}:\n"
            "          cache: ${no_}\n    deps:\n      - data/${lst[0]}.csv\n"
        },
        id="paths-and-flags",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    cmd: echo\n    outs:\n      - ${s}: {cache: false}\n"},
        id="interpolated-key",
    ),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: ['echo ${x}', 'echo ${lst[0]}']\n"}, id="cmd-list"),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    cmd: echo ${x}\n    params: [x, {p.yaml: [a]}]\n"},
        id="params-untouched",
    ),
    _case(
        {"dvc.yaml": "stages:\n  plain:\n    cmd: echo 1\n    deps: [a]\n  t:\n    cmd: ${x}\n"},
        id="plain-beside-templated",
    ),
    # ---- vars
    _case(
        {"dvc.yaml": "vars: [{y: 2, z: {w: 3}}]\nstages:\n  s:\n    cmd: ${y} ${z.w} ${x}\n"},
        id="inline-vars",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\nb: {c: 2}\nq: 9\n",
            "dvc.yaml": "vars: [cfg.yaml]\nstages:\n  s:\n    cmd: ${a} ${b.c} ${x}\n",
        },
        id="vars-file",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\nb: {c: 2}\nq: 9\n",
            "dvc.yaml": "vars: ['cfg.yaml:a,b']\nstages:\n  s:\n    cmd: ${a} ${b.c}\n",
        },
        id="vars-file-keys",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\nq: 9\n",
            "dvc.yaml": "vars: ['cfg.yaml:a']\nstages:\n  s:\n    cmd: ${q}\n",
        },
        id="err-vars-file-unselected-key",
    ),
    _case(
        {
            "cfg.json": '{"a": {"b": [1, 2]}}',
            "cfg.toml": "t = 'v'\n[sec]\nk = 3\n",
            "dvc.yaml": "vars: [cfg.json, cfg.toml]\nstages:\n  s:\n    cmd: ${a.b[1]} ${t} ${sec.k}\n",
        },
        id="json-and-toml",
    ),
    _case(
        {"dvc.yaml": "vars: [params.yaml]\nstages:\n  s:\n    cmd: ${x}\n"},
        id="params-twice-allowed",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\nb: 2\n",
            "dvc.yaml": "vars: ['cfg.yaml:a', 'cfg.yaml:b']\nstages:\n  s:\n    cmd: ${a}${b}\n",
        },
        id="partial-twice-disjoint",
    ),
    _case(
        {"dvc.yaml": "vars: [{nested: {a: {z: 1}}}]\nstages:\n  s:\n    cmd: ${nested.a.z}\n"},
        id="vars-merge-nested",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\n",
            "dvc.yaml": "stages:\n  s:\n    vars: [cfg.yaml, {b: 2}]\n    cmd: ${a} ${b} ${x}\n"
            "  t:\n    cmd: ${x}\n",
        },
        id="stage-vars",
    ),
    _case(
        {
            "w/cfg.yaml": "a: 1\n",
            "dvc.yaml": "stages:\n  s:\n    wdir: w\n    vars: [cfg.yaml]\n    cmd: ${a} ${x}\n    deps: [x]\n",
        },
        id="stage-vars-from-wdir",
    ),
    _case(
        {
            "dvc.yaml": "vars: [{w: sub}]\nstages:\n  s:\n    wdir: ${w}\n    cmd: ${x}\n",
            "sub/cfg.yaml": "a: 1\n",
        },
        id="interpolated-wdir",
    ),
    _case(
        {
            "sub/cfg.yaml": "a: 5\n",
            "dvc.yaml": "vars: [{w: sub}]\nstages:\n  s:\n"
            "    wdir: ${w}\n    vars: [cfg.yaml]\n    cmd: ${a}\n",
        },
        id="stage-vars-from-interpolated-wdir",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  s:\n    vars: [{nested: {a: {y: 1}}}]\n    cmd: ${nested.a.y}\n"
            "  t:\n    cmd: ${nested.a.b[0]}\n"
        },
        id="stage-vars-do-not-leak",
    ),
    # ---- foreach
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item}\n"},
        id="foreach-inline-list",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: [1, true, null, 2.5]\n    do:\n"
            "      cmd: echo ${item}\n"
        },
        id="foreach-scalar-names",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${flags}\n    do:\n      cmd: echo ${item}\n"},
        id="foreach-interpolated-bools",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: ${lst}\n    do:\n      cmd: echo ${item}\n"
            "      outs: ['out/${item}']\n"
        },
        id="foreach-interpolated-list",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: ${models}\n    do:\n"
            "      cmd: train ${item.name} --lr ${item.lr}\n"
        },
        id="foreach-list-of-dicts",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: ${sweep}\n    do:\n"
            "      cmd: run ${key} ${item.size}\n"
        },
        id="foreach-dict",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach:\n      us: {n: 1}\n      eu: {n: 2}\n"
            "    do:\n      cmd: run ${key} ${item.n}\n"
        },
        id="foreach-inline-dict",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: [{lr: '${f}'}, {lr: 3}]\n    do:\n"
            "      cmd: run ${item.lr}\n"
        },
        id="foreach-inline-with-interpolation",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: ${sweep}\n    do:\n"
            "      vars: [{extra: '1'}]\n      cmd: run ${key} ${item.size} ${extra}\n"
        },
        id="foreach-with-stage-vars",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: [a, b]\n    do:\n      wdir: ${item}\n"
            "      cmd: echo ${x}\n"
        },
        id="foreach-wdir",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: []\n    do:\n      cmd: echo ${nope}\n"},
        id="foreach-empty",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: [a, b]\n    do:\n      cmd: echo\n"},
        id="foreach-plain-template",
    ),
    _case(
        {
            "dvc.yaml": "vars: [{item: 1}]\nstages:\n  b:\n    foreach: [a]\n    do:\n"
            "      cmd: echo ${item}\n  c:\n    cmd: echo ${item}\n"
        },
        id="foreach-shadows-item",
    ),
    _case(
        {
            "a/cfg.yaml": "c: 1\n",
            "b/cfg.yaml": "c: 2\n",
            "dvc.yaml": "stages:\n  f:\n"
            "    foreach: [a, b]\n    do:\n      wdir: ${item}\n      vars: [cfg.yaml]\n"
            "      cmd: echo ${c} ${x}\n",
        },
        id="foreach-vars-per-wdir",
    ),
    _case(
        {
            "cfg.yaml": "c: 1\n",
            "dvc.yaml": "vars: [./cfg.yaml, cfg.yaml, sub/../cfg.yaml]\nstages:\n  s:\n    cmd: ${c}\n",
        },
        id="vars-same-file-three-spellings",
    ),
    _case(
        {
            "cfg.yaml": "codes: {1: one, '2': two}\n",
            "dvc.yaml": "vars: [cfg.yaml]\nstages:\n  s:\n    cmd: ${codes.2}\n",
        },
        id="string-key-that-looks-like-a-number",
    ),
    _case(
        {
            "cfg.yaml": "codes: {1: one}\n",
            "dvc.yaml": "vars: [cfg.yaml]\nstages:\n  s:\n    cmd: ${codes.1}\n",
        },
        id="err-non-string-keys-are-not-in-the-context",
    ),
    # ---- matrix
    _case(
        {
            "dvc.yaml": "stages:\n  m:\n    matrix:\n      os: [linux, mac]\n      n: [1, 2]\n"
            "    cmd: build ${item.os} ${item.n} ${key}\n"
        },
        id="matrix",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  m:\n    matrix:\n      v: ${lst}\n      b: ${flags}\n"
            "      c: [true, 0.5]\n    cmd: build ${item.v} ${item.b} ${item.c}\n"
        },
        id="matrix-interpolated",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  m:\n    matrix:\n      cfg: [[a, 1], {k: v}]\n      s: [x]\n"
            "    cmd: build ${item.s} ${key}\n    outs: ['o/${key}']\n"
        },
        id="matrix-composite-values",
    ),
    _case(
        {"dvc.yaml": "stages:\n  m:\n    matrix:\n      a: []\n      b: [1]\n    cmd: x\n"},
        id="matrix-empty-axis",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  m:\n    matrix:\n      a: [1, 2]\n    vars: [{z: 1}]\n"
            "    wdir: w${item.a}\n    cmd: x ${z}\n"
        },
        id="matrix-vars-wdir",
    ),
    # ---- [parsing] config
    _case(
        {"dvc.yaml": "stages:\n  s:\n    cmd: train ${d}\n"},
        "dvc.yaml",
        {"bool": "boolean_optional", "list": "append"},
        id="parsing-config",
    ),
    # ---- subdirectories
    _case(
        {
            "sub/params.yaml": "x: 7\nlst: [p, q]\n",
            "sub/cfg.yaml": "c: 1\n",
            "sub/dvc.yaml": "vars: [cfg.yaml, ../params.yaml:s]\nstages:\n  s:\n"
            "    cmd: echo ${x} ${c} ${s}\n  f:\n    foreach: ${lst}\n    do:\n"
            "      wdir: ..\n      cmd: ${item}\n",
        },
        "sub/dvc.yaml",
        id="subdir-dvc-yaml",
    ),
    _case(
        {"sub/dvc.yaml": "stages:\n  s:\n    cmd: echo ${x}\n"},
        "sub/dvc.yaml",
        id="err-subdir-does-not-see-root-params",
    ),
    # ---- DVC's errors
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${nope}\n"}, id="err-missing-key"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${nested.a.b[5]}\n"}, id="err-missing-index"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${x.y}\n"}, id="err-attribute-of-scalar"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${lst}\n"}, id="err-list-in-cmd"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: x\n    deps: ['${d}']\n"}, id="err-dict-in-deps"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: x ${nested}\n"}, id="err-nested-iterable-in-dict"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${x..y}\n"}, id="err-syntax"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: echo ${}\n"}, id="err-empty-expression"),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${x}\n    do:\n      cmd: echo\n"},
        id="err-foreach-scalar",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${s}\n    do:\n      cmd: echo\n"},
        id="err-foreach-string",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${nope}\n    do:\n      cmd: echo\n"},
        id="err-foreach-missing",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  a:\n    cmd: ${nope}\n  b:\n    foreach: ${x}\n    do:\n"
            "      cmd: echo\n"
        },
        id="err-foreach-before-stages",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: [a]\n    do:\n      cmd: echo ${item.x}\n"},
        id="err-item-missing",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: [a]\n    do:\n      cmd: echo ${a..b}\n"},
        id="err-syntax-in-template",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: [a]\n    do:\n      vars: [{item: 1}]\n"
            "      cmd: echo ${item}\n"
        },
        id="err-reserved-item",
    ),
    _case(
        {
            "cfg.yaml": "key: 1\nitem: 2\n",
            "dvc.yaml": "stages:\n  b:\n    foreach: {a: 1}\n"
            "    do:\n      vars: [cfg.yaml]\n      cmd: echo ${item}\n",
        },
        id="err-reserved-keys-from-file",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  m:\n    matrix:\n      a: [1]\n    vars: [{key: 1}]\n"
            "    cmd: echo\n"
        },
        id="err-reserved-key-matrix",
    ),
    _case({"dvc.yaml": "vars: [{x: 2}]\nstages:\n  s:\n    cmd: ${x}\n"}, id="err-redefined"),
    _case(
        {"dvc.yaml": "vars: [{nested: {a: {b: 1}}}]\nstages:\n  s:\n    cmd: ${x}\n"},
        id="err-redefined-nested",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: [{x: 2}]\n    cmd: ${x}\n"},
        id="err-redefined-in-stage",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: [{nested: 2}]\n    cmd: ${x}\n"},
        id="err-redefined-copied-container",
    ),
    _case(
        {"dvc.yaml": "vars: [nope.yaml]\nstages:\n  s:\n    cmd: x\n"}, id="err-vars-file-missing"
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: [nope.yaml]\n    cmd: x\n"},
        id="err-stage-vars-file-missing",
    ),
    _case(
        {"cfg.yaml": "a: 1\n", "dvc.yaml": "vars: ['cfg.yaml:b']\nstages:\n  s:\n    cmd: x\n"},
        id="err-vars-key-missing",
    ),
    _case(
        {"cfg.yaml": "[1, 2]\n", "dvc.yaml": "vars: [cfg.yaml]\nstages:\n  s:\n    cmd: x\n"},
        id="err-vars-not-a-mapping",
    ),
    _case(
        {"params.yaml": "[1, 2]\n", "dvc.yaml": "stages:\n  s:\n    cmd: x\n"},
        id="err-default-params-not-a-mapping",
    ),
    _case(
        {"dvc.yaml": "vars: ['params.yaml:x']\nstages:\n  s:\n    cmd: x\n"},
        id="err-partial-after-full",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\nb: 2\n",
            "dvc.yaml": "vars: ['cfg.yaml:a', cfg.yaml]\nstages:\n  s:\n    cmd: x\n",
        },
        id="err-full-after-partial",
    ),
    _case(
        {
            "cfg.yaml": "a: 1\nb: 2\n",
            "dvc.yaml": "vars: ['cfg.yaml:a', 'cfg.yaml:a,b']\nstages:\n  s:\n    cmd: x\n",
        },
        id="err-partial-overlap",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: ['params.yaml:x']\n    cmd: x\n"},
        id="err-stage-partial-after-full",
    ),
    _case(
        {"dvc.yaml": "vars: ['${x}.yaml']\nstages:\n  s:\n    cmd: x\n"},
        id="err-interpolated-vars",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: ['${x}.yaml']\n    cmd: x\n"},
        id="err-interpolated-stage-vars",
    ),
    _case({"dvc.yaml": "stages:\n  s:\n    wdir: ${nope}\n    cmd: x\n"}, id="err-wdir-missing"),
    _case({"dvc.yaml": "stages:\n  a@b:\n    cmd: x\n"}, id="err-at-in-stage-name"),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: [x@y]\n    do:\n      cmd: x\n"},
        id="err-at-in-foreach-key",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: [{nested: {a: {b: 1}}}]\n    cmd: ${x}\n"},
        id="err-redefined-nested-in-stage",
    ),
    _case(
        {"dvc.yaml": "stages:\n  s:\n    vars: [{d: {a: 2}}]\n    cmd: ${x}\n"},
        id="err-redefined-leaf-in-stage",
    ),
    _case(
        {
            "cfg.yaml": "d: {z: 1}\nnested: {q: 2}\n",
            "dvc.yaml": "stages:\n  s:\n    vars: [cfg.yaml]\n    cmd: ${d.z} ${nested.q} ${d.a}\n",
        },
        id="stage-vars-file-merged-into-copies",
    ),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: ${lst.0} ${models.1.name}\n"}, id="dotted-index"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: ${models[foobar]}\n"}, id="err-index-by-name"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: ${models.foo]}\n"}, id="err-syntax-bracket"),
    _case({"dvc.yaml": "stages:\n  s:\n    cmd: x\n    outs: ${d}\n"}, id="err-outs-dict"),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${syntax.[error}\n    do:\n      cmd: x\n"},
        id="err-foreach-syntax",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${models[0].name}\n    do:\n      cmd: x\n"},
        id="err-foreach-over-string-value",
    ),
    _case(
        {
            "dvc.yaml": "stages:\n  b:\n    foreach: ${lst}\n    do:\n      wdir: ${ite}\n"
            "      cmd: echo ${item}\n"
        },
        id="err-foreach-wdir-missing",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    foreach: ${nope} ${a..b}\n    do:\n      cmd: x\n"},
        id="err-lookup-before-a-later-syntax-error",
    ),
    _case(
        {"dvc.yaml": "stages:\n  b:\n    matrix:\n      a: ${x}\n    cmd: x\n"},
        id="err-matrix-over-scalar",
    ),
    _case(
        {"params.yaml": "when: 2024-01-01\n", "dvc.yaml": "stages:\n  s:\n    cmd: x\n"},
        id="err-unsupported-value",
    ),
]


@pytest.mark.parametrize(("files", "file", "parsing"), CASES)
def test_resolves_as_dvc_does(
    project: Path,
    files: dict[str, str],
    file: str,
    parsing: dict[str, str] | None,
    request: pytest.FixtureRequest,
) -> None:
    _write(project, {"params.yaml": PARAMS, **files})
    result = _compare(project, file, parsing)
    refused = request.node.callspec.id.startswith("err-")
    assert isinstance(result, DvcFileError) is refused, result


def test_dvc_init_subdir_project(
    dvc_project_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `dvc init --subdir` project inside a larger repository: DVC resolves from its root."""
    from dvc.repo import Repo

    root = tmp_path / "mono" / "proj"
    root.mkdir(parents=True)
    git(root.parent, "init", "-q")
    Repo.init(str(root), subdir=True).close()
    monkeypatch.chdir(root)
    _write(
        root,
        {
            "params.yaml": "x: 1\nruns: {a: {n: 1}, b: {n: 2}}\n",
            "cfg/extra.yaml": "e: 5\n",
            "dvc.yaml": "vars: [cfg/extra.yaml]\nstages:\n  r:\n    foreach: ${runs}\n    do:\n"
            "      wdir: cfg\n      cmd: run ${key} ${item.n} ${e} ${x}\n",
        },
    )
    ours = _compare(root, base="proj")
    assert isinstance(ours, dict)
    assert ours["r@a"].tracked == {"extra.yaml": ["e"], "../params.yaml": ["runs.a.n", "x"]}


# ---- shapes from public projects -----------------------------------------------------------

PROJECTS = [
    pytest.param(
        {  # softboiler/boilercv: one params section spelled into every command
            "params.yaml": "stage:\n  display_rows: 12\n  marker_scale: 20.0\n  precision: 3\n"
            "  sample: 2024-07-18T17-44-35\n  scale: 1.3\n  only_sample: --no-only-sample\n",
            "dvc.yaml": 'stages:\n  binarize:\n    cmd: pwsh -Command "./Invoke-Uv boilercv-pipeline'
            " stage binarize --scale ${stage.scale} --marker-scale ${stage.marker_scale}"
            ' --precision ${stage.precision} --display-rows ${stage.display_rows}"\n'
            "    deps: [packages/pipeline/stages/binarize, data/large_sources]\n"
            "    outs:\n      - data/sources:\n          persist: true\n    params: [stage]\n",
        },
        id="boilercv",
    ),
    pytest.param(
        {  # simplymathematics/deckard examples/gzip: matrices of lists, indexed items
            "params.yaml": "data:\n  sample: {test_size: 100, random_state: 0}\n",
            "dvc.yaml": """
            stages:
              grid_search_precompute:
                matrix:
                  train_size: [1000]
                  dataset: [ddos, kdd_nsl]
                  metric : [gzip, bz2]
                  fold : [0, 1]
                  algorithm :
                    - [False, False, "Vanilla"]
                    - [True, "average", "Average"]
                cmd: >-
                  python -m deckard.layers.optimise stage=train
                  model.init.metric=${item.metric}
                  model.init.distance_matrix_train=output/${item.dataset}/distance_matrix/${item.metric}/${item.algorithm[2]}/train-${item.train_size}-${data.sample.test_size}-${data.sample.random_state}${item.fold}.npz
                  files.directory=output/${item.dataset}
                deps: [conf/knn.yaml, params.yaml, raw_data/]
                outs:
                  - output/${item.dataset}/reports/precomputed/knn/${item.algorithm[2]}/${item.train_size}/${item.fold}/${item.metric}/:
                      cache: false
                      persist: true
                      push: true
                params:
                  - conf/${item.dataset}.yaml:
                    - hydra
            """,
        },
        id="deckard-gzip",
    ),
    pytest.param(
        {  # deckard examples/security/kdd-nsl: foreach over kernels, params-driven paths
            "params.yaml": "files: {directory: output, name: default}\n",
            "dvc.yaml": """
            stages:
              train:
                cmd: python -m deckard.layers.experiment train
                metrics:
                  - ${files.directory}/reports/train/${files.name}/score_dict.json:
                      cache : false
              find_best_model:
                foreach: [linear, rbf, poly]
                do:
                  cmd: python -m deckard.layers.find_best --params_file best_${item} --study_name=${item} --storage_name sqlite:///model.db
                  outs: ['conf/model/best_${item}.yaml']
                  deps: ['${files.directory}/train.csv', model.db, logs/models/]
            """,
        },
        id="deckard-kdd-nsl",
    ),
    pytest.param(
        {  # iterative/magnetic-tiles-defect: no templating, params sections, nested outputs
            "params.yaml": "base: {random_state: 0}\ntrain: {img_size: 224}\n",
            "dvc.yaml": """
            stages:
              train:
                cmd: python src/stages/train.py --config=params.yaml
                deps: [src/stages/train.py]
                params: [base, train]
                outs: [models/model_pickle_fastai.pkl]
                metrics:
                  - training/metrics.json:
                      cache: false
            """,
        },
        id="magnetic-tiles-defect",
    ),
    pytest.param(
        {  # iterative/pipeline-configuration's pattern: vars files per concern, foreach over a
            # dict of configurations, selected keys
            "config/data.yaml": "data: {raw: data/raw, prepared: data/prepared}\n",
            "config/models.yaml": "models:\n  small: {layers: 2, lr: 0.01}\n"
            "  large: {layers: 8, lr: 0.001}\nunused: 1\n",
            "dvc.yaml": """
            vars:
              - config/data.yaml
              - config/models.yaml:models
            stages:
              prepare:
                cmd: python prepare.py ${data.raw} ${data.prepared}
                deps: ['${data.raw}']
                outs: ['${data.prepared}']
              train:
                foreach: ${models}
                do:
                  cmd: python train.py --name ${key} --layers ${item.layers} --lr ${item.lr}
                  deps: ['${data.prepared}']
                  outs: ['models/${key}.pkl']
                  metrics:
                    - metrics/${key}.json:
                        cache: false
            """,
        },
        id="pipeline-configuration",
    ),
]


@pytest.mark.parametrize("files", PROJECTS)
def test_public_project_shapes(project: Path, files: dict[str, str]) -> None:
    _write(project, files)
    assert isinstance(_compare(project), dict)


# ---- the interface's other promises ----------------------------------------------------------


def test_non_templated_stages_come_out_unchanged(project: Path) -> None:
    text = "stages:\n  a:\n    cmd: echo 1\n    deps: [x]\n    outs: [{y: {cache: false}}]\n"
    _write(project, {"dvc.yaml": text})
    data = load_yaml(text.encode(), "dvc.yaml")
    assert not uses_templating(data)
    resolved = resolve_stages(data, "dvc.yaml", _loader(project))
    assert {n: (s.name, s.body, s.tracked) for n, s in resolved.items()} == {
        "a": ("a", data["stages"]["a"], {})
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stages:\n  a:\n    cmd: x\n", False),
        ("vars: []\nstages:\n  a:\n    cmd: x\n", True),
        ("stages:\n  a:\n    foreach: [1]\n    do: {cmd: x}\n", True),
        ("stages:\n  a:\n    matrix: {a: [1]}\n    cmd: x\n", True),
        ("stages:\n  a:\n    vars: [{a: 1}]\n    cmd: x\n", True),
        ("stages:\n  a:\n    cmd: x\n    outs: [{'${a}': {}}]\n", True),
        ("stages:\n  a:\n    cmd: 'a \\${b}'\n", True),
    ],
)
def test_uses_templating(text: str, expected: bool) -> None:
    assert uses_templating(load_yaml(text.encode(), "dvc.yaml")) is expected


def test_alias_bombs_stay_cheap_where_nothing_templates() -> None:
    """2^60 paths over 61 shared nodes (what YAML aliases build): each node is visited once,
    and a stage that does not template is passed through, never walked path by path."""
    value: list[Any] = ["leaf"]
    for _ in range(60):
        value = [value, value]
    data = {"vars": [{"v": 1}], "stages": {"a": {"cmd": "x", "deps": value}}}
    assert not uses_templating({"stages": data["stages"]})
    assert uses_templating(data)
    resolved = resolve_stages(data, "dvc.yaml", lambda _: None)
    assert resolved["a"].body["deps"] is value


def test_pure_module_never_imports_dvc() -> None:
    code = (
        "import sys, repro_hooks.dvc.templating as t\n"
        "t.resolve_stages({'vars': [{'a': 1}], 'stages': {'s': {'cmd': '${a}'}}}, 'dvc.yaml',"
        " lambda p: None)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dvc', 'dvc_data')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_each_vars_file_is_loaded_once(project: Path) -> None:
    stages = "".join(
        f"  s{i}:\n    vars: [cfg.yaml, 'more.yaml:m']\n    cmd: echo ${{a}} ${{m}}\n"
        for i in range(20)
    )
    _write(
        project,
        {
            "params.yaml": "p: 1\n",
            "cfg.yaml": "a: 1\n",
            "more.yaml": "m: 2\n",
            "dvc.yaml": "vars: [cfg.yaml]\nstages:\n  f:\n    foreach: [1, 2, 3]\n    do:\n"
            "      vars: ['more.yaml:m']\n      cmd: ${item} ${m}\n"
            + stages.replace("vars: [cfg.yaml, ", "vars: ["),
        },
    )
    load = _loader(project)
    data = load_yaml((project / "dvc.yaml").read_bytes(), "dvc.yaml")
    resolved = resolve_stages(data, "dvc.yaml", load)
    assert len(resolved) == 23
    assert sorted(load.calls) == ["cfg.yaml", "more.yaml", "params.yaml"]
    _compare(project)


@pytest.mark.parametrize(
    ("file", "vars_"), [("dvc.yaml", "../x.yaml"), ("sub/dvc.yaml", "../../x.yaml")]
)
def test_vars_outside_the_repository(file: str, vars_: str) -> None:
    with pytest.raises(DvcFileError, match="outside the repository") as info:
        resolve_stages({"vars": [vars_], "stages": {}}, file, lambda _: {})
    assert info.value.file == file


def test_load_errors_pass_through() -> None:
    def load(path: str) -> Any:
        raise DvcFileError(path, "malformed YAML (line 1)")

    with pytest.raises(DvcFileError) as info:
        resolve_stages({"stages": {"a": {"cmd": "x"}}}, "dvc.yaml", load)
    assert (info.value.file, info.value.reason) == ("params.yaml", "malformed YAML (line 1)")


# ---- generated documents --------------------------------------------------------------------

_NAMES = st.sampled_from(["a", "b", "c", "item", "key"])
_SCALARS = st.one_of(
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.sampled_from([0.5, "x", "y z", "on", "1", "a b"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_NAMES, inner, max_size=3)
    ),
    max_leaves=6,
)
_REFS = st.sampled_from(
    ["a", "b", "c", "a.a", "a[0]", "b.b[1]", "item", "item.a", "item[0]", "key", "c.item"]
)


def _paths(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every `${...}` expression that reaches into `value` (named `prefix`), with its value."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, f"{prefix}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, f"{prefix}[{i}]")


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, str]:
    """Mostly resolvable documents: references are drawn from what the context holds, with
    some drawn blindly (missing keys, items that differ between iterations, clashes)."""
    params = draw(st.dictionaries(_NAMES, _VALUES, max_size=4))
    inline = draw(st.dictionaries(st.sampled_from(["v", "w", "a"]), _VALUES, max_size=2))
    extra = draw(st.dictionaries(st.sampled_from(["e", "f", "b"]), _VALUES, max_size=2))
    files = {"params.yaml": yaml.safe_dump(params), "extra.yaml": yaml.safe_dump(extra)}
    scope = {**params, **inline}

    def scalar_refs(names: dict[str, Any]) -> list[str]:
        return sorted(
            expr
            for name, value in names.items()
            for expr, v in _paths(value, name)
            if not isinstance(v, (dict, list))
        )

    def ref(names: dict[str, Any]) -> str:
        known = scalar_refs(names)
        if known and draw(st.integers(0, 11)) > 0:
            return draw(st.sampled_from(known))
        return draw(_REFS)

    def body(names: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        vars_choice = draw(st.integers(0, 6))
        if vars_choice == 0:
            inline_stage = draw(st.dictionaries(st.sampled_from(["s", "t", "a"]), _SCALARS))
            out["vars"] = [inline_stage]
            names = {**names, **inline_stage}
        elif vars_choice == 1:
            out["vars"] = [draw(st.sampled_from(["extra.yaml", "extra.yaml:e", "params.yaml"]))]
            names = {**names, **extra}
        refs = draw(st.lists(st.just(None), min_size=1, max_size=3))
        out["cmd"] = " ".join(f"${{{ref(names)}}}" for _ in refs)
        if draw(st.booleans()):
            out["outs"] = [f"o/${{{ref(names)}}}"]
        if draw(st.booleans()):
            out["desc"] = f"${{{ref(names)}}}"
        if draw(st.integers(0, 5)) == 0:
            out["wdir"] = f"${{{ref(names)}}}"
        return out

    def containers() -> list[str]:
        return sorted(
            expr
            for name, value in scope.items()
            for expr, v in _paths(value, name)
            if isinstance(v, (dict, list))
        )

    stages: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["plain", "foreach", "matrix"]))
        if kind == "plain":
            stages[f"s{i}"] = body(scope)
        elif kind == "foreach":
            known = containers()
            if known and draw(st.booleans()):
                expr = draw(st.sampled_from(known))
                iterable = dict(
                    _paths(scope[re.split(r"[.\[]", expr)[0]], re.split(r"[.\[]", expr)[0])
                )[expr]
                source: Any = f"${{{expr}}}"
            else:
                iterable = source = draw(st.one_of(_VALUES, _REFS.map(lambda r: f"${{{r}}}")))
            first = (
                next(iter(iterable.values()), None)
                if isinstance(iterable, dict)
                else iterable[0]
                if isinstance(iterable, list) and iterable
                else None
            )
            stages[f"s{i}"] = {"foreach": source, "do": body({**scope, "item": first, "key": "k"})}
        else:
            axes = draw(
                st.dictionaries(
                    _NAMES,
                    st.one_of(
                        st.lists(_VALUES, min_size=1, max_size=2),
                        st.sampled_from(containers() or ["a"]).map(lambda r: f"${{{r}}}"),
                    ),
                    min_size=1,
                    max_size=2,
                )
            )
            item = {k: (v[0] if isinstance(v, list) else None) for k, v in axes.items()}
            stages[f"s{i}"] = {"matrix": axes, **body({**scope, "item": item, "key": "k"})}
    document: dict[str, Any] = {"stages": stages}
    if inline:
        document["vars"] = [inline]
    if draw(st.integers(0, 3)) == 0:
        document.setdefault("vars", []).append(
            draw(st.sampled_from(["extra.yaml", "extra.yaml:e,f"]))
        )
    files["dvc.yaml"] = yaml.safe_dump(document)
    return files


@settings(max_examples=120)
@given(_documents())
def test_generated_documents(
    dvc_project_template: Path, tmp_path_factory: pytest.TempPathFactory, files: dict[str, str]
) -> None:
    root = tmp_path_factory.mktemp("generated") / "project"
    shutil.copytree(dvc_project_template, root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        _write(root, files)
        _compare(root)
    finally:
        os.chdir(cwd)
        shutil.rmtree(root)
