"""Core: DVC file parsers, on files real DVC wrote and on hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_hooks.dvc.files import (
    DvcFileError,
    parse_dvc_file,
    parse_dvc_lock,
    parse_dvc_yaml,
    repo_path,
)
from repro_hooks.dvc.names import is_dvc_file
from repro_hooks.links.lookup import records_output_hashes
from repro_hooks.links.stamp import _is_dvc_record
from tests.dvc_helpers import dvc
from tests.helpers import write


@pytest.fixture
def dvc_repo(repo: Path) -> Path:
    dvc(repo, "init", "-q")
    return repo


def test_files_written_by_real_dvc(dvc_repo: Path) -> None:
    write(dvc_repo / "data/raw.csv", "a,b\n1,2\n")
    write(dvc_repo / "data/images/x.bin", b"\0\1")
    write(dvc_repo / "data/images/sub/y.bin", b"\2")
    dvc(dvc_repo, "add", "data/raw.csv", "data/images")
    write(dvc_repo / "params.yaml", "lr: 0.1\nmodel:\n  depth: 3\n")
    write(dvc_repo / "train.py", "print(1)\n")
    dvc(
        dvc_repo,
        "stage",
        "add",
        "-n",
        "train",
        "-d",
        "train.py",
        "-d",
        "data/raw.csv",
        "-p",
        "lr,model.depth",
        "-o",
        "models/model.pkl",
        "mkdir -p models && cp data/raw.csv models/model.pkl",
    )
    dvc(dvc_repo, "repro", "-q")

    raw = parse_dvc_file((dvc_repo / "data/raw.csv.dvc").read_bytes(), "data/raw.csv.dvc")
    (out,) = raw.outs
    assert out.path == "data/raw.csv"
    assert out.algorithm == "md5"
    assert out.size == 8
    assert out.hash_value is not None and len(out.hash_value) == 32
    assert not out.is_dir and out.cache and out.source == "data/raw.csv.dvc"

    images = parse_dvc_file((dvc_repo / "data/images.dvc").read_bytes(), "data/images.dvc")
    (dir_out,) = images.outs
    assert dir_out.path == "data/images" and dir_out.is_dir and dir_out.nfiles == 2

    stages = parse_dvc_yaml((dvc_repo / "dvc.yaml").read_bytes(), "dvc.yaml")
    train = stages["train"]
    assert sorted(train.deps) == ["data/raw.csv", "train.py"]
    assert [o.path for o in train.outs] == ["models/model.pkl"]
    assert train.params == {"params.yaml": ["lr", "model.depth"]}

    lock = parse_dvc_lock((dvc_repo / "dvc.lock").read_bytes(), "dvc.lock", {"train": train.wdir})
    locked = lock["train"]
    assert locked.cmd == train.cmd
    assert {d.path for d in locked.deps} == {"train.py", "data/raw.csv"}
    assert [o.path for o in locked.outs] == ["models/model.pkl"]
    assert locked.params == {"params.yaml": {"lr": 0.1, "model.depth": 3}}
    assert all(o.algorithm == "md5" and o.stage == "train" for o in locked.outs)


def test_legacy_dvc2_entry_is_md5_dos2unix() -> None:
    content = b"outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 3\n  path: a.csv\n"
    (out,) = parse_dvc_file(content, "sub/a.csv.dvc").outs
    assert out.algorithm == "md5-dos2unix"
    assert out.path == "sub/a.csv"


def test_import_and_frozen() -> None:
    content = (
        b"md5: 0123456789abcdef0123456789abcdef\nfrozen: true\n"
        b"deps:\n- path: data/x.csv\n  repo:\n    url: https://example.com/r.git\n    rev_lock: abc\n"
        b"outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 3\n  hash: md5\n  path: x.csv\n"
    )
    parsed = parse_dvc_file(content, "x.csv.dvc")
    assert parsed.frozen and parsed.is_import
    assert parsed.deps == [] and parsed.external_deps == ["data/x.csv"]


def test_wdir_and_metrics_and_flags() -> None:
    content = b"""
stages:
  prep:
    wdir: src
    cmd: python prep.py
    deps: [prep.py, ../data/in.csv]
    outs:
      - ../data/out.csv
      - cache_free.txt:
          cache: false
      - kept:
          persist: true
    metrics: [metrics.json]
    params:
      - conf/params.json:
      - alpha
  loop:
    foreach: [1, 2]
    do:
      cmd: echo ${item}
"""
    stages = parse_dvc_yaml(content, "pipe/dvc.yaml")
    prep = stages["prep"]
    assert prep.wdir == "pipe/src"
    assert prep.deps == ["pipe/src/prep.py", "pipe/data/in.csv"]
    outs = {o.path: (o.cache, o.persist) for o in prep.outs}
    assert outs == {
        "pipe/data/out.csv": (True, False),
        "pipe/src/cache_free.txt": (False, False),
        "pipe/src/kept": (True, True),
        "pipe/src/metrics.json": (True, False),  # DVC caches metrics unless cache: false
    }
    assert prep.params == {"pipe/src/conf/params.json": None, "pipe/src/params.yaml": ["alpha"]}
    # templated stages resolved as DVC names them
    assert sorted(stages) == ["loop@1", "loop@2", "prep"]
    assert stages["loop@2"].cmd == "echo 2" and stages["loop@2"].wdir == "pipe"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"outs: [\n", "malformed YAML (line", id="malformed-yaml"),
        pytest.param(b"- a\n- b\n", "must be a mapping", id="not-mapping"),
        pytest.param(b"outs: 3\n", "outs must be a list", id="outs-not-list"),
        pytest.param(b"outs:\n- path: /etc/passwd\n", "is absolute", id="absolute"),
        pytest.param(b"outs:\n- path: C:\\\\data\\\\x\n", "is absolute", id="windows-absolute"),
        pytest.param(b"outs:\n- path: ../../outside.csv\n", "escapes the repository", id="escape"),
        pytest.param(b"outs:\n- path: s3://bucket/x\n", "not in the repository", id="url"),
        pytest.param(b"outs:\n- path: 3\n", "path must be a string", id="path-int"),
        pytest.param(b"outs:\n- md5: 1234\n  path: a\n", "not an md5", id="bad-md5"),
        pytest.param(
            b"outs:\n- md5: xyz\n  hash: sha256\n  path: a\n", "unsupported hash", id="bad-hash"
        ),
        pytest.param(b"outs:\n- path: a\n  size: x\n", "size must be an integer", id="bad-size"),
        pytest.param(b"outs:\n- path: a\n  sizes: 1\n", "unknown key 'sizes'", id="unknown-key"),
        pytest.param(b"outs:\n- md5: 12\n  path: a\n", "md5 must be a hash", id="short-md5"),
        pytest.param(b"outs:\n- path: a\n- path: b\n  path: c\n", "duplicate key", id="dup-key"),
        pytest.param(b"outs:\n- path: a\n  cache: maybe\n", "true or false", id="bad-cache"),
        pytest.param(
            b"outs:\n- path: a\n  remote: 3\n", "remote must be a string", id="bad-remote"
        ),
        pytest.param(b"outs:\n- path: a\n- path: ./a\n", "listed twice", id="duplicate"),
        pytest.param(b"outs:\n- path: '..'\n", "repository root", id="root"),
        pytest.param(b"wdir: 3\nouts:\n- path: a\n", "wdir must be a string", id="bad-wdir"),
        pytest.param(b"frozen: yes please\nouts:\n- path: a\n", "frozen must be", id="bad-frozen"),
        pytest.param(b"outs: &a [*a]\n", "must be a mapping", id="recursive-alias"),
        pytest.param(b"\xff\xfe\x00bad", "", id="binary"),
    ],
)
def test_malformed_dvc_files(content: bytes, reason: str) -> None:
    with pytest.raises(DvcFileError) as info:
        parse_dvc_file(content, "data/x.dvc")
    assert str(info.value).startswith("data/x.dvc: ")
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"stages: [1]\n", "stages must be a mapping", id="stages-list"),
        pytest.param(b"stages:\n  s: 3\n", "stage 's' must be a mapping", id="stage-int"),
        pytest.param(b"stages:\n  s:\n    cmd: 3\n", "cmd must be", id="cmd-int"),
        pytest.param(b"stages:\n  s:\n    cmd: x\n    outs: [/abs]\n", "is absolute", id="abs-out"),
        pytest.param(b"stages:\n  s:\n    cmd: x\n    wdir: ../..\n", "escapes", id="wdir-escape"),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    deps: [{a: 1, b: 2}]\n",
            "deps must be a list of paths",
            id="dep-map",
        ),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    params: [3]\n",
            "params must be a list",
            id="params-int",
        ),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    params: [{p.yaml: 3}]\n",
            "list of keys",
            id="params-bad-keys",
        ),
        pytest.param(b"stages:\n  1: {cmd: x}\n", "stage name must be a string", id="int-name"),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    deps:\n", "deps must be a list", id="deps-null"
        ),
        pytest.param(b"stages:\n  s:\n    deps: [a]\n", "cmd is required", id="no-cmd"),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    outs: [{a: {cache: 1}}]\n",
            "outs must be",
            id="bad-flag",
        ),
        pytest.param(b"stages:\n  s:\n    cmd: x\n    out: [a]\n", "unknown key 'out'", id="typo"),
    ],
)
def test_malformed_dvc_yaml(content: bytes, reason: str) -> None:
    with pytest.raises(DvcFileError, match=reason):
        parse_dvc_yaml(content, "dvc.yaml")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"schema: '3.0'\nstages: {}\n", "unsupported dvc.lock schema", id="schema"),
        pytest.param(
            b"schema: '2.0'\nstages:\n  s:\n    cmd: c\n    outs: [{path: ../../x}]\n",
            "escapes",
            id="escape",
        ),
        pytest.param(
            b"schema: '2.0'\nstages:\n  s:\n    cmd: c\n    params: {p.yaml: 3}\n",
            "must be a mapping",
            id="params",
        ),
        pytest.param(b"schema: '2.0'\nstages:\n  s: []\n", "must be a mapping", id="stage-list"),
        pytest.param(b"schema: '2.0'\nstages:\n  7: {}\n", "stage name", id="int-name"),
        pytest.param(
            b"schema: 2.0\nstages: {}\n", "unsupported dvc.lock schema", id="float-schema"
        ),
        pytest.param(
            b"schema: '2.0'\nstages:\n  s:\n    cmd: c\n    deps:\n",
            "deps must be a list",
            id="null",
        ),
        pytest.param(
            b"schema: '2.0'\nstages:\n  s:\n    cmd: c\n    outs: [{path: a, cache: false}]\n",
            "unknown key 'cache'",
            id="cache-in-lock",
        ),
    ],
)
def test_malformed_dvc_lock(content: bytes, reason: str) -> None:
    with pytest.raises(DvcFileError, match=reason):
        parse_dvc_lock(content, "dvc.lock")


def test_empty_yaml_and_lock() -> None:
    assert parse_dvc_yaml(b"", "dvc.yaml") == {}
    assert parse_dvc_lock(b"", "dvc.lock") == {}


def test_lock_skips_url_deps_and_matrix_names() -> None:
    content = b"""schema: '2.0'
stages:
  fetch@1:
    cmd: get
    deps:
      - path: https://example.com/data.csv
      - path: local.txt
        hash: md5
        md5: 0123456789abcdef0123456789abcdef
    outs:
      - path: out.csv
        hash: md5
        md5: 0123456789abcdef0123456789abcdef
"""
    # generated stages are matched by their full name: each has its own wdir
    stages = parse_dvc_lock(content, "dvc.lock", {"fetch@1": "sub", "fetch@2": "other"})
    assert [d.path for d in stages["fetch@1"].deps] == ["sub/local.txt"]
    assert [o.path for o in stages["fetch@1"].outs] == ["sub/out.csv"]


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    lines.append("outs: *a11")
    with pytest.raises(DvcFileError, match="once aliases are expanded"):
        parse_dvc_file("\n".join(lines).encode(), "bomb.dvc")


def test_too_large() -> None:
    from repro_hooks.dvc import files as dvcfiles

    with pytest.raises(DvcFileError, match="too large"):
        parse_dvc_file(b"#" * (dvcfiles.MAX_DVC_FILE_SIZE + 1), "huge.dvc")


def test_is_dvc_file() -> None:
    assert is_dvc_file("a/b.csv.dvc") and is_dvc_file("dvc.yaml") and is_dvc_file("x/dvc.lock")
    assert not is_dvc_file("dvc.yml") and not is_dvc_file("a.csv")


# What each "is this a DVC file" question answered when five modules spelled it out on their
# own: the history scan, the deploy evidence and check-dvc's work tree (is_dvc_file); `show`'s
# files that record output hashes (no dvc.yaml); the run stamp's paths that change what DVC sees
# (also .dvcignore, and a file named just `.dvc`).
@pytest.mark.parametrize(
    ("path", "dvc_file", "records_hashes", "stamp_record"),
    [
        pytest.param("a.dvc", True, True, True, id="a.dvc"),
        pytest.param("sub/a.csv.dvc", True, True, True, id="sub/a.csv.dvc"),
        pytest.param("..dvc", True, True, True, id="..dvc"),
        pytest.param("dvc.yaml", True, False, True, id="dvc.yaml"),
        pytest.param("sub/dvc.yaml", True, False, True, id="sub/dvc.yaml"),
        pytest.param("dvc.lock", True, True, True, id="dvc.lock"),
        pytest.param("sub/dvc.lock", True, True, True, id="sub/dvc.lock"),
        pytest.param("x.dvc/", False, False, False, id="x.dvc/"),
        pytest.param("x.dvc/config", False, False, False, id="x.dvc/config"),
        pytest.param(".dvc", False, False, True, id=".dvc"),
        pytest.param("sub/.dvc", False, False, True, id="sub/.dvc"),
        pytest.param(".dvcignore", False, False, True, id=".dvcignore"),
        pytest.param("sub/.dvcignore", False, False, True, id="sub/.dvcignore"),
        pytest.param("dvc.yaml.bak", False, False, False, id="dvc.yaml.bak"),
        pytest.param("Dvc.yaml", False, False, False, id="Dvc.yaml"),
        pytest.param("DVC.LOCK", False, False, False, id="DVC.LOCK"),
        pytest.param("a.DVC", False, False, False, id="a.DVC"),
        pytest.param("dvc.yml", False, False, False, id="dvc.yml"),
        pytest.param("sub\\dvc.yaml", False, False, False, id="backslash"),
    ],
)
def test_dvc_file_questions(
    path: str, dvc_file: bool, records_hashes: bool, stamp_record: bool
) -> None:
    assert is_dvc_file(path) is dvc_file
    assert records_output_hashes(path) is records_hashes
    assert _is_dvc_record(path) is stamp_record


@settings(max_examples=200)
@given(st.text(max_size=30), st.sampled_from(["", "a", "a/b"]))
def test_repo_path_never_escapes(path: str, base: str) -> None:
    try:
        resolved = repo_path(base, path, "f.dvc")
    except DvcFileError:
        return
    assert not resolved.startswith(("/", "../")) and resolved not in ("..", ".")


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_parsers_never_crash(content: bytes) -> None:
    for parse in (parse_dvc_file, parse_dvc_yaml, parse_dvc_lock):
        try:
            parse(content, "x.dvc")
        except DvcFileError:
            pass


# ---- read as DVC reads ---------------------------------------------------------------

_SCALARS = [
    "010",
    "0o17",
    "0x1F",
    "0b11",
    "1e3",
    "1E-3",
    "1.",
    ".5",
    "-.inf",
    ".NaN",
    "+1",
    "1_000",
    "on",
    "off",
    "yes",
    "No",
    "y",
    "true",
    "False",
    "TRUE",
    "null",
    "~",
    "Null",
    "",
    "12:30",
    "2001-12-14",
    ".1e3",
    "0.1",
    "-0",
    "007",
    "1.5e+3",
    "=",
    "<<",
    "0o",
    "abc",
    "1e",
    "0x",
]


def _ruamel(text: str) -> object:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(text)


@pytest.mark.parametrize("scalar", _SCALARS)
def test_scalars_resolve_as_dvc_reads_them(scalar: str) -> None:
    """DVC reads YAML with ruamel.yaml (YAML 1.2); PyYAML alone reads YAML 1.1."""
    from repro_hooks.dvc.files import load_yaml

    text = f"a: {scalar}\n"
    try:
        expected = _ruamel(text)
    except Exception:  # ruamel refuses it: so must we
        with pytest.raises(DvcFileError):
            load_yaml(text.encode(), "p.yaml")
        return
    got = load_yaml(text.encode(), "p.yaml")
    assert repr(got) == repr(expected)


@settings(max_examples=300)
@given(st.text(alphabet="0123456789+-._eExXoObB:~nNtTfFuoy ", max_size=8))
def test_generated_scalars_resolve_as_ruamel(scalar: str) -> None:
    from repro_hooks.dvc.files import load_yaml

    text = f"a: '{scalar}'\nb: {scalar}\n"
    try:
        expected = _ruamel(text)
    except Exception:
        with pytest.raises(DvcFileError):
            load_yaml(text.encode(), "p.yaml")
        return
    assert repr(load_yaml(text.encode(), "p.yaml")) == repr(expected)


def test_duplicate_keys_are_refused_as_dvc_does() -> None:
    with pytest.raises(DvcFileError, match="duplicate key"):
        parse_dvc_yaml(b"stages:\n  a: {cmd: x}\n  a: {cmd: y}\n", "dvc.yaml")


def test_what_dvc_accepts_is_accepted() -> None:
    for content in (b"", b"outs:\n", b"outs: []\ndeps:\n", b"outs:\n- path: a\n  size: -1\n"):
        parse_dvc_file(content, "x.dvc")
    parse_dvc_yaml(b"stages:\n  s:\n    cmd: [1, 2]\n", "dvc.yaml")


def test_wdir_may_be_the_repository_root() -> None:
    (out,) = parse_dvc_file(b"wdir: ..\nouts:\n- path: data/x.csv\n", "sub/x.dvc").outs
    assert out.path == "data/x.csv"
    stage = parse_dvc_yaml(
        b"stages:\n  s:\n    cmd: c\n    wdir: ..\n    outs: [o]\n", "sub/dvc.yaml"
    )["s"]
    assert stage.wdir == "." and [o.path for o in stage.outs] == ["o"]


def test_always_changed_and_raw_paths_are_kept() -> None:
    stage = parse_dvc_yaml(
        b"stages:\n  s:\n    cmd: c\n    always_changed: true\n    deps: [./a]\n    outs: [o/]\n",
        "dvc.yaml",
    )["s"]
    assert stage.always_changed
    assert stage.def_deps == ("./a",) and stage.deps == ["a"]
    assert [(o.path, o.def_path) for o in stage.outs] == [("o", "o/")]
    assert parse_dvc_file(b"always_changed: true\nouts:\n- path: a\n", "a.dvc").always_changed


def test_templated_stage_keeps_cache_flags_and_wdir() -> None:
    """Generated stages are ordinary stages with exact output paths (no patterns)."""
    stages = parse_dvc_yaml(
        b"vars: [{n: 1}]\nstages:\n  s:\n    foreach: [a, b]\n    do:\n      cmd: c ${item} ${n}\n"
        b"      wdir: sub\n      outs:\n        - m_${item}.csv:\n            cache: false\n"
        b"        - model_${item}.pkl\n",
        "dvc.yaml",
    )
    assert sorted(stages) == ["s@a", "s@b"]
    a = stages["s@a"]
    assert a.wdir == "sub" and a.cmd == "c a 1"
    assert [(o.path, o.cache, o.def_path) for o in a.outs] == [
        ("sub/m_a.csv", False, "m_a.csv"),
        ("sub/model_a.pkl", True, "model_a.pkl"),
    ]


def test_templated_vars_come_from_load_and_lock_matches_full_names() -> None:
    """`load` is asked for the vars files (repository-relative); dvc.lock's `s@x` stages get
    their own (interpolated) wdir."""
    asked: list[str] = []

    def load(path: str) -> object:
        asked.append(path)
        return {"dirs": ["x", "y"]} if path == "p/params.yaml" else None

    stages = parse_dvc_yaml(
        b"stages:\n  s:\n    foreach: ${dirs}\n    do:\n      wdir: ${item}\n"
        b"      cmd: run\n      outs: [o]\n",
        "p/dvc.yaml",
        load,
    )
    assert asked == ["p/params.yaml"]
    assert {n: s.wdir for n, s in stages.items()} == {"s@x": "p/x", "s@y": "p/y"}
    lock = parse_dvc_lock(
        b"schema: '2.0'\nstages:\n  s@y:\n    cmd: run\n    outs:\n    - path: o\n",
        "p/dvc.lock",
        {n: s.wdir for n, s in stages.items()},
    )
    assert [o.path for o in lock["s@y"].outs] == ["p/y/o"]


def test_plain_dvc_yaml_never_calls_load() -> None:
    def load(path: str) -> object:
        raise AssertionError(f"read {path}")

    stages = parse_dvc_yaml(b"stages:\n  s:\n    cmd: run\n    params: [lr]\n", "dvc.yaml", load)
    assert stages["s"].params == {"params.yaml": ["lr"]}


def test_expanded_size_is_linear_and_bounded() -> None:
    from repro_hooks.dvc.files import MAX_EXPANDED_NODES, expanded_size, load_yaml

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 30)]
    with pytest.raises(DvcFileError, match="once aliases are expanded"):
        load_yaml("\n".join(lines).encode(), "params.yaml")
    assert expanded_size([[1, 2], {"a": [3]}]) == 8
    assert expanded_size(list(range(MAX_EXPANDED_NODES + 10))) > MAX_EXPANDED_NODES


def test_dvc_file_cap_is_lower_than_for_pipelines() -> None:
    from repro_hooks.dvc import files as dvcfiles

    big = b"#" * (dvcfiles.MAX_STAGE_FILE_SIZE + 1)
    with pytest.raises(DvcFileError, match="too large"):
        parse_dvc_file(big, "huge.dvc")
    assert parse_dvc_yaml(big, "dvc.yaml") == {}


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[0-9a-f]{32}(\.dir)?", fullmatch=True),
            st.integers(0, 10**12),
            st.none() | st.integers(0, 10**6),
            st.sampled_from(["a.csv", "d/x", "on", "010", "1e3", "null", "true", "_a", "0x1"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_dvc_add_fast_path_equals_yaml(outs: list[tuple[str, int, int | None, str]]) -> None:
    """Item 21: `dvc add`'s layout is read in linear time, with the mapping YAML gives."""
    from repro_hooks.dvc.files import _dvc_add_data, load_yaml

    text = "outs:\n" + "".join(
        f"- md5: {md5}\n  size: {size}\n"
        + (f"  nfiles: {n}\n" if n is not None else "")
        + f"  hash: md5\n  path: {path}\n"
        for md5, size, n, path in outs
    )
    fast = _dvc_add_data(text.encode())
    if fast is not None:
        assert fast == load_yaml(text.encode(), "x.dvc")
