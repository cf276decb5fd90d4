"""repro-hooks scan: the policy over commits (core, CLI, and real pushes through pre-commit and
the plain pre-push hook)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Blob, Git
from repro_hooks.history.baseline import load_baseline
from repro_hooks.history.refs import (
    RefUpdate,
    parse_pre_push_lines,
    parse_pre_receive_lines,
    pre_push_rev_args,
    pre_receive_rev_args,
)
from repro_hooks.history.review import scan_commits
from repro_hooks.policy.config import Policy
from tests.helpers import big, commit, git, install_local_hooks, run_cli, write

Z = "0" * 40
A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40
BIG = 600 * 1024  # over the default 500 KiB size limit


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.output


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def with_remote(tmp_path: Path, repo: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "--no-verify", "origin", "main")
    return remote


def push(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "push", "origin", *args], cwd=repo, capture_output=True, text=True, check=False
    )


# ---- core ---------------------------------------------------------------------------------------


def test_parse_pre_push_lines() -> None:
    text = f"refs/heads/main {A} refs/heads/main {B}\n\nHEAD~1 x {C} refs/heads/x {Z}\n"
    assert parse_pre_push_lines(text) == [
        RefUpdate("refs/heads/main", B, A),
        RefUpdate("refs/heads/x", Z, C),
    ]


def test_parse_pre_receive_lines() -> None:
    assert parse_pre_receive_lines(f"{Z} {A} refs/heads/new\n\n{B} {Z} refs/tags/v1\n") == [
        RefUpdate("refs/heads/new", Z, A),
        RefUpdate("refs/tags/v1", B, Z),
    ]
    with pytest.raises(ReproHooksError) as raised:
        parse_pre_receive_lines(f"{Z} {A}\n")
    assert str(raised.value) == f"pre-receive input: expected 3 fields, got '{Z} {A}'"
    with pytest.raises(ReproHooksError) as raised:
        parse_pre_push_lines(f"refs/heads/main {A}\n")
    assert str(raised.value) == f"pre-push input: expected 4 fields, got 'refs/heads/main {A}'"


@pytest.mark.parametrize(
    ("updates", "known", "remote_has", "expected"),
    [
        pytest.param([RefUpdate("m", B, A)], {B}, None, [A, f"^{B}"], id="fast-forward"),
        pytest.param([RefUpdate("n", Z, A)], set(), {C}, [A, f"^{C}"], id="new-branch"),
        pytest.param([RefUpdate("n", Z, A)], set(), None, [A], id="new-branch-remote-unknown"),
        pytest.param([RefUpdate("m", B, A)], set(), {C}, [A, f"^{C}"], id="unknown-base"),
        pytest.param([RefUpdate("m", B, Z)], {B}, None, None, id="deletion"),
        pytest.param(
            [RefUpdate("m", B, A), RefUpdate("d", C, Z)], {B, C}, None, [A, f"^{B}"], id="mixed"
        ),
        pytest.param(
            [RefUpdate("m", B, A), RefUpdate("d", C, Z)],
            {B},
            {D},
            [A, f"^{B}"],
            id="a-deletion-of-an-unknown-tip-adds-no-base",
        ),
        pytest.param(
            [RefUpdate("m", B, A), RefUpdate("n", Z, C)],
            {B},
            {D},
            [A, C, f"^{B}", f"^{D}"],
            id="known-base-and-new-branch",
        ),
    ],
)
def test_pre_push_rev_args(
    updates: list[RefUpdate],
    known: set[str],
    remote_has: set[str] | None,
    expected: list[str] | None,
) -> None:
    """The remote's tips come from the remote (`git ls-remote`), never from local
    remote-tracking refs; when the remote cannot be asked, nothing more is excluded."""
    assert pre_push_rev_args(updates, known, remote_has) == expected


def test_pre_receive_rev_args() -> None:
    assert pre_receive_rev_args([RefUpdate("m", B, Z)]) is None
    assert pre_receive_rev_args([RefUpdate("m", B, A), RefUpdate("t", Z, A)]) == [
        A,
        "--not",
        "--all",
    ]


def test_scan_commits_sees_a_file_added_then_deleted(repo: Path) -> None:
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    git(repo, "rm", "-q", "big.bin")
    commit(repo, "delete")
    findings, sha_of = scan_commits(Git.discover(repo), Policy(), ["--all"])
    assert [(f.path, f.rule) for f in findings] == [("big.bin", "large-file")]
    assert sha_of[("big.bin", findings[0].commit)]


def test_a_prefetched_walk_is_the_walk_and_one_not_read_is_ended(repo: Path) -> None:
    """`prefetch_walk` starts git before the caller needs it: the walk that reads it is the walk
    it would have made; one started for other arguments, or dropped unread, is killed and
    reaped (no git process outlives the scan)."""
    write(repo / "big.bin", big(BIG))
    commit(repo, "big")
    git(repo, "rm", "-q", "big.bin")
    commit(repo, "rm")
    args = {"sources": True, "commit_sizes": True}
    expected = Git.discover().walk_history(["--all"], **args)
    assert any(b.path == b"big.bin" for b in expected.blobs)

    g = Git.discover()
    g.prefetch_walk(["--all"], **args)
    started = g._prefetched_walk
    assert g.walk_history(["--all"], **args) == expected
    assert started is not None and started.proc.returncode == 0

    g.prefetch_walk(["HEAD~1"], **args)
    other = g._prefetched_walk
    assert g.walk_history(["--all"], **args) == expected
    assert other is not None and other.proc.returncode is not None  # ended, not read

    g.prefetch_walk(["--all"], **args)
    unread = g._prefetched_walk
    g.drop_prefetched_walk()
    assert unread is not None and unread.sizer is not None
    assert unread.proc.returncode is not None and unread.sizer._proc.returncode is not None
    assert g._prefetched_walk is None


def test_the_fast_path_starts_the_walk_the_scan_selects(repo: Path) -> None:
    """`scan --all-history`'s fast path starts git log before it imports `select_commits`:
    with other arguments its early walk would be thrown away and the scan walk again."""
    from repro_hooks.history.all_history import ALL_HISTORY
    from repro_hooks.history.refs import select_commits

    chosen = select_commits(
        Git.discover(), rev_range=None, all_history=True, pre_push=None, stdin_text=None, env={}
    )
    assert chosen is not None and tuple(chosen.rev_args) == ALL_HISTORY


def test_the_walk_is_in_git_log_reverse_order(repo: Path) -> None:
    """The walk reads `git log` newest first and puts it oldest first: every list and dict
    is in the order `git log --reverse` gives, through merges (each parent's diff), an octopus,
    a second root and refs that reach the same commits (`--source`)."""
    for i in range(3):
        write(repo / f"f{i}.txt", f"{i}\n")
        commit(repo, f"c{i}")
    git(repo, "checkout", "-q", "-b", "side", "HEAD~2")
    for i in range(2):
        write(repo / f"s{i}.bin", big(100 + i))
        write(repo / "f0.txt", f"side {i}\n")
        commit(repo, f"s{i}")
    git(repo, "checkout", "-q", "-b", "third", "main~1")
    write(repo / "t.txt", "t\n")
    commit(repo, "t")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "--no-verify", "side", "third")  # an octopus
    write(repo / "m.txt", "m\n")
    commit(repo, "m")
    git(repo, "merge", "-q", "--no-edit", "--no-verify", "-s", "ours", "side")
    git(repo, "checkout", "-q", "--orphan", "other")
    write(repo / "o.txt", "o\n")
    commit(repo, "o")
    git(repo, "tag", "-a", "-m", "t", "v1", "main~1")
    from repro_hooks.git.history import LOG_ARGS, LOG_PINS, RawDiffParser
    from repro_hooks.git.objects import parse_batch_check

    g = Git.discover()
    walk = g.walk_history(["--all"], sources=True, commit_sizes=True)
    log = git(repo, *LOG_PINS, *LOG_ARGS, "--reverse", "--source", "--format=%H %S", "--all")
    oracle = RawDiffParser(with_commits=True)
    oracle.feed(log.encode().split(b"\0"))
    assert walk.blobs == [b for b in oracle.blobs if b.sha.strip("0")]
    assert list(walk.sources.items()) == list(oracle.sources.items())
    sized = parse_batch_check(
        g.run(
            "cat-file",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
            input="".join(f"{c}\n" for c in oracle.commits).encode(),
        )
    )
    assert list(walk.commit_sizes.items()) == [
        (c, sized[c].size) for c in dict.fromkeys(oracle.commits)
    ]
    assert walk.object_info is not None
    assert walk.object_info.keys() == {b.sha for b in walk.blobs}  # a lookup table
    assert len({b.commit for b in walk.blobs}) >= 8 and len(oracle.commits) > len(walk.sources)


def test_data_and_malformed_dvc_and_lfs_pointer(repo: Path) -> None:
    write(repo / "tiny.csv", "a,b\n1,2\n")
    write(repo / "empty.csv", "")
    write(repo / "bad.dvc", "outs: 3\n")
    write(
        repo / "good.dvc",
        "outs:\n- md5: d41d8cd98f00b204e9800998ecf8427e\n  size: 1\n  hash: md5\n  path: x\n",
    )
    write(repo / "sub/dvc.yaml", "stages: [1]\n")
    write(repo / "dvc.lock", "schema: '9'\n")
    write(
        repo / "model.pt",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "1" * 64 + "\nsize 123\n",
    )
    commit(repo, "files")
    findings, _ = scan_commits(Git.discover(repo), Policy(), ["HEAD~1..HEAD"])
    assert sorted((f.path, f.rule) for f in findings) == [
        ("bad.dvc", "malformed-dvc"),
        ("dvc.lock", "malformed-dvc"),
        ("sub/dvc.yaml", "malformed-dvc"),
        ("tiny.csv", "data-in-git"),
    ]


def test_large_data_file_is_reported_once(repo: Path) -> None:
    write(repo / "train.csv", big(BIG))
    commit(repo, "add")
    findings, _ = scan_commits(Git.discover(repo), Policy(), ["--all"])
    assert [(f.path, f.rule) for f in findings] == [("train.csv", "large-file")]


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_range_and_formats(repo: Path) -> None:
    base = head(repo)
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    code, out = invoke("scan", "--range", f"{base}..HEAD")
    assert code == 1
    assert out.startswith("big.bin: 600 KiB in git, over the 500 KiB size limit (commit ")
    assert "dvc add" in out
    code, out = invoke("scan", "--range", "HEAD..HEAD")
    assert (code, out) == (0, "")
    code, out = invoke("scan", "--range", f"{base}..HEAD", "--format", "github")
    assert code == 1
    assert out.startswith("::error file=big.bin,title=large-file::600 KiB")
    code, out = invoke("scan", "--range", f"{base}..HEAD", "--max-size", "1MB")
    assert code == 0


def test_cli_usage_errors(repo: Path) -> None:
    code, out = invoke("scan")
    assert code == 2
    assert "nothing to scan" in out
    assert invoke("scan", "--range", "A..B", "--all-history")[0] == 2
    assert invoke("scan", "--range", "--all")[0] == 2
    assert invoke("scan", "origin")[0] == 2
    assert invoke("scan", "--all-history", "--max-size", "lots")[0] == 2
    code, out = invoke("scan", "--range", "nope..HEAD")
    assert code == 2
    assert out.startswith("repro-hooks: git log:")


def test_cli_pre_push_stdin(repo: Path, tmp_path: Path) -> None:
    with_remote(tmp_path, repo)
    old = head(repo)
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    new = head(repo)
    line = f"refs/heads/main {new} refs/heads/main {old}\n"
    code, out = invoke("scan", "--pre-push", "origin", "url", input=line)
    assert code == 1
    assert "big.bin" in out
    deletion = f"(delete) {Z} refs/heads/main {old}\n"
    assert invoke("scan", "--pre-push", "origin", "url", input=deletion) == (0, "")
    # new branch, remote unreachable ("url"): nothing more is excluded, old history is clean
    line = f"refs/heads/x {old} refs/heads/x {Z}\n"
    assert invoke("scan", "--pre-push", "origin", "url", input=line) == (0, "")


def test_cli_pre_commit_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = head(repo)
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", base)
    monkeypatch.setenv("PRE_COMMIT_TO_REF", head(repo))
    assert invoke("scan")[0] == 1


def test_baseline(repo: Path, tmp_path: Path) -> None:
    write(repo / "big.bin", big(BIG))
    commit(repo, "old")
    baseline = tmp_path / "baseline.json"
    code, out = invoke("scan", "--all-history", "--write-baseline", str(baseline))
    assert code == 0
    assert "wrote 1 findings" in out
    doc = json.loads(baseline.read_text())
    assert doc["version"] == 1
    assert doc["kind"] == "repro-hooks-baseline"
    assert [(f["rule"], f["path"]) for f in doc["findings"]] == [("large-file", "big.bin")]
    assert invoke("scan", "--all-history", "--baseline", str(baseline)) == (0, "")
    # a rebase (new commit ids, same blob) stays baselined
    git(repo, "commit", "-q", "--amend", "--no-verify", "-m", "reworded")
    assert invoke("scan", "--all-history", "--baseline", str(baseline)) == (0, "")
    # a new large blob is reported
    write(repo / "big2.bin", big(BIG, seed=2))
    commit(repo, "new")
    code, out = invoke("scan", "--all-history", "--baseline", str(baseline))
    assert code == 1
    assert out.startswith("big2.bin:")
    assert load_baseline(baseline)


def test_baseline_reports_a_new_version_of_a_baselined_file(repo: Path, tmp_path: Path) -> None:
    """A baseline is keyed by rule, path and blob: the same large file committed again with
    other content is a new finding (docs/commands.md, "Baselines")."""
    write(repo / "big.bin", big(BIG))
    commit(repo, "old")
    baseline = tmp_path / "baseline.json"
    assert invoke("scan", "--all-history", "--write-baseline", str(baseline))[0] == 0
    old_blob = git(repo, "rev-parse", "HEAD:big.bin").strip()
    assert [f["blob"] for f in json.loads(baseline.read_text())["findings"]] == [old_blob]
    write(repo / "big.bin", big(BIG, seed=3))
    commit(repo, "new version, same path")
    code, out = invoke("scan", "--all-history", "--baseline", str(baseline))
    assert code == 1
    assert out.startswith("big.bin:")
    assert git(repo, "rev-parse", "HEAD")[:12] in out


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param("{", "malformed JSON", id="json"),
        pytest.param('{"kind": "x"}', "not a repro-hooks baseline", id="kind"),
        pytest.param('{"kind": "repro-hooks-baseline", "version": 2}', "version", id="version"),
        pytest.param(
            '{"kind": "repro-hooks-baseline", "version": 1, "findings": [1]}',
            "findings[0]",
            id="entry",
        ),
    ],
)
def test_bad_baseline(repo: Path, tmp_path: Path, content: str, reason: str) -> None:
    baseline = write(tmp_path / "b.json", content)
    code, out = invoke("scan", "--all-history", "--baseline", str(baseline))
    assert code == 2
    assert reason in out
    assert invoke("scan", "--all-history", "--baseline", str(tmp_path / "missing"))[0] == 2


@pytest.mark.parametrize(
    ("content", "key", "reason"),
    [
        pytest.param(
            "{",
            "json",
            "malformed JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
            "(char 1)",
            id="json",
        ),
        pytest.param(
            '{"kind": "x"}',
            "kind",
            "not a repro-hooks baseline (expected 'repro-hooks-baseline')",
            id="kind",
        ),
        pytest.param(
            '{"kind": "repro-hooks-baseline", "version": 2}',
            "version",
            "unsupported version 2 (expected 1)",
            id="version",
        ),
        pytest.param(
            '{"kind": "repro-hooks-baseline", "version": 1}',
            "findings",
            "expected a list",
            id="no-findings",
        ),
        pytest.param(
            '{"kind": "repro-hooks-baseline", "version": 1, "findings": [{"rule": "r"}]}',
            "findings[0]",
            "expected {rule, path, blob} strings",
            id="entry",
        ),
        pytest.param(None, "file", "No such file or directory", id="missing"),
    ],
)
def test_a_bad_baseline_is_one_line_naming_the_file_the_key_and_the_reason(
    repo: Path, tmp_path: Path, content: str | None, key: str, reason: str
) -> None:
    baseline = tmp_path / "b.json"
    if content is not None:
        write(baseline, content)
    assert invoke("scan", "--all-history", "--baseline", str(baseline)) == (
        2,
        f"repro-hooks: {baseline}: {key}: {reason}\n",
    )


def test_a_baseline_file_is_indented_sorted_json_with_names_as_they_are(tmp_path: Path) -> None:
    """Readable in review and diffs: two-space JSON, one finding per entry, sorted, non-ASCII
    names written as such, a final newline."""
    from repro_hooks.history.baseline import write_baseline

    file = tmp_path / "baseline.json"
    write_baseline(
        file, [("large-file", "zeta.bin", "b" * 40), ("large-file", "größe.bin", "a" * 40)]
    )
    assert file.read_text(encoding="utf-8") == (
        '{\n  "version": 1,\n  "kind": "repro-hooks-baseline",\n  "findings": [\n'
        '    {\n      "rule": "large-file",\n      "path": "größe.bin",\n'
        f'      "blob": "{"a" * 40}"\n    }},\n'
        '    {\n      "rule": "large-file",\n      "path": "zeta.bin",\n'
        f'      "blob": "{"b" * 40}"\n    }}\n  ]\n}}\n'
    )
    assert load_baseline(file) == {
        ("large-file", "zeta.bin", "b" * 40),
        ("large-file", "größe.bin", "a" * 40),
    }


# ---- end to end: real pushes --------------------------------------------------------------------


@pytest.mark.e2e
def test_pre_commit_pre_push_refuses(repo: Path, tmp_path: Path) -> None:
    install_local_hooks(repo, ["scan-pushed-commits"], ["pre-push"])
    with_remote(tmp_path, repo)
    # added in one commit, deleted in the next: no net change, still refused
    write(repo / "big.bin", big(BIG))
    commit(repo, "add")
    git(repo, "rm", "-q", "big.bin")
    commit(repo, "delete")
    proc = push(repo, "main")
    assert proc.returncode != 0
    assert "big.bin: 600 KiB in git" in proc.stdout + proc.stderr
    # a branch that is not checked out
    git(repo, "reset", "-q", "--hard", "HEAD~2")
    git(repo, "checkout", "-q", "-b", "other")
    write(repo / "model.bin", big(BIG, seed=1))
    commit(repo, "model")
    git(repo, "checkout", "-q", "main")
    proc = push(repo, "other")
    assert proc.returncode != 0
    assert "model.bin: 600 KiB in git" in proc.stdout + proc.stderr
    # a clean new branch on top of pushed history goes through
    git(repo, "checkout", "-q", "-b", "clean")
    write(repo / "ok.txt", "ok\n")
    commit(repo, "ok")
    assert push(repo, "clean").returncode == 0


@pytest.mark.e2e
def test_plain_pre_push_hook(repo: Path, tmp_path: Path) -> None:
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    with_remote(tmp_path, repo)
    # old history already holds a large file (pushed before the hook existed)
    write(repo / "old.bin", big(BIG))
    commit(repo, "old")
    assert push(repo, "--no-verify", "main").returncode == 0
    # a new branch on top of it: only the new commits count
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "notes.txt", "notes\n")
    commit(repo, "notes")
    proc = push(repo, "feature")
    assert proc.returncode == 0, proc.stderr
    # added then deleted on the branch: refused
    write(repo / "big.bin", big(BIG, seed=3))
    commit(repo, "add")
    git(repo, "rm", "-q", "big.bin")
    commit(repo, "delete")
    proc = push(repo, "feature")
    assert proc.returncode != 0
    assert "big.bin: 600 KiB in git" in proc.stdout
    # a tag that brings a large file: refused
    git(repo, "tag", "-a", "-m", "v1", "v1")
    proc = push(repo, "v1")
    assert proc.returncode != 0
    assert "big.bin" in proc.stdout
    # a deletion scans nothing
    assert push(repo, "--delete", "feature").returncode == 0


def test_dvc_lock_paths_are_relative_to_the_stage_wdir(repo: Path) -> None:
    """A dvc.lock whose paths climb out of a stage's wdir is valid: only the commit's dvc.yaml
    knows the wdir, so scan reads it from the same commit."""
    write(
        repo / "dvc.yaml",
        "stages:\n  prep:\n    wdir: src\n    cmd: python prep.py\n    outs: [../data/out.csv]\n",
    )
    commit(repo, "pipeline")
    base = head(repo)
    write(
        repo / "dvc.lock",
        "schema: '2.0'\nstages:\n  prep:\n    cmd: python prep.py\n    outs:\n    - path: ../data/out.csv\n"
        "      hash: md5\n      md5: 0123456789abcdef0123456789abcdef\n      size: 3\n",
    )
    commit(repo, "lock")
    assert invoke("scan", "--range", f"{base}..HEAD") == (0, "")
    # without the wdir the same path escapes the repository: still caught when it really does
    write(
        repo / "dvc.yaml",
        "stages:\n  prep:\n    cmd: python prep.py\n    outs: [../data/out.csv]\n",
    )
    commit(repo, "wdir dropped")
    write(repo / "dvc.lock", (repo / "dvc.lock").read_text() + "\n")
    commit(repo, "lock again")
    code, out = invoke("scan", "--range", "HEAD~1..HEAD")
    assert code == 1
    assert "dvc.lock: stage 'prep' out path '../data/out.csv' escapes the repository" in out


def test_read_objects_by_name(repo: Path) -> None:
    write(repo / "dir with space/a b.txt", "content")
    commit(repo, "x")
    g = Git.discover(repo)
    assert g.read_objects(
        ["HEAD:dir with space/a b.txt", "HEAD:missing file", "HEAD:bad\nname"]
    ) == [
        b"content",
        None,
        None,
    ]


def test_a_trees_listing_is_read_once_for_every_reader(repo: Path) -> None:
    """`Git.tree`: the one reader of `git ls-tree -r -z` (the deploy gate's tree scan, the
    commit's recorded outputs, a ref to a raw tree, outputs recorded twice at the tips): odd
    names, symlinks and gitlinks as git stores them; `endings` keeps only what it names."""
    odd = b"dir/na\xc3\xafve\nname .dvc"
    (repo / "dir").mkdir()
    (repo / odd.decode()).write_text("outs: []\n")
    write(repo / "model.dvc", "outs: []\n")
    write(repo / "a.txt", "a\n")
    (repo / "link.dvc").symlink_to("a.txt")
    sub = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "add", "-A")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sub},vendor")
    git(repo, "commit", "-q", "-m", "tree")
    head = git(repo, "rev-parse", "HEAD").strip()
    g = Git.discover(repo)

    every = g.tree(head, commit=head)
    assert {b.path: b.mode for b in every} == {
        b"a.txt": "100644",
        odd: "100644",
        b"link.dvc": "120000",
        b"model.dvc": "100644",
        b"vendor": "160000",
    }
    assert {b.commit for b in every} == {head}
    assert [b for b in every if b.is_gitlink] == [Blob(b"vendor", "160000", sub, head)]
    assert sorted(b.path for b in g.tree(head, endings=(b".dvc",))) == [
        b"dir/na\xc3\xafve\nname .dvc",
        b"link.dvc",
        b"model.dvc",
    ]
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert {b.path for b in g.tree(tree)} == {b.path for b in every}
    assert {b.commit for b in g.tree(tree)} == {None}
