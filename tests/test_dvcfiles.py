"""Core: DVC file parsers, on files real DVC wrote and on hostile input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_hooks.dvc.files import (
    DvcFileError,
    is_dvc_file,
    parse_dvc_file,
    parse_dvc_lock,
    parse_dvc_yaml,
    repo_path,
)
from tests.helpers import VENV_BIN, write


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=repo, check=True, capture_output=True)


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
        dvc_repo, "stage", "add", "-n", "train", "-d", "train.py", "-d", "data/raw.csv",
        "-p", "lr,model.depth", "-o", "models/model.pkl",
        "mkdir -p models && cp data/raw.csv models/model.pkl",
    )  # fmt: skip
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
    assert not train.templated

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
  tpl:
    cmd: python x.py ${item}
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
    assert stages["tpl"].templated and stages["loop"].templated


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"outs: [\n", "malformed YAML (line", id="malformed-yaml"),
        pytest.param(b"", "empty DVC file", id="empty"),
        pytest.param(b"- a\n- b\n", "must be a mapping", id="not-mapping"),
        pytest.param(b"outs: 3\n", "outs must be a list", id="outs-not-list"),
        pytest.param(b"outs: []\n", "no outs", id="no-outs"),
        pytest.param(b"outs:\n- path: /etc/passwd\n", "is absolute", id="absolute"),
        pytest.param(b"outs:\n- path: C:\\\\data\\\\x\n", "is absolute", id="windows-absolute"),
        pytest.param(b"outs:\n- path: ../../outside.csv\n", "escapes the repository", id="escape"),
        pytest.param(b"outs:\n- path: s3://bucket/x\n", "not in the repository", id="url"),
        pytest.param(b"outs:\n- path: 3\n", "must be a non-empty string", id="path-int"),
        pytest.param(b"outs:\n- md5: 1234\n  path: a\n", "not an md5", id="bad-md5"),
        pytest.param(
            b"outs:\n- md5: x\n  hash: sha256\n  path: a\n", "unsupported hash", id="bad-hash"
        ),
        pytest.param(b"outs:\n- path: a\n  size: -1\n", "non-negative integer", id="bad-size"),
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
            b"stages:\n  s:\n    cmd: x\n    deps: [{a: 1, b: 2}]\n", "must be paths", id="dep-map"
        ),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    params: [3]\n", "params entries", id="params-int"
        ),
        pytest.param(
            b"stages:\n  s:\n    cmd: x\n    params: [{p.yaml: 3}]\n",
            "list of keys",
            id="params-bad-keys",
        ),
        pytest.param(b"stages:\n  1: {cmd: x}\n", "stage name must be a string", id="int-name"),
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
            b"schema: '2.0'\nstages:\n  s:\n    outs: [{path: ../../x}]\n", "escapes", id="escape"
        ),
        pytest.param(
            b"schema: '2.0'\nstages:\n  s:\n    params: {p.yaml: 3}\n",
            "must be a mapping",
            id="params",
        ),
        pytest.param(b"schema: '2.0'\nstages:\n  s: []\n", "must be a mapping", id="stage-list"),
        pytest.param(b"schema: '2.0'\nstages:\n  7: {}\n", "stage name", id="int-name"),
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
    stages = parse_dvc_lock(content, "dvc.lock", {"fetch": "sub"})
    assert [d.path for d in stages["fetch@1"].deps] == ["sub/local.txt"]
    assert [o.path for o in stages["fetch@1"].outs] == ["sub/out.csv"]


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    lines.append("outs: *a11")
    with pytest.raises(DvcFileError, match="must be a mapping"):
        parse_dvc_file("\n".join(lines).encode(), "bomb.dvc")


def test_too_large() -> None:
    from repro_hooks.dvc import files as dvcfiles

    with pytest.raises(DvcFileError, match="too large"):
        parse_dvc_file(b"#" * (dvcfiles.MAX_DVC_FILE_SIZE + 1), "huge.dvc")


def test_is_dvc_file() -> None:
    assert is_dvc_file("a/b.csv.dvc") and is_dvc_file("dvc.yaml") and is_dvc_file("x/dvc.lock")
    assert not is_dvc_file("dvc.yml") and not is_dvc_file("a.csv")


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
