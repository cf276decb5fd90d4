"""Core: the large-file check in-process, on real git repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git, parse_raw_diff
from repro_hooks.large_files.check import (
    check_large_files,
    collect_blobs,
    fix_hint,
    is_lfs_pointer,
)
from repro_hooks.large_files.run import push_range_from_env
from repro_hooks.policy.config import Policy
from tests.helpers import big, commit, git, write

KIB = 1024
POLICY = Policy(max_size=500 * KIB)
POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 12345\n"
)


def staged_findings(repo: Path, policy: Policy = POLICY) -> dict[str, str]:
    g = Git.discover(repo)
    return {f.path: f.rule for f in check_large_files(g, policy, collect_blobs(g))}


def test_clean_and_large(repo: Path) -> None:
    write(repo / "small.txt", "hello\n")
    write(repo / "data/big.bin", big(600 * KIB))
    git(repo, "add", "-A")
    findings = check_large_files(Git.discover(repo), POLICY, collect_blobs(Git.discover(repo)))
    assert [(f.path, f.rule) for f in findings] == [("data/big.bin", "large-file")]
    assert findings[0].message == "600 KiB in git, over the 500 KiB size limit"
    assert findings[0].raw_path == b"data/big.bin"


def test_exactly_at_limit_passes(repo: Path) -> None:
    write(repo / "edge.bin", big(500 * KIB))
    git(repo, "add", "-A")
    assert staged_findings(repo) == {}


def test_non_ascii_name(repo: Path) -> None:
    write(repo / "données/entraînement ü.csv", big(600 * KIB))
    git(repo, "add", "-A")
    assert staged_findings(repo) == {"données/entraînement ü.csv": "large-file"}


def test_newline_tab_and_dash_names(repo: Path) -> None:
    write(repo / "a\nb.bin", big(600 * KIB))
    write(repo / "-lead\t.bin", big(600 * KIB))
    write(repo / "with space.bin", big(600 * KIB))
    git(repo, "add", "-A")
    assert staged_findings(repo) == {
        "a\\nb.bin": "large-file",
        "-lead\\t.bin": "large-file",
        "with space.bin": "large-file",
    }


def test_invalid_utf8_name(repo: Path) -> None:
    name = os.fsdecode(b"bad\xff.bin")
    write(repo / name, big(600 * KIB))
    git(repo, "add", "-A")
    assert staged_findings(repo) == {"bad\\xff.bin": "large-file"}


def test_tracked_file_that_grew(repo: Path) -> None:
    write(repo / "log.txt", "small\n")
    commit(repo, "small")
    write(repo / "log.txt", big(700 * KIB))
    git(repo, "add", "log.txt")
    assert staged_findings(repo) == {"log.txt": "large-file"}


def test_staged_large_then_shrunk_in_working_tree(repo: Path) -> None:
    write(repo / "model.pt", big(800 * KIB))
    git(repo, "add", "model.pt")
    write(repo / "model.pt", "tiny")
    assert staged_findings(repo) == {"model.pt": "large-file"}


def test_staged_small_then_grown_in_working_tree_passes(repo: Path) -> None:
    write(repo / "x.bin", "tiny")
    git(repo, "add", "x.bin")
    write(repo / "x.bin", big(800 * KIB))
    assert staged_findings(repo) == {}


def test_raw_blob_under_lfs_pattern(repo: Path) -> None:
    write(repo / ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
    write(repo / "weights.bin", big(900 * KIB))
    write(repo / "tiny.bin", b"not a pointer")
    write(repo / "empty.bin", b"")
    git(repo, "add", "-A")
    assert staged_findings(repo) == {"weights.bin": "lfs-pointer", "tiny.bin": "lfs-pointer"}


def test_real_lfs_pointer_is_skipped(repo: Path) -> None:
    write(repo / ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
    write(repo / "weights.bin", POINTER)
    git(repo, "add", "-A")
    assert staged_findings(repo, Policy(max_size=100)) == {}


def test_a_skipped_blob_does_not_end_the_check(repo: Path) -> None:
    """An excluded path or a real LFS pointer is skipped, and the blobs after it are still
    checked; a raw blob of one byte under filter=lfs is no pointer either."""
    write(repo / ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
    write(repo / "a.bin", POINTER)
    write(repo / "b-excluded.dat", big(600 * KIB))
    write(repo / "c.dat", big(600 * KIB, seed=1))
    write(repo / "d.bin", b"x")
    git(repo, "add", "-A")
    policy = Policy(max_size=500 * KIB, exclude=("b-excluded.dat",))
    assert staged_findings(repo, policy) == {"c.dat": "large-file", "d.bin": "lfs-pointer"}


def test_pointer_detection() -> None:
    assert is_lfs_pointer(POINTER)
    assert not is_lfs_pointer(b"version https://git-lfs.github.com/spec/v1\n")
    assert not is_lfs_pointer(POINTER + b"x" * 2000)
    # git-lfs writes pointers under 1024 bytes: one of exactly 1024 is a blob like any other
    padded = POINTER + b"x" * (1023 - len(POINTER)) + b"\n"
    assert len(padded) == 1024
    assert not is_lfs_pointer(padded)
    assert is_lfs_pointer(padded[:-2] + b"\n")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(POINTER.replace(b"size 12345\n", b""), id="no-size-line"),
        pytest.param(POINTER.replace(b"oid sha256:", b"oid md5:"), id="no-sha256-oid"),
        pytest.param(POINTER.replace(b"version https", b"ver https"), id="no-version-line"),
    ],
)
def test_a_pointer_needs_version_oid_and_size(repo: Path, content: bytes) -> None:
    """git-lfs's spec v1 requires the three keys: a blob that lacks one is no pointer, and under
    filter=lfs it is a raw blob where a pointer belongs."""
    assert not is_lfs_pointer(content)
    write(repo / ".gitattributes", "*.bin filter=lfs diff=lfs merge=lfs -text\n")
    write(repo / "weights.bin", content)
    git(repo, "add", "-A")
    assert staged_findings(repo) == {"weights.bin": "lfs-pointer"}


def test_symlinks_sized_as_link_text(repo: Path) -> None:
    os.symlink("does/not/exist", repo / "dangling")
    write(repo / "target.bin", "x")
    os.symlink("target.bin", repo / "link")
    git(repo, "add", "-A")
    assert staged_findings(repo) == {}
    assert staged_findings(repo, Policy(max_size=5)) == {
        "dangling": "large-file",
        "link": "large-file",
    }


def test_submodule_gitlink_is_skipped(repo: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    write(sub / "big.bin", big(900 * KIB))
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "x")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub")
    assert staged_findings(repo, Policy(max_size=1)) == {".gitmodules": "large-file"}


def test_initial_commit_without_head(empty_repo: Path) -> None:
    write(empty_repo / "big.bin", big(600 * KIB))
    git(empty_repo, "add", "-A")
    assert staged_findings(empty_repo) == {"big.bin": "large-file"}


def test_rename_and_type_change_are_checked(repo: Path) -> None:
    write(repo / "old.bin", big(600 * KIB))
    commit(repo, "big")
    git(repo, "mv", "old.bin", "new.bin")
    assert staged_findings(repo) == {"new.bin": "large-file"}


def test_deleted_file_is_not_reported(repo: Path) -> None:
    write(repo / "old.bin", big(600 * KIB))
    commit(repo, "big")
    git(repo, "rm", "-q", "old.bin")
    assert staged_findings(repo) == {}


def test_per_glob_limits_and_exclude(repo: Path) -> None:
    write(repo / "nb/analysis.ipynb", big(800 * KIB))
    write(repo / "vendor/lib.so", big(900 * KIB))
    write(repo / "assets/logo.png", big(200 * KIB))
    git(repo, "add", "-A")
    policy = Policy(
        max_size=500 * KIB,
        size_limits=(("*.ipynb", 1024 * KIB), ("assets/**", 100 * KIB)),
        exclude=("vendor/**",),
    )
    assert staged_findings(repo, policy) == {"assets/logo.png": "large-file"}


def test_explicit_paths_check_index_blobs(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(repo / "committed.bin", big(600 * KIB))
    write(repo / "ok.txt", "fine")
    commit(repo, "already committed")
    g = Git.discover(repo)
    blobs = collect_blobs(g, paths=["committed.bin", "ok.txt", "untracked.bin"], cwd=repo)
    assert [b.path for b in blobs] == [b"committed.bin", b"ok.txt"]
    assert [f.path for f in check_large_files(g, POLICY, blobs)] == ["committed.bin"]
    # paths are relative to the directory the command runs in
    (repo / "sub").mkdir()
    assert [b.path for b in collect_blobs(g, paths=["../committed.bin"], cwd=repo / "sub")] == [
        b"committed.bin"
    ]
    with pytest.raises(ReproHooksError, match="outside the repository"):
        collect_blobs(g, paths=["../../elsewhere.bin"], cwd=repo)
    with pytest.raises(ReproHooksError, match="outside the repository"):
        collect_blobs(g, paths=["/etc/passwd"], cwd=repo)  # absolute, from the root
    assert [b.path for b in collect_blobs(g, paths=[str(repo / "ok.txt")], cwd=repo)] == [b"ok.txt"]
    assert [b.path for b in collect_blobs(g, check_all=True)] == [b"committed.bin", b"ok.txt"]


def test_range_catches_add_then_delete(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    write(repo / "dump.csv", big(700 * KIB))
    commit(repo, "add dump")
    added_in = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "rm", "-q", "dump.csv")
    commit(repo, "remove dump")
    g = Git.discover(repo)
    blobs = collect_blobs(g, rev_args=["HEAD", f"^{base}"])
    findings = check_large_files(g, POLICY, blobs)
    assert [(f.path, f.commit) for f in findings] == [("dump.csv", added_in)]
    assert "commits being pushed" in fix_hint(findings, in_history=True)


def test_range_reports_a_blob_once(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    data = big(700 * KIB)
    write(repo / "a.bin", data)
    commit(repo, "one")
    write(repo / "b.txt", "x")
    commit(repo, "two")
    g = Git.discover(repo)
    findings = check_large_files(g, POLICY, collect_blobs(g, rev_args=["HEAD", f"^{base}"]))
    assert len(findings) == 1


def test_push_range_from_env() -> None:
    assert push_range_from_env({}) is None
    assert push_range_from_env({"PRE_COMMIT_FROM_REF": "a", "PRE_COMMIT_TO_REF": "b"}) == [
        "b",
        "^a",
    ]
    assert push_range_from_env(
        {"PRE_COMMIT_LOCAL_BRANCH": "refs/heads/x", "PRE_COMMIT_REMOTE_NAME": "origin"}
    ) == ["refs/heads/x", "--not", "--remotes=origin"]


def test_fix_hint_shapes() -> None:
    from repro_hooks.report import Finding

    one = [Finding("my data.csv", "large-file", "big")]
    assert "git rm --cached -q -- 'my data.csv'" in fix_hint(one, in_history=False)
    assert "git add -- 'my data.csv.dvc' .gitignore" in fix_hint(one, in_history=False)
    two = [*one, Finding("sub/b[1].csv", "large-file", "big")]
    assert "dvc add -- 'my data.csv' 'sub/b[1].csv'" in fix_hint(two, in_history=False)
    assert (
        "git --literal-pathspecs add -- 'my data.csv.dvc' 'sub/b[1].csv.dvc' .gitignore "
        "sub/.gitignore"
    ) in fix_hint(two, in_history=False)
    notebook = [Finding("nb.ipynb", "large-file", "big")]
    assert "jupyter nbconvert --clear-output --inplace nb.ipynb" in fix_hint(
        notebook, in_history=False
    )
    assert "dvc add" not in fix_hint(notebook, in_history=False)
    escaped = [Finding("line\\nbreak.bin", "large-file", "big", None, b"line\nbreak.bin")]
    hint = fix_hint(escaped, in_history=False, fix_command=None)
    assert "dvc add" not in hint and "cannot be typed as printed" in hint
    lfs = [Finding("w.bin", "lfs-pointer", "raw")]
    assert "git lfs install" in fix_hint(lfs, in_history=False)


def test_parse_raw_diff_with_renames_and_commits() -> None:
    raw = (
        b"c0ffee\0"
        b":100644 100644 " + b"a" * 40 + b" " + b"b" * 40 + b" R100\0old\0new\0"
        b":000000 100644 " + b"0" * 40 + b" " + b"c" * 40 + b" A\0added\0"
    )
    blobs = parse_raw_diff(raw, with_commits=True)
    assert [(b.path, b.sha[0], b.commit) for b in blobs] == [
        (b"new", "b", "c0ffee"),
        (b"added", "c", "c0ffee"),
    ]


def test_not_a_repository(tmp_path: Path) -> None:
    from repro_hooks.errors import GitError

    with pytest.raises(GitError, match="not a git repository"):
        Git.discover(tmp_path)


@pytest.mark.parametrize(
    ("path", "slow"),
    [
        ("a/b.csv", False),
        ("x.y/z", False),
        ("a b/é", False),
        ("/abs", True),
        ("", True),
        ("./x", True),
        ("a/./b", True),
        ("a/../b", True),
        ("..", True),
        (".hidden", True),
        ("a/.h", True),
        ("a//b", True),
        ("dir/", True),
    ],
)
def test_paths_that_need_resolving(path: str, slow: bool) -> None:
    """The one-pass screen over all command-line paths: anything not plainly root-relative and
    normal takes the per-path resolution (which rejects paths outside the repository)."""
    from repro_hooks.large_files.check import _all_plain

    for joined in (path, "ok\0" + path, path + "\0ok", "ok\0" + path + "\0ok"):
        assert _all_plain(joined) is not slow
