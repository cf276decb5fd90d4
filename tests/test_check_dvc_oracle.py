"""check-dvc against the real DVC: our verdict must equal `dvc status -q` on every case DVC covers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro_hooks.dvc.hashing import dir_hash, md5_file
from tests.dvc_helpers import clone_template, dvc, dvc_status_rc, ours, ours_state_rc
from tests.helpers import big, git, write

Mutation = Callable[[Path], None]


def _agree(repo: Path, expected: int) -> None:
    theirs = dvc_status_rc(repo)
    mine = ours_state_rc(repo)
    assert theirs == expected, dvc(repo, "status", check=False).stdout
    assert mine == expected, ours(repo)
    rc, findings = ours(repo)
    assert rc == expected, findings  # nothing else to report in these repositories


# ---- .dvc files: file and directory outputs ---------------------------------------------------


def _setup_data(repo: Path) -> None:
    write(repo / ".dvcignore", "*.tmp\n")
    write(repo / "data/a.csv", "x,y\n1,2\n")
    write(repo / "data/images/1.bin", big(3000, 1))
    write(repo / "data/images/sub/2.bin", big(10, 2))
    write(repo / "data/images/scratch.tmp", "scratch")
    dvc(repo, "add", "-q", "data/a.csv", "data/images")


def _drop_from_cache(repo: Path, data: Path) -> None:
    md5 = md5_file(data)
    obj = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    obj.unlink()


def _rewrite_same_size(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-2] + b"9\n")


DATA_CASES: list[tuple[str, Mutation, int]] = [
    ("unchanged", lambda r: None, 0),
    ("touched-same-content", lambda r: os.utime(r / "data/a.csv", (1, 1)), 0),
    ("modified-file", lambda r: write(r / "data/a.csv", "x,y\n1,3\n"), 1),
    ("same-size-rewrite", lambda r: _rewrite_same_size(r / "data/a.csv"), 1),
    ("modified-in-dir", lambda r: write(r / "data/images/1.bin", big(3000, 9)), 1),
    ("added-in-dir", lambda r: write(r / "data/images/3.bin", b"new"), 1),
    ("removed-in-dir", lambda r: (r / "data/images/sub/2.bin").unlink(), 1),
    (
        "dvcignored-changed",
        lambda r: (
            write(r / "data/images/scratch.tmp", "other"),
            write(r / "data/images/new.tmp", "n"),
        ),
        0,
    ),
    ("missing-file", lambda r: (r / "data/a.csv").unlink(), 1),
    ("missing-dir", lambda r: shutil.rmtree(r / "data/images"), 1),
    ("cache-emptied", lambda r: shutil.rmtree(r / ".dvc/cache/files"), 1),
    ("dir-entry-not-in-cache", lambda r: _drop_from_cache(r, r / "data/images/sub/2.bin"), 1),
    ("file-not-in-cache", lambda r: _drop_from_cache(r, r / "data/a.csv"), 1),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in DATA_CASES]
)
def test_data_outputs_agree_with_dvc(dvc_repo: Path, mutate: Mutation, expected: int) -> None:
    _setup_data(dvc_repo)
    ours(dvc_repo)  # warm the hash cache first: a stale cache must never hide a change
    mutate(dvc_repo)
    _agree(dvc_repo, expected)


# ---- legacy DVC 2 entries (md5-dos2unix) ------------------------------------------------------


def _legacy_cache(repo: Path, md5: str, content: bytes) -> None:
    write(repo / ".dvc/cache" / md5[:2] / md5[2:], content)


def _setup_legacy(repo: Path) -> None:
    text = b"a,b\r\n1,2\r\n"
    write(repo / "text.csv", text)
    value = md5_file(repo / "text.csv", "md5-dos2unix")
    assert value == hashlib.md5(text.replace(b"\r\n", b"\n")).hexdigest()
    _legacy_cache(repo, value, text)
    write(repo / "text.csv.dvc", f"outs:\n- md5: {value}\n  size: {len(text)}\n  path: text.csv\n")
    write(repo / ".gitignore", "/text.csv\n/legacy\n")
    files = {"one.txt": b"x\r\ny\r\n", "sub/two.bin": b"\0\r\n" * 10}
    entries = []
    for rel, content in files.items():
        write(repo / "legacy" / rel, content)
        md5 = md5_file(repo / "legacy" / rel, "md5-dos2unix")
        _legacy_cache(repo, md5, content)
        entries.append((rel, md5))
    value = dir_hash(entries)
    listing = json.dumps(
        sorted(({"md5": m, "relpath": r} for r, m in entries), key=lambda e: e["relpath"]),
        sort_keys=True,
    ).encode()
    _legacy_cache(repo, value, listing)
    write(repo / "legacy.dvc", f"outs:\n- md5: {value}\n  nfiles: 2\n  path: legacy\n")


LEGACY_CASES: list[tuple[str, Mutation, int]] = [
    ("unchanged", lambda r: None, 0),
    ("crlf-to-lf-is-equal", lambda r: write(r / "text.csv", b"a,b\n1,2\n"), 0),
    ("crlf-to-lf-in-dir-is-equal", lambda r: write(r / "legacy/one.txt", b"x\ny\n"), 0),
    ("binary-crlf-matters", lambda r: write(r / "legacy/sub/two.bin", b"\0\n" * 10), 1),
    ("text-changed", lambda r: write(r / "text.csv", b"a,b\r\n1,3\r\n"), 1),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in LEGACY_CASES]
)
def test_legacy_entries_agree_with_dvc(dvc_repo: Path, mutate: Mutation, expected: int) -> None:
    _setup_legacy(dvc_repo)
    mutate(dvc_repo)
    _agree(dvc_repo, expected)


# ---- pipelines: dvc.yaml + dvc.lock -----------------------------------------------------------


def _setup_pipeline(repo: Path) -> None:
    write(repo / "params.yaml", "lr: 0.1\ntrain:\n  epochs: 3\nother: 1\n")
    write(repo / "in.txt", "input\n")
    write(repo / "sub/a.txt", "a\n")
    write(repo / "conf.json", '{"seed": 1, "unused": 2}\n')
    dvc(
        repo,
        "stage",
        "add",
        "-q",
        "-n",
        "train",
        "-d",
        "in.txt",
        "-p",
        "lr,train.epochs",
        "-p",
        "conf.json:seed",
        "-o",
        "out.txt",
        "cp in.txt out.txt",
    )
    dvc(
        repo,
        "stage",
        "add",
        "-q",
        "-n",
        "sub",
        "-w",
        "sub",
        "-d",
        "a.txt",
        "-o",
        "b.txt",
        "cp a.txt b.txt",
    )
    dvc(repo, "repro", "-q")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


PIPELINE_CASES: list[tuple[str, Mutation, int]] = [
    ("unchanged", lambda r: None, 0),
    ("dep-changed", lambda r: write(r / "in.txt", "changed\n"), 1),
    ("out-changed", lambda r: write(r / "out.txt", "changed\n"), 1),
    ("out-missing", lambda r: (r / "out.txt").unlink(), 1),
    ("out-not-in-cache", lambda r: _drop_from_cache(r, r / "out.txt"), 1),
    ("param-changed", lambda r: _edit(r / "params.yaml", "lr: 0.1", "lr: 0.2"), 1),
    ("nested-param-changed", lambda r: _edit(r / "params.yaml", "epochs: 3", "epochs: 4"), 1),
    ("untracked-param-changed", lambda r: _edit(r / "params.yaml", "other: 1", "other: 2"), 0),
    ("json-param-changed", lambda r: write(r / "conf.json", '{"seed": 2, "unused": 2}\n'), 1),
    ("json-other-key-changed", lambda r: write(r / "conf.json", '{"seed": 1, "unused": 3}\n'), 0),
    ("param-deleted", lambda r: _edit(r / "params.yaml", "lr: 0.1\n", ""), 1),
    (
        "cmd-changed",
        lambda r: _edit(r / "dvc.yaml", "cp in.txt out.txt", "cp -f in.txt out.txt"),
        1,
    ),
    ("wdir-dep-changed", lambda r: write(r / "sub/a.txt", "b\n"), 1),
    ("wdir-out-changed", lambda r: write(r / "sub/b.txt", "c\n"), 1),
    (
        "stage-not-in-lock",
        lambda r: dvc(
            r,
            "stage",
            "add",
            "-q",
            "-n",
            "new",
            "-d",
            "in.txt",
            "-o",
            "new.txt",
            "cp in.txt new.txt",
        ),
        1,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in PIPELINE_CASES]
)
def test_pipelines_agree_with_dvc(dvc_repo: Path, mutate: Mutation, expected: int) -> None:
    _setup_pipeline(dvc_repo)
    mutate(dvc_repo)
    _agree(dvc_repo, expected)


def test_frozen_import_checks_outs_not_deps(dvc_template: Path, tmp_path: Path) -> None:
    src = clone_template(dvc_template, tmp_path / "src")
    write(src / "data.csv", "a\n1\n")
    dvc(src, "add", "-q", "data.csv")
    git(src, "add", "-A")
    git(src, "commit", "-q", "--no-verify", "-m", "data")
    repo = clone_template(dvc_template, tmp_path / "repo")
    dvc(repo, "import", "-q", str(src), "data.csv", "-o", "imported.csv")
    assert "frozen: true" in (repo / "imported.csv.dvc").read_text()
    _agree(repo, 0)
    write(src / "data.csv", "a\n2\n")  # the source moves on: a frozen import does not care
    dvc(src, "add", "-q", "data.csv")
    git(src, "commit", "-q", "--no-verify", "-am", "more data")
    # `dvc status` asks the source repository and says "update available" (exit 1). That is no
    # change in this working tree, and asking would need the network on every commit: we
    # deliberately report nothing for a frozen import's deps (documented in the README).
    assert "update available" in dvc(repo, "status", check=False).stdout
    assert ours(repo) == (0, [])
    write(repo / "imported.csv", "edited\n")
    _agree(repo, 1)


# ---- property: generated trees and edits ------------------------------------------------------

_names = st.sampled_from(
    ["a.txt", "b.csv", "c.bin", "d.tmp", "sub/e.txt", "sub/f.tmp", "sub/deep/g"]
)
_contents = st.sampled_from([b"", b"x\n", b"x\r\n", b"\0\x01\x02", b"line\r\nline\r\n", b"y" * 700])
_trees = st.dictionaries(_names, _contents, min_size=1, max_size=5)
_edits = st.lists(
    st.tuples(st.sampled_from(["write", "delete"]), _names, _contents), min_size=0, max_size=3
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=_trees, edits=_edits, with_ignore=st.booleans())
def test_property_directory_outputs_agree_with_dvc(
    dvc_template: Path,
    tree: dict[str, bytes],
    edits: list[tuple[str, str, bytes]],
    with_ignore: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = clone_template(dvc_template, Path(tmp) / "repo")
        if with_ignore:
            write(repo / ".dvcignore", "*.tmp\n")
        for name, content in tree.items():
            write(repo / "data" / name, content)
        if with_ignore and all(n.endswith(".tmp") for n in tree):
            write(repo / "data/keep", b"k")
        dvc(repo, "add", "-q", "data")
        ours(repo)  # warm
        for op, name, content in edits:
            target = repo / "data" / name
            if op == "write":
                if any(p.is_file() for p in [*target.parents][:-1] if p != repo):
                    continue
                write(target, content)
            elif target.is_file():
                target.unlink()
        theirs = dvc_status_rc(repo)
        assert ours_state_rc(repo) == theirs, (tree, edits, ours(repo))


# ---- params in every format DVC reads ---------------------------------------------------------


def _setup_params(repo: Path) -> None:
    write(repo / "params.yaml", "layers: [8, 16]\nseed: 1\n")
    write(repo / "whole.yaml", "a: 1\nb: {c: 2}\n")
    write(repo / "conf.toml", "[train]\nlr = 0.1\nother = 1\n")
    write(repo / "conf.py", "LR = 0.1\n\n\nclass Model:\n    depth = 3\n")
    dvc(
        repo,
        "stage",
        "add",
        "-q",
        "-n",
        "p",
        "-p",
        "layers.1",
        "-p",
        "whole.yaml:",
        "-p",
        "conf.toml:train.lr",
        "-p",
        "conf.py:LR,Model.depth",
        "-o",
        "o.txt",
        "echo done > o.txt",
    )
    dvc(repo, "repro", "-q")


PARAMS_CASES: list[tuple[str, Mutation, int]] = [
    ("unchanged", lambda r: None, 0),
    ("list-item", lambda r: _edit(r / "params.yaml", "[8, 16]", "[8, 32]"), 1),
    ("list-other-item", lambda r: _edit(r / "params.yaml", "[8, 16]", "[4, 16]"), 0),
    ("whole-file-new-key", lambda r: _edit(r / "whole.yaml", "a: 1\n", "a: 1\nz: 0\n"), 1),
    ("whole-file-nested", lambda r: _edit(r / "whole.yaml", "c: 2", "c: 3"), 1),
    ("toml", lambda r: _edit(r / "conf.toml", "lr = 0.1", "lr = 0.2"), 1),
    ("toml-other", lambda r: _edit(r / "conf.toml", "other = 1", "other = 2"), 0),
    ("python-constant", lambda r: _edit(r / "conf.py", "LR = 0.1", "LR = 0.5"), 1),
    ("python-class-attribute", lambda r: _edit(r / "conf.py", "depth = 3", "depth = 4"), 1),
    ("params-file-missing", lambda r: (r / "conf.toml").unlink(), 1),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in PARAMS_CASES]
)
def test_params_agree_with_dvc(dvc_repo: Path, mutate: Mutation, expected: int) -> None:
    _setup_params(dvc_repo)
    mutate(dvc_repo)
    _agree(dvc_repo, expected)
