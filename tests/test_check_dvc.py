"""check-dvc: hashing, .dvcignore, the hash cache, each finding type, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.dvc.check import DvcFiles, GitFacts, Scope, WorkTree, dvc_findings, fix_hint
from repro_hooks.dvc.files import parse_dvc_file
from repro_hooks.dvc.hashing import (
    CHUNK_SIZE,
    DvcIgnore,
    FileToHash,
    HashCache,
    dir_hash,
    hash_files,
    is_text_block,
    md5_file,
)
from repro_hooks.policy.config import Policy
from repro_hooks.report import Finding
from tests.dvc_helpers import dvc, dvc_status_rc, ours
from tests.helpers import big, git, write

# ---- hashing, the DVC way ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"a\r\nb\r\n", id="crlf-text"),
        pytest.param(b"\0\r\n" * 100, id="binary-crlf"),
        pytest.param(b"x" * (CHUNK_SIZE - 1) + b"\r\n" + b"y\r\n" * 10, id="crlf-across-chunks"),
        pytest.param(b"t\r\n" * 200_000 + bytes(range(256)) * 5000 + b"u\r\n" * 99, id="mixed"),
    ],
)
@pytest.mark.parametrize("algorithm", ["md5", "md5-dos2unix"])
def test_file_hash_equals_dvc_data(tmp_path: Path, content: bytes, algorithm: str) -> None:
    from dvc_data.hashfile.hash import file_md5

    path = write(tmp_path / "f", content)
    assert md5_file(path, algorithm) == file_md5(str(path), name=algorithm)


def test_text_heuristic_matches_dvc_data() -> None:
    from dvc_data.hashfile.istextfile import istextblock

    for block in (
        b"",
        b"abc",
        b"\0",
        bytes(range(256)),
        b"\x80" * 3 + b"a" * 7,
        b"\x80" * 4 + b"a" * 6,
    ):
        assert is_text_block(block) == istextblock(block)


def test_dir_hash_equals_dvc_tree() -> None:
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    entries = [("b/c.txt", "0" * 32), ("a.txt", "1" * 32), ("é.csv", "2" * 32)]
    tree = Tree()
    for rel, md5 in entries:
        tree.add(tuple(rel.split("/")), Meta(), HashInfo("md5", md5))
    tree.digest()
    assert dir_hash(entries) == tree.hash_info.value


def test_unsupported_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        md5_file(write(tmp_path / "f", b"x"), "sha256")


# ---- .dvcignore, against DVC's own matcher ----------------------------------------------------

IGNORE_FILES = {
    ".dvcignore": b"*.tmp\n!keep.tmp\nlogs/\n# comment\n\n/rooted.txt\n",
    "data/.dvcignore": b"raw/*.bin\n!raw/ok.bin\n",
}
IGNORE_PROBES = [
    ("data/x.tmp", False),
    ("data/keep.tmp", False),
    ("data/logs", True),
    ("logs/a", False),
    ("data/logs/a", False),
    ("rooted.txt", False),
    ("data/rooted.txt", False),
    ("data/raw/a.bin", False),
    ("data/raw/ok.bin", False),
    ("other/raw/a.bin", False),
    (".git/config", False),
    (".dvc/config", False),
    ("data/a.csv", False),
]


@pytest.mark.parametrize(("path", "is_dir"), IGNORE_PROBES)
def test_dvcignore_matches_dvc(tmp_path: Path, path: str, is_dir: bool) -> None:
    from dvc.fs import LocalFileSystem
    from dvc.ignore import DvcIgnoreFilter

    for name, content in IGNORE_FILES.items():
        write(tmp_path / name, content)
    (tmp_path / "data").mkdir(exist_ok=True)
    fs = LocalFileSystem()
    theirs = (
        DvcIgnoreFilter(fs, str(tmp_path)).is_ignored(
            fs, os.path.join(str(tmp_path), path), ignore_subrepos=False
        )
        if not is_dir
        else DvcIgnoreFilter(fs, str(tmp_path)).is_ignored_dir(os.path.join(str(tmp_path), path))
    )
    assert DvcIgnore(IGNORE_FILES).is_ignored(path, is_dir) == theirs


def test_dvcignore_empty_is_falsy() -> None:
    assert not DvcIgnore({})
    assert not DvcIgnore({".dvcignore": b"# only a comment\n"})
    assert DvcIgnore({}).is_ignored(".dvc/cache/x")


# ---- the hash cache ---------------------------------------------------------------------------


def _old_file(path: Path, content: bytes) -> FileToHash:
    write(path, content)
    os.utime(path, (time.time() - 60, time.time() - 60))
    return FileToHash(str(path), path.stat(), "md5")


def test_hash_cache_hits_and_survives_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # utime just set ctime to now: let the cache keep these files without waiting 2 s
    monkeypatch.setattr("repro_hooks.dvc.hashing.RACY_WINDOW_NS", 0)
    store = tmp_path / "git" / "repro-hooks" / "h.bin"
    files = [_old_file(tmp_path / f"f{i}", big(2 << 20 if i < 2 else 10, i)) for i in range(4)]
    cache = HashCache(store)
    first = hash_files(files, cache)
    cache.save()
    assert cache.misses == 4
    again = HashCache(store)
    assert hash_files(files, again) == first
    assert (again.hits, again.misses) == (4, 0)
    store.write_bytes(b"\x00garbage")
    corrupt = HashCache(store)
    assert corrupt.entries == {}
    assert hash_files(files, corrupt) == first


def test_hash_cache_does_not_keep_racy_entries(tmp_path: Path) -> None:
    path = write(tmp_path / "fresh", b"x")
    cache = HashCache(tmp_path / "h.bin")
    hash_files([FileToHash(str(path), path.stat(), "md5")], cache)
    assert cache.entries == {}
    cache.save()
    assert not (tmp_path / "h.bin").exists()


def test_hash_cache_change_of_metadata_misses(tmp_path: Path) -> None:
    f = _old_file(tmp_path / "f", b"one")
    cache = HashCache(None)
    hash_files([f], cache)
    write(tmp_path / "f", b"two")
    os.utime(tmp_path / "f", (time.time() - 30, time.time() - 30))
    changed = FileToHash(f.path, (tmp_path / "f").stat(), "md5")
    assert hash_files([changed], cache)[(f.path, "md5")] == md5_file(tmp_path / "f")


# ---- the pure core ----------------------------------------------------------------------------


def test_core_reports_each_rule_without_io() -> None:
    dvc_file = parse_dvc_file(
        b"outs:\n- md5: d41d8cd98f00b204e9800998ecf8427e\n  size: 1\n  hash: md5\n  path: a.csv\n",
        "a.csv.dvc",
    )
    files = DvcFiles({"a.csv.dvc": dvc_file}, (), {"bad.dvc": "malformed YAML"})
    facts = GitFacts(tracked=["raw.parquet", "a.csv/inner"], not_ignored_outputs=["a.csv"])
    tree = WorkTree({("a.csv", "md5"): "1" * 32}, {"a.csv": True})
    found = dvc_findings(files, facts, tree, Policy())
    assert sorted((f.path, f.rule) for f in found) == [
        ("a.csv", "not-ignored"),
        ("a.csv", "stale-dvc"),
        ("a.csv/inner", "data-in-git"),
        ("bad.dvc", "malformed-dvc"),
        ("raw.parquet", "data-in-git"),
    ]
    scoped = dvc_findings(files, facts, tree, Policy(), Scope(("raw.parquet",)))
    assert [f.rule for f in scoped] == ["data-in-git"]
    assert "dvc add" in fix_hint(found)
    assert fix_hint([]) == ""


def test_fix_hint_lists_each_rule_once() -> None:
    hint = fix_hint([Finding("a", "stale-lock", "x"), Finding("b", "stale-lock", "y")])
    assert hint.count("dvc repro") == 1


# ---- each finding type through the command line -----------------------------------------------


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check-dvc", *args])
    return result.exit_code, result.output


def test_clean_repository_passes(dvc_repo: Path) -> None:
    assert _invoke() == (0, "")


def test_data_in_git_raw(dvc_repo: Path) -> None:
    write(dvc_repo / "tables/raw.csv", "a\n")
    git(dvc_repo, "add", "tables/raw.csv")
    code, out = _invoke()
    assert code == 1
    assert out.startswith("tables/raw.csv: data file stored in git\n\nHow to fix:\n")
    assert "git rm --cached" in out


def test_data_in_git_and_a_dvc_output(dvc_repo: Path) -> None:
    write(dvc_repo / "data/x.bin", b"1")
    dvc(dvc_repo, "add", "-q", "data")
    git(dvc_repo, "add", "-f", "data/x.bin")
    code, out = _invoke()
    assert code == 1
    assert "data/x.bin: in git and also a DVC output (data, data.dvc)" in out


def test_cache_false_output_may_be_in_git(dvc_repo: Path) -> None:
    write(dvc_repo / "in.txt", "i\n")
    dvc(
        dvc_repo,
        "stage",
        "add",
        "-q",
        "-n",
        "m",
        "-d",
        "in.txt",
        "-M",
        "metrics.json",
        "echo '{\"acc\": 1}' > metrics.json",
    )
    dvc(dvc_repo, "repro", "-q")
    git(dvc_repo, "add", "-A")
    assert _invoke() == (0, "")


def test_untracked_data_never_blocks_a_commit(dvc_repo: Path) -> None:
    """What the commit does not contain cannot make it irreproducible:
    untracked data (git-ignored or not) and ML tools' output folders pass; staged data does not."""
    write(dvc_repo / "loose.csv", "a\n")
    write(dvc_repo / "hidden/model.pt", b"w")
    for folder in (
        "outputs/2024-01-01/10-00-00",
        "multirun/0",
        "lightning_logs/version_0",
        "wandb/run-1/files",
        "checkpoints",
    ):
        write(dvc_repo / folder / "metrics.csv", "step,loss\n1,0.5\n")
    write(
        dvc_repo / ".gitignore",
        "hidden/\noutputs/\nmultirun/\nlightning_logs/\nwandb/\ncheckpoints/\n",
    )
    assert _invoke() == (0, "")
    git(dvc_repo, "add", "loose.csv")
    code, out = _invoke()
    assert code == 1 and out.startswith("loose.csv: data file stored in git\n")
    assert "data-exclude" in out


def test_tool_folders_are_not_data_when_staged(repo: Path) -> None:
    """Without `dvc init`, too: a staged log folder of an ML tool is not data (data-exclude
    defaults); a staged data file is."""
    write(repo / "lightning_logs/version_0/metrics.csv", "step\n1\n")
    write(repo / "sub/wandb/run-1/files/table.csv", "a\n")
    git(repo, "add", "-A")
    assert _invoke() == (0, "")
    write(repo / "data/train.parquet", b"PAR1")
    write(repo / "scratch.csv", "not staged\n")
    git(repo, "add", "data/train.parquet")
    code, out = _invoke()
    assert code == 1 and out.splitlines()[0] == "data/train.parquet: data file stored in git"


def test_data_exclude_from_config(dvc_repo: Path) -> None:
    write(dvc_repo / "fixtures/small.csv", "a\n")
    write(dvc_repo / "pyproject.toml", '[tool.repro-hooks]\ndata-exclude = ["fixtures/"]\n')
    assert _invoke() == (0, "")


def test_not_ignored_output(dvc_repo: Path) -> None:
    write(dvc_repo / "big.bin", b"x")
    dvc(dvc_repo, "add", "-q", "big.bin")
    (dvc_repo / ".gitignore").unlink()
    code, out = _invoke()
    assert code == 1
    assert out.startswith("big.bin: DVC output (big.bin.dvc) not ignored by git")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param("outs: [", "malformed YAML", id="yaml"),
        pytest.param("outs:\n- md5: abc\n  path: x\n", "md5 is not an md5 hash", id="md5"),
        pytest.param("outs:\n- path: /etc/passwd\n", "is absolute", id="absolute"),
        pytest.param("outs:\n- path: ../../outside\n", "escapes the repository", id="escape"),
    ],
)
def test_malformed_dvc_file(dvc_repo: Path, content: str, reason: str) -> None:
    write(dvc_repo / "x.dvc", content)
    code, out = _invoke()
    assert code == 1
    assert out.startswith("x.dvc: ")
    assert reason in out.splitlines()[0]
    assert "Traceback" not in out


def test_malformed_lock_and_yaml(dvc_repo: Path) -> None:
    write(dvc_repo / "dvc.yaml", "stages:\n  s:\n    cmd: 3\n")
    write(dvc_repo / "sub/dvc.yaml", "stages: {}\n")
    write(dvc_repo / "sub/dvc.lock", "schema: '9.9'\n")
    code, out = _invoke()
    assert code == 1
    assert "dvc.yaml: stage 's': cmd must be a string or a list, got 3" in out
    assert "sub/dvc.lock: unsupported dvc.lock schema" in out


def test_symlink_leading_outside_is_never_read(dvc_repo: Path, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.bin", b"outside")
    write(dvc_repo / "data/in.bin", b"inside")
    dvc(dvc_repo, "add", "-q", "data")
    (dvc_repo / "data/link.bin").symlink_to(secret)
    (dvc_repo / "direct.bin").symlink_to(secret)
    write(
        dvc_repo / "direct.bin.dvc",
        "outs:\n- md5: d41d8cd98f00b204e9800998ecf8427e\n  hash: md5\n  path: direct.bin\n",
    )
    (dvc_repo / "linked.dvc").symlink_to(write(tmp_path / "elsewhere.dvc", "outs: []\n"))
    code, out = _invoke()
    assert code == 1
    assert "data: data/link.bin: a symlink leading outside the repository: not read" in out
    assert "direct.bin: a symlink leading outside the repository: not read" in out
    assert "linked.dvc: a symlink leading outside the repository" in out


def test_paths_restrict_the_check(dvc_repo: Path) -> None:
    write(dvc_repo / "a/x.csv", "1\n")
    write(dvc_repo / "b/y.csv", "1\n")
    dvc(dvc_repo, "add", "-q", "a/x.csv", "b/y.csv")
    write(dvc_repo / "a/x.csv", "2\n")
    write(dvc_repo / "b/y.csv", "2\n")
    code, out = _invoke("b")
    assert code == 1
    assert out.startswith("b/y.csv: differs from b/y.csv.dvc")
    assert "a/x.csv" not in out
    assert _invoke("c")[0] == 0


def test_json_format(dvc_repo: Path) -> None:
    write(dvc_repo / "m.pkl", b"w")
    git(dvc_repo, "add", "m.pkl")
    code, out = _invoke("--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["findings"] == [
        {
            "path": "m.pkl",
            "rule": "data-in-git",
            "commit": None,
            "message": "data file stored in git",
        }
    ]


def test_templated_stages_are_checked_like_any_other(dvc_repo: Path) -> None:
    """Resolved here as DVC resolves them (no `dvc status`), verdicts at the path
    and generated stage (`copy@a`) DVC names."""
    write(dvc_repo / "params.yaml", "items: [a, b]\n")
    write(
        dvc_repo / "dvc.yaml",
        (
            "stages:\n  copy:\n    foreach: ${items}\n    do:\n"
            "      cmd: echo ${item} > out-${item}.txt\n      outs:\n      - out-${item}.txt\n"
        ),
    )
    dvc(dvc_repo, "repro", "-q")
    assert _invoke() == (0, "")
    write(dvc_repo / "out-a.txt", "changed\n")
    code, out = _invoke()
    assert code == 1
    assert out.startswith("out-a.txt: out of stage 'copy@a' (dvc.lock): ")
    assert dvc_status_rc(dvc_repo) == 1


def test_non_frozen_import_is_left_to_dvc(dvc_repo: Path, tmp_path: Path) -> None:
    """An import from a URL (here a local path outside the repository) is not frozen: only DVC
    can ask its source, so `dvc status` decides, at the .dvc file."""
    write(tmp_path / "src.csv", "a\n1\n")
    dvc(dvc_repo, "import-url", "-q", str(tmp_path / "src.csv"), "imported.csv")
    dvc(dvc_repo, "unfreeze", "imported.csv.dvc")  # import-url freezes it
    assert _invoke() == (0, "")
    write(tmp_path / "src.csv", "a\n2\n")
    code, out = _invoke()
    assert code == 1
    assert out.startswith(f"{tmp_path / 'src.csv'}: dvc status: imported.csv.dvc: changed deps")
    assert dvc_status_rc(dvc_repo) == 1


def test_frozen_dvc_file_checks_its_outs_not_its_deps(dvc_repo: Path) -> None:
    """`dvc import-url` of a path in the repository writes a frozen .dvc file whose dependency
    records a hash. DVC does not check a frozen stage's dependencies ("its dependencies are not
    going to be shown"), so a changed source is no finding; a changed output still is."""
    write(dvc_repo / "src/raw.csv", "a\n1\n")
    dvc(dvc_repo, "import-url", "-q", "src/raw.csv", "imported.csv")
    recorded = (dvc_repo / "imported.csv.dvc").read_text()
    assert "frozen: true" in recorded
    assert "path: src/raw.csv" in recorded
    assert _invoke() == (0, "")
    write(dvc_repo / "src/raw.csv", "a\n2\n")
    assert dvc_status_rc(dvc_repo) == 0
    assert _invoke() == (0, "")
    write(dvc_repo / "imported.csv", "edited\n")
    assert dvc_status_rc(dvc_repo) == 1
    code, out = _invoke()
    assert code == 1
    assert out.startswith("imported.csv: ")


def test_always_changed_dvc_file_is_stale_like_dvc_says(dvc_repo: Path) -> None:
    """`always_changed: true` in a .dvc file: DVC reports it changed on every status."""
    write(dvc_repo / "data.csv", "a\n1\n")
    dvc(dvc_repo, "add", "-q", "data.csv")
    with (dvc_repo / "data.csv.dvc").open("a") as fh:
        fh.write("always_changed: true\n")
    assert dvc_status_rc(dvc_repo) == 1
    code, out = _invoke("--format", "json")
    assert code == 1
    assert [(f["path"], f["rule"], f["message"]) for f in json.loads(out)["findings"]] == [
        ("data.csv.dvc", "stale-dvc", "always_changed: DVC reports it changed on every status")
    ]


def test_bare_repository_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q", "--bare", "b.git")
    monkeypatch.chdir(tmp_path / "b.git")
    code, out = _invoke()
    assert code == 2
    assert "bare repository" in out


def test_fast_path_never_imports_dvc_or_mlflow(dvc_repo: Path) -> None:
    write(dvc_repo / ".dvcignore", "*.tmp\n")
    write(dvc_repo / "data/a.csv", "a\n")
    write(dvc_repo / "params.yaml", "lr: 1\n")
    dvc(dvc_repo, "add", "-q", "data")
    dvc(
        dvc_repo,
        "stage",
        "add",
        "-q",
        "-n",
        "s",
        "-d",
        "data",
        "-p",
        "lr",
        "-o",
        "o.txt",
        "cp data/a.csv o.txt",
    )
    dvc(dvc_repo, "repro", "-q")
    probe = (
        "import sys\nfrom repro_hooks.cli import main\nrc = main(['check-dvc'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dvc', 'dvc_data', 'dvc_objects', 'mlflow'))\nprint(rc, bad)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=dvc_repo, capture_output=True, text=True, check=False
    )
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
    assert ours(dvc_repo) == (0, [])


def test_cached_metrics_are_outputs_like_any_other(dvc_repo: Path) -> None:
    write(dvc_repo / "in.txt", "i\n")
    dvc(
        dvc_repo,
        "stage",
        "add",
        "-q",
        "-n",
        "m",
        "-d",
        "in.txt",
        "-m",
        "m.json",
        "echo '{\"acc\": 1}' > m.json",
    )
    dvc(dvc_repo, "repro", "-q")
    assert _invoke() == (0, "")  # dvc repro wrote /m.json into .gitignore: DVC caches metrics
    git(dvc_repo, "add", "-f", "m.json")
    code, out = _invoke()
    assert code == 1
    assert out.startswith("m.json: in git and also a DVC output (m.json, dvc.yaml)")


def test_path_outside_the_repository_is_a_usage_error(dvc_repo: Path) -> None:
    code, out = _invoke("../elsewhere")
    assert code == 2
    assert "outside the repository" in out


def _pipeline(yaml_text: str, lock_text: str | None) -> DvcFiles:
    from repro_hooks.dvc.check import Pipeline
    from repro_hooks.dvc.files import parse_dvc_lock, parse_dvc_yaml

    stages = parse_dvc_yaml(yaml_text.encode(), "dvc.yaml")
    locked = parse_dvc_lock(lock_text.encode(), "dvc.lock") if lock_text else {}
    return DvcFiles({}, [Pipeline("dvc.yaml", "dvc.lock", stages, locked)])


LOCK = """schema: '2.0'
stages:
  s:
    cmd: run
    params:
      params.yaml:
        lr: 0.1
    outs:
    - path: o.bin
      hash: md5
      md5: d41d8cd98f00b204e9800998ecf8427e
      size: 0
"""


@pytest.mark.parametrize(
    ("yaml_text", "lock_text", "tree", "expected"),
    [
        pytest.param(
            "stages:\n  s:\n    cmd: run\n",
            None,
            WorkTree(),
            [("dvc.yaml", "has no deps or outs: DVC always runs it")],
            id="callback",
        ),
        pytest.param(
            "stages:\n  s:\n    cmd: run\n    params: [lr]\n    outs: [o.bin]\n",
            LOCK,
            WorkTree(
                exists={"o.bin": True, "params.yaml": True},
                hashes={("o.bin", "md5"): "d41d8cd98f00b204e9800998ecf8427e"},
                params_errors={"params.yaml": "ParserError: bad"},
            ),
            [("params.yaml", "params file unreadable: ParserError: bad")],
            id="unreadable",
        ),
        pytest.param(
            "stages:\n  s:\n    cmd: run\n    params: [lr]\n    outs: [o.bin]\n",
            LOCK.replace("    params:\n      params.yaml:\n        lr: 0.1\n", ""),
            WorkTree(
                exists={"o.bin": True, "params.yaml": True},
                hashes={("o.bin", "md5"): "d41d8cd98f00b204e9800998ecf8427e"},
                params={"params.yaml": {"lr": 0.1}},
            ),
            [("params.yaml", "params not in dvc.lock")],
            id="params-not-locked",
        ),
        pytest.param(
            "stages:\n  s:\n    cmd: run\n    params: [lr]\n    outs: [o.bin]\n",
            LOCK,
            WorkTree(
                exists={"o.bin": True, "params.yaml": True},
                hashes={("o.bin", "md5"): "d41d8cd98f00b204e9800998ecf8427e"},
                params={"params.yaml": {"lr": (0.1,)}},
                in_cache={},
            ),
            [("o.bin", "not in the DVC cache"), ("params.yaml", "lr 0.1 locked, (0.1,) now")],
            id="tuple-and-cache",
        ),
    ],
)
def test_core_stage_edge_cases(
    yaml_text: str, lock_text: str | None, tree: WorkTree, expected: list[tuple[str, str]]
) -> None:
    found = sorted(dvc_findings(_pipeline(yaml_text, lock_text), GitFacts(), tree, Policy()))
    assert len(found) == len(expected), found
    for finding, (path, text) in zip(found, expected, strict=True):
        assert finding.path == path
        assert text in finding.message


def test_output_that_exists_but_could_not_be_hashed() -> None:
    dvc_file = parse_dvc_file(
        b"outs:\n- md5: d41d8cd98f00b204e9800998ecf8427e\n  size: 0\n  hash: md5\n  path: a\n",
        "a.dvc",
    )
    tree = WorkTree(exists={"a": True}, hashes={})
    (finding,) = dvc_findings(DvcFiles({"a.dvc": dvc_file}), GitFacts(), tree, Policy())
    assert (finding.rule, finding.message) == (
        "stale-dvc",
        "differs from a.dvc (could not be read to hash it)",
    )
