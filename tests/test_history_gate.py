"""The history checks as a gate (scan, pre-push, pre-receive) at push, in CI and on the server:
each door that let policy-breaking content in, tried end to end with real git, a bare server
whose hooks/pre-receive was installed by `repro-hooks install`, the plain pre-push shim and the
real pre-commit framework. docs/RELIABILITY.md ("Bypass matrix: push, CI and server", and the
tag header, symlinked data and parse work doors of "Bypass matrix: round three") cites these."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, big, cli_here, commit, git, install_local_hooks, run_cli, write

BIG = 2 * 1024 * 1024  # a 2 MiB blob: over the default 500 KiB size limit
KIB = 1024
Z = "0" * 40


def push(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", "push", "origin", *args], cwd=repo, capture_output=True, text=True, check=False
    )
    proc.stdout += proc.stderr  # hooks' lines arrive on either stream
    return proc


def sha(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).strip()


def hash_blob(repo: Path, data: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", input=data).strip()


def refused(proc: subprocess.CompletedProcess[str], ref: str, obj: str, reason: str) -> bool:
    """A refusal names the ref, the object and the reason in one line."""
    return proc.returncode != 0 and any(
        ref in line and obj in line and reason in line for line in proc.stdout.splitlines()
    )


@pytest.fixture
def server(tmp_path: Path, repo: Path) -> Path:
    """A bare server repository with hooks/pre-receive installed by `repro-hooks install`,
    `main` already pushed."""
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    proc = run_cli(bare, "install")
    assert proc.returncode == 0, proc.stderr
    assert (bare / "hooks" / "pre-receive").is_file()
    return bare


def without_server_hook(bare: Path) -> Path:
    hook = bare / "hooks" / "pre-receive"
    hook.rename(hook.with_suffix(".off"))
    return hook


# ---- 1. replace refs ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_replace_refs_never_hide_an_object(repo: Path, server: Path) -> None:
    base = sha(repo, "HEAD")
    write(repo / "ok.txt", "ok\n")
    commit(repo, "C, clean")
    clean = sha(repo, "HEAD")
    git(repo, "reset", "-q", "--hard", base)
    write(repo / "big.bin", big(BIG))
    commit(repo, "B adds a large blob")
    bad = sha(repo, "HEAD")
    git(repo, "replace", bad, clean)
    # what git shows by default: the clean replacement
    assert "big.bin" not in git(repo, "ls-tree", "-r", "HEAD")
    # the replace ref itself is judged like any ref: its commits are clean, accepted
    assert push(repo, f"refs/replace/{bad}").returncode == 0
    # main at B: the server sees the real B (with its replace ref present), rejected
    proc = push(repo, "main")
    assert refused(proc, "refs/heads/main", bad[:12], "big.bin: 2 MiB in git"), proc.stdout
    assert "big.bin" not in git(server, "--no-replace-objects", "ls-tree", "-r", "main")
    # client side too: scan and the plain pre-push shim see the real B
    code = cli_here(repo, "scan", "--range", "HEAD~1..HEAD")
    assert code.returncode == 1
    assert "big.bin: 2 MiB in git" in code.stdout
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    proc = push(repo, "main")
    assert "big.bin: 2 MiB in git" in proc.stdout
    assert "ref refs/heads/main" in proc.stdout
    # a replace ref whose replacement brings a large blob is itself refused
    git(repo, "replace", "-d", bad)
    git(repo, "replace", clean, bad)
    proc = push(repo, "--no-verify", f"refs/replace/{clean}")
    assert refused(proc, f"refs/replace/{clean}", bad[:12], "big.bin: 2 MiB in git"), proc.stdout


# ---- 2. refs to blobs, trees and tags; notes -----------------------------------------------------


def _tree_with(repo: Path, blob: str, name: str = "weights.bin") -> str:
    small = hash_blob(repo, b"readme\n")
    inner = git(repo, "mktree", input=f"100644 blob {blob}\t{name}\n".encode()).strip()
    spec = f"100644 blob {small}\tREADME\n040000 tree {inner}\tmodels\n"
    return git(repo, "mktree", input=spec.encode()).strip()


def _annotated(repo: Path, name: str, target: str, message: str = "t") -> str:
    git(repo, "tag", "-a", "-m", message, name, target)
    return sha(repo, f"refs/tags/{name}")


DOORS = [
    "lightweight-tag-to-blob",
    "annotated-tag-to-blob",
    "tag-to-tree",
    "raw-blob-ref",
    "tag-to-tag-to-tree",
    "notes",
]


@pytest.mark.e2e
@pytest.mark.parametrize("door", DOORS)
def test_refs_to_blobs_trees_and_tags(repo: Path, server: Path, door: str) -> None:
    blob = hash_blob(repo, big(BIG, seed=7))
    small = hash_blob(repo, b"small\n")
    if door == "lightweight-tag-to-blob":
        git(repo, "tag", "raw", blob)
        refspecs, ref, obj, reason = ["refs/tags/raw"], "refs/tags/raw", blob, "a ref to a raw blob"
        git(repo, "tag", "fine", small)
        ok = ["refs/tags/fine"]
    elif door == "annotated-tag-to-blob":
        _annotated(repo, "raw", blob)
        refspecs, ref, obj, reason = ["refs/tags/raw"], "refs/tags/raw", blob, "a ref to a raw blob"
        _annotated(repo, "fine", small)
        ok = ["refs/tags/fine"]
    elif door == "tag-to-tree":
        tree = _tree_with(repo, blob)
        git(repo, "tag", "tree", tree)
        refspecs, ref, obj = ["refs/tags/tree"], "refs/tags/tree", tree
        reason = "models/weights.bin: 2 MiB in git"
        git(repo, "tag", "fine", _tree_with(repo, small))
        ok = ["refs/tags/fine"]
    elif door == "raw-blob-ref":
        refspecs, ref, obj, reason = [f"{blob}:refs/custom/x"], "refs/custom/x", blob, "2 MiB"
        ok = [f"{small}:refs/custom/y"]
    elif door == "tag-to-tag-to-tree":
        tree = _tree_with(repo, blob, "data.parquet")
        inner = _annotated(repo, "inner", tree)
        git(repo, "tag", "-d", "inner")
        _annotated(repo, "outer", inner)
        refspecs, ref, obj = ["refs/tags/outer"], "refs/tags/outer", tree
        reason = "models/data.parquet: 2 MiB in git"
        ok = []
    else:  # notes: a notes ref is a commit history whose trees hold the notes' blobs
        git(repo, "notes", "add", "-F", "-", "HEAD", input=big(BIG, seed=8).hex().encode())
        refspecs, ref, obj = ["refs/notes/commits"], "refs/notes/commits", ""
        reason = "in git, over the 500 KiB size limit"
        ok = []
    proc = push(repo, *refspecs)
    assert refused(proc, ref, obj, reason), proc.stdout
    assert git(server, "for-each-ref", ref) == ""
    for spec in ok:  # the same shape under the limit is accepted
        assert push(repo, spec).returncode == 0
    # in CI: scan --all-history judges every local ref, whatever it points at
    if door == "raw-blob-ref":
        git(repo, "update-ref", ref, blob)
    scan = cli_here(repo, "scan", "--all-history")
    assert scan.returncode == 1
    assert any(ref in line and reason in line for line in scan.stdout.splitlines()), scan.stdout
    # client side: the plain pre-push shim refuses the same push
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    proc = push(repo, *refspecs)
    assert proc.returncode != 0
    assert reason in proc.stdout
    assert "repro-hooks" not in git(server, "for-each-ref")


# ---- 3. porcelain settings ---------------------------------------------------------------------

# Every setting tried: each could change what `git log` reports for the pushed commits.
SETTINGS = [
    ("log.diffMerges", "off"),
    ("log.diffMerges", "combined"),
    ("log.diffMerges", "dense-combined"),
    ("log.diffMerges", "first-parent"),
    ("log.showRoot", "false"),
    ("diff.renames", "copies"),
    ("diff.relative", "true"),
    ("diff.external", "false"),
    ("color.ui", "always"),
    ("color.diff", "always"),
    ("core.abbrev", "7"),
    ("log.abbrevCommit", "true"),
    ("format.pretty", "oneline"),
    ("log.showSignature", "true"),
    ("log.decorate", "full"),
    ("core.quotePath", "false"),
    ("diff.noprefix", "true"),
    ("notes.displayRef", "refs/notes/*"),
    ("i18n.logOutputEncoding", "UTF-16"),
]


def _evil_history(repo: Path) -> None:
    """Branch `evil`: an orphan root commit adding `root.bin`, then a merge of main whose result
    adds `merge.bin` (in neither parent), and a rename of `root.bin` to `sub/moved.bin`."""
    git(repo, "checkout", "-q", "--orphan", "evil")
    git(repo, "rm", "-rq", "--cached", ".", check=False)
    write(repo / "root.bin", big(BIG, seed=1))
    commit(repo, "root adds a large file", "root.bin")
    git(repo, "merge", "-q", "--no-commit", "--allow-unrelated-histories", "main")
    write(repo / "merge.bin", big(BIG, seed=2))
    git(repo, "add", "merge.bin")
    git(repo, "commit", "-q", "--no-verify", "-m", "evil merge")
    git(repo, "checkout", "-q", "main")


@pytest.mark.e2e
@pytest.mark.parametrize(("key", "value"), SETTINGS, ids=[f"{k}={v}" for k, v in SETTINGS])
def test_porcelain_settings_never_change_the_verdict(
    repo: Path, server: Path, key: str, value: str
) -> None:
    _evil_history(repo)
    git(server, "config", key, value)
    git(repo, "config", key, value)
    proc = push(repo, "evil")
    for name in ("root.bin", "merge.bin"):
        assert refused(proc, "refs/heads/evil", f"remote: {name}", "2 MiB in git"), proc.stdout
    scan = cli_here(repo, "scan", "--range", "main..evil")
    assert scan.returncode == 1
    assert {"root.bin", "merge.bin"} <= {line.split(":")[0] for line in scan.stdout.splitlines()}
    evil = sha(repo, "evil")
    line = f"refs/heads/evil {evil} refs/heads/evil {Z}\n"
    shim = subprocess.run(
        ["repro-hooks", "scan", "--pre-push", "origin", str(server)],
        cwd=repo,
        input=line,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shim.returncode == 1
    assert "merge.bin: 2 MiB in git" in shim.stdout
    assert "root.bin: 2 MiB in git" in shim.stdout


@pytest.mark.e2e
def test_grafts_never_hide_a_commit(repo: Path, server: Path) -> None:
    """`info/grafts` (the older spelling of replace refs) can cut a commit out of what git
    walks; every policy git call turns grafts off."""
    base = sha(repo, "HEAD")
    write(repo / "big.bin", big(BIG))
    commit(repo, "large")
    git(repo, "rm", "-q", "big.bin")
    commit(repo, "removed")
    write(repo / ".git" / "info" / "grafts", f"{sha(repo, 'HEAD')} {base}\n")
    assert "large" not in git(repo, "log", "--format=%s")  # git itself is fooled
    proc = cli_here(repo, "scan", "--range", f"{base}..HEAD")
    assert proc.returncode == 1
    assert "big.bin: 2 MiB in git" in proc.stdout
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    proc = push(repo, "main")
    assert refused(proc, "refs/heads/main", "big.bin", "2 MiB in git"), proc.stdout


# ---- 4. huge commit and tag messages ------------------------------------------------------------


@pytest.mark.e2e
def test_huge_commit_and_tag_messages(repo: Path, server: Path, tmp_path: Path) -> None:
    message = tmp_path / "message.txt"
    write(message, ("x" * 79 + "\n") * (4 * 1024 * 1024 // 80))  # ~4 MiB
    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-F", str(message))
    huge = sha(repo, "HEAD")
    proc = push(repo, "main")
    assert refused(
        proc, "refs/heads/main", huge[:12], "(commit message): 4 MiB, over the 64 KiB message limit"
    ), proc.stdout
    scan = cli_here(repo, "scan", "--range", "HEAD~1..HEAD")
    assert scan.returncode == 1
    assert "(commit message): 4 MiB, over the 64 KiB message limit" in scan.stdout
    # the plain pre-push shim refuses it on the client, before anything is sent
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    proc = push(repo, "main")
    assert refused(proc, "refs/heads/main", huge[:12], "over the 64 KiB message limit")
    assert "remote:" not in proc.stdout
    (repo / ".git" / "hooks" / "pre-push").unlink()
    git(repo, "branch", "keep", huge)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    # an annotated tag with a 4 MiB message, on a commit the server already has
    git(repo, "tag", "-a", "-F", str(message), "v1")
    tag = sha(repo, "refs/tags/v1")
    proc = push(repo, "v1")
    assert refused(proc, "refs/tags/v1", tag, "over the 64 KiB message limit"), proc.stdout
    # in CI: each huge message is one finding of its own, and a baseline keeps them apart
    git(repo, "tag", "-a", "-F", str(message), "v2")
    scan = cli_here(repo, "scan", "--all-history")
    assert scan.returncode == 1
    assert sum("over the 64 KiB message limit" in line for line in scan.stdout.splitlines()) == 3
    baseline = tmp_path / "baseline.json"
    assert (
        cli_here(repo, "scan", "--all-history", "--write-baseline", str(baseline)).returncode == 0
    )
    assert baseline.read_text().count('"large-message"') == 3
    assert cli_here(repo, "scan", "--all-history", "--baseline", str(baseline)).returncode == 0
    git(repo, "tag", "-d", "v2")
    # the limit is policy: the server's policy file can raise it
    policy = write(tmp_path / "policy.toml", 'max-message-size = "8MiB"\n')
    git(server, "config", "repro-hooks.policy", str(policy))
    assert push(repo, "v1").returncode == 0
    # a message under the default limit is no finding
    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", "x" * 60_000)
    git(server, "config", "--unset", "repro-hooks.policy")
    assert push(repo, "main").returncode == 0


# ---- 5. stale remote-tracking refs ---------------------------------------------------------------


def _stale_feature(repo: Path, server: Path) -> None:
    """feature (a large file) reaches the server without checks, is deleted there; the local
    origin/feature stays. feature2 is built on it."""
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "big.bin", big(BIG))
    commit(repo, "large file")
    hook = without_server_hook(server)
    assert push(repo, "--no-verify", "feature").returncode == 0
    hook.with_suffix(".off").rename(hook)
    git(server, "update-ref", "-d", "refs/heads/feature")  # deleted on the server
    assert sha(repo, "refs/remotes/origin/feature") == sha(repo, "feature")  # stale
    git(repo, "checkout", "-q", "-b", "feature2")
    write(repo / "notes.txt", "notes\n")
    commit(repo, "notes")


@pytest.mark.e2e
def test_stale_remote_tracking_refs_plain_shim(repo: Path, server: Path) -> None:
    _stale_feature(repo, server)
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    without_server_hook(server)  # the client's hook alone must block
    proc = push(repo, "feature2")
    assert refused(proc, "refs/heads/feature2", "big.bin", "2 MiB in git"), proc.stdout
    assert git(server, "branch", "--list", "feature2") == ""


@pytest.mark.e2e
def test_stale_remote_tracking_refs_pre_commit(repo: Path, server: Path) -> None:
    install_local_hooks(repo, ["scan-pushed-commits"], ["pre-push"])
    git(repo, "push", "-q", "--no-verify", "origin", "main")
    _stale_feature(repo, server)
    without_server_hook(server)  # the client's hook alone must block
    proc = push(repo, "feature2")
    assert proc.returncode != 0, proc.stdout
    assert "big.bin: 2 MiB in git" in proc.stdout
    assert "ref refs/heads/feature2" in proc.stdout
    assert git(server, "branch", "--list", "feature2") == ""
    # pushing feature itself again: every commit is in the stale origin/feature, so pre-commit
    # decides there is nothing to push and runs no hook at all (the framework's limit) ...
    proc = push(repo, "feature")
    assert proc.returncode == 0, proc.stdout
    git(server, "update-ref", "-d", "refs/heads/feature")
    # ... the recommended set-up (the plain shim, run first by pre-commit) blocks it
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    proc = push(repo, "feature")
    assert refused(proc, "refs/heads/feature", "big.bin", "2 MiB in git"), proc.stdout


# ---- 6. several refs in one push through pre-commit ----------------------------------------------


def _clean_and_bad_branches(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "a-clean")
    write(repo / "clean.txt", "clean\n")
    commit(repo, "clean")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "z-bad")
    write(repo / "model.pt", big(BIG, seed=4))
    commit(repo, "model")
    git(repo, "checkout", "-q", "main")


@pytest.mark.e2e
@pytest.mark.parametrize("order", ["pre-commit-first", "shim-first"])
def test_several_refs_in_one_push_through_pre_commit(repo: Path, server: Path, order: str) -> None:
    """pre-commit forwards only the first pushed ref to its hooks: the recommended set-up adds
    the plain shim, which pre-commit runs first as `pre-push.legacy` with every ref."""
    without_server_hook(server)  # the client's hooks alone must block
    if order == "shim-first":
        assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    install_local_hooks(repo, ["scan-pushed-commits"], ["pre-push"])
    git(repo, "push", "-q", "--no-verify", "origin", "main")
    if order == "pre-commit-first":
        # the framework's limit, as documented: its own hook sees only a-clean
        _clean_and_bad_branches(repo)
        proc = push(repo, "a-clean", "z-bad")
        assert proc.returncode == 0, proc.stdout
        git(server, "update-ref", "-d", "refs/heads/z-bad")
        git(server, "update-ref", "-d", "refs/heads/a-clean")
        installed = run_cli(repo, "install", "--hook", "pre-push")
        assert installed.returncode == 0, installed.stderr
        assert installed.stdout.strip().endswith("pre-push.legacy")
    else:
        _clean_and_bad_branches(repo)
    assert (repo / ".git" / "hooks" / "pre-push.legacy").is_file()
    proc = push(repo, "a-clean", "z-bad")
    assert refused(proc, "refs/heads/z-bad", "model.pt", "2 MiB in git"), proc.stdout
    assert git(server, "for-each-ref", "refs/heads/z-bad", "refs/heads/a-clean") == ""
    # a clean multi-ref push still goes through both
    git(repo, "branch", "-f", "z-bad", "main")
    assert push(repo, "a-clean", "z-bad").returncode == 0


# ---- 11. the change under review sets its own policy ----------------------------------------------


def test_scan_range_uses_the_base_policy(repo: Path, tmp_path: Path) -> None:
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax-size = "1MiB"\n')
    commit(repo, "policy")
    base = sha(repo, "HEAD")
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax-size = "1MiB"\nexclude = ["**"]\n')
    write(repo / "big.bin", big(BIG))
    commit(repo, "relax the policy and add a large file")
    proc = cli_here(repo, "scan", "--range", f"{base}..HEAD")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "big.bin: 2 MiB in git, over the 1 MiB size limit" in proc.stdout
    notes = [line for line in proc.stderr.splitlines() if "changes the policy" in line]
    assert len(notes) == 1
    assert f"checked against {base}'s" in notes[0]
    # --config chooses explicitly
    policy = write(tmp_path / "p.toml", 'exclude = ["**"]\n')
    assert (
        cli_here(repo, "scan", "--range", f"{base}..HEAD", "--config", str(policy)).returncode == 0
    )
    # a range that leaves the policy alone prints no note; a base without pyproject.toml means
    # the built-in defaults (500 KiB)
    write(repo / "more.bin", big(BIG, seed=9))
    commit(repo, "more")
    proc = cli_here(repo, "scan", "--range", "HEAD~1..HEAD")
    assert proc.returncode == 0  # HEAD~1's policy excludes everything
    assert proc.stderr == ""
    root = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    proc = cli_here(repo, "scan", "--range", f"{root}..HEAD")
    assert "over the 500 KiB size limit" in proc.stdout
    # a malformed policy at the base: exit 2 naming it; an unknown base: exit 2
    write(repo / "pyproject.toml", "[tool.repro-hooks\n")
    commit(repo, "broken")
    proc = cli_here(repo, "scan", "--range", "HEAD..HEAD")
    assert proc.returncode == 2
    assert proc.stderr.startswith("repro-hooks: HEAD:pyproject.toml: ")
    assert cli_here(repo, "scan", "--range", "nope..HEAD").returncode == 2


def test_scan_range_uses_the_base_baseline(repo: Path, tmp_path: Path) -> None:
    """The same door through the baseline: a change that records its own large file in the
    committed baseline file."""
    name = ".repro-hooks-baseline.json"
    assert cli_here(repo, "scan", "--all-history", "--write-baseline", name).returncode == 0
    commit(repo, "empty baseline", name)
    base = sha(repo, "HEAD")
    write(repo / "big.bin", big(BIG))
    commit(repo, "large file")
    assert cli_here(repo, "scan", "--all-history", "--write-baseline", name).returncode == 0
    assert "big.bin" in (repo / name).read_text()
    commit(repo, "baseline it", name)
    proc = cli_here(repo, "scan", "--range", f"{base}..HEAD", "--baseline", name)
    assert proc.returncode == 1
    assert "big.bin: 2 MiB in git" in proc.stdout
    assert f"the baseline in force is {base}'s" in proc.stderr
    # a baseline file outside the repository is the CI's own: applied as is
    outside = write(tmp_path / "b.json", (repo / name).read_bytes())
    assert (
        cli_here(repo, "scan", "--range", f"{base}..HEAD", "--baseline", str(outside)).returncode
        == 0
    )
    # once merged (the base has it), it applies
    assert cli_here(repo, "scan", "--range", "HEAD..HEAD", "--baseline", name).returncode == 0


@pytest.mark.e2e
def test_bulk_push_hits_the_push_total(repo: Path, server: Path, tmp_path: Path) -> None:
    """Bulk data under the size limit (images are no data pattern): the push total stops it at
    the server and in a range under review; a whole history has no total."""
    policy = write(tmp_path / "policy.toml", 'max-push-total = "1MiB"\n')
    git(server, "config", "repro-hooks.policy", str(policy))
    images = repo / "img"
    images.mkdir()
    for i in range(40):
        (images / f"{i}.png").write_bytes(os.urandom(40 * 1024))  # 1.6 MiB, incompressible
    git(repo, "add", "img")
    git(repo, "commit", "-q", "--no-verify", "-m", "images")
    proc = push(repo, "main")
    line = "(push): 40 new files take 1.6 MiB, over the 1 MiB total-size limit of a push"
    assert proc.returncode != 0 and line in proc.stdout, proc.stdout
    assert git(server, "rev-parse", "main").strip() != sha(repo, "HEAD")
    scan = cli_here(repo, "scan", "--range", "HEAD~1..HEAD", "--config", str(policy))
    assert scan.returncode == 1 and line in scan.stdout, scan.stdout
    assert cli_here(repo, "scan", "--all-history", "--config", str(policy)).returncode == 0
    git(server, "config", "--unset", "repro-hooks.policy")  # the default: 500 MiB
    assert push(repo, "main").returncode == 0


# ---- a tag whose header git and repro-hooks read differently ------------------------------


def hash_object(repo: Path, data: bytes, kind: str = "blob") -> str:
    # --literally: write the object exactly as given (git would write a tag with a repeated
    # header itself only through this door; fsck still accepts it)
    return git(repo, "hash-object", "-t", kind, "-w", "--literally", "--stdin", input=data).strip()


# How a second `object` line gets into a tag's header: repeated (git and fsck take the first),
# or planted inside another header line behind a character Python's `str.splitlines()` splits
# on and git does not (\x1c, \x85 as UTF-8, U+2028).
TAGGER = "tagger A U Thor <a@example.com> 1700000000 +0000\n"
TAG_DOORS = {
    "repeated-object": "object {big}\ntype tree\ntag v1\n" + TAGGER + "object {small}\n",
    "x1c": "object {big}\ntype tree\ntag v1\x1cobject {small}\n" + TAGGER,
    "x85": "object {big}\ntype tree\ntag v1\x85object {small}\n" + TAGGER,
    "u2028": "object {big}\ntype tree\ntag v1\u2028object {small}\n" + TAGGER,
}


@pytest.mark.e2e
@pytest.mark.parametrize("door", list(TAG_DOORS))
def test_tag_header_is_read_as_git_reads_it(repo: Path, server: Path, door: str) -> None:
    git(server, "config", "receive.fsckObjects", "true")
    blob = hash_object(repo, big(BIG, seed=3))
    tree = git(repo, "mktree", input=f"100644 blob {blob}\tmodel.pt\n".encode()).strip()
    small = hash_object(repo, b"small\n")
    body = TAG_DOORS[door].format(big=tree, small=small) + "\nrelease\n"
    tag = hash_object(repo, body.encode("utf-8"), "tag")
    # git follows the first `object` line: the tag points at the tree holding model.pt
    assert git(repo, "rev-parse", f"{tag}^{{tree}}").strip() == tree
    git(repo, "update-ref", "refs/tags/v1", tag)
    proc = push(repo, "refs/tags/v1")
    assert proc.returncode != 0, proc.stdout
    assert "model.pt: 2 MiB in git, over the 500 KiB size limit" in proc.stdout
    assert git(server, "for-each-ref", "refs/tags/") == ""
    stored = subprocess.run(["git", "cat-file", "-e", blob], cwd=server, check=False)
    assert stored.returncode != 0  # the quarantined objects went with the refused push
    scan = cli_here(repo, "scan", "--all-history")  # CI reads every ref the same way
    assert scan.returncode == 1
    assert "model.pt: 2 MiB in git" in scan.stdout


# ---- data stored as a symbolic link --------------------------------------------------------


def _csv(n: int) -> bytes:
    rows = [b"id,feature,label"] + [f"{i},{i * 7 % 13},{i % 2}".encode() for i in range(n)]
    return b"\n".join(rows) + b"\n"


@pytest.mark.e2e
def test_data_stored_as_a_symlink(repo: Path, server: Path, tmp_path: Path) -> None:
    data = _csv(30_000)
    assert len(data) > 250 * KIB
    blob = hash_object(repo, data)
    git(repo, "update-index", "--add", "--cacheinfo", f"120000,{blob},data/train.csv")
    # a real link at a data pattern stays a link: not data in git
    os.makedirs(repo / "data", exist_ok=True)
    os.symlink("../shared/valid.csv", repo / "data" / "valid.csv")
    git(repo, "add", "data/valid.csv")
    git(repo, "commit", "-q", "--no-verify", "-m", "data as a link")
    proc = push(repo, "main")
    assert proc.returncode != 0, proc.stdout
    assert (
        "data/train.csv: data file stored in git as a symbolic link (a regular file where "
        "symlinks are off)"
    ) in proc.stdout
    assert "data/valid.csv" not in proc.stdout
    scan = cli_here(repo, "scan", "--all-history")
    assert scan.returncode == 1 and "data/train.csv: data file stored in git" in scan.stdout
    assert "data/valid.csv" not in scan.stdout
    # why it matters: where symlinks are off, the clone holds the CSV itself
    hook = server / "hooks" / "pre-receive"
    hook.rename(hook.with_suffix(".off"))
    assert push(repo, "main").returncode == 0
    clone = tmp_path / "windows-like"
    git(tmp_path, "-c", "core.symlinks=false", "clone", "-q", str(server), str(clone))
    assert (clone / "data" / "train.csv").read_bytes() == data
    # the commit stage, as on Git for Windows (core.symlinks=false: the "link" is a regular
    # file on disk, mode 120000 in the index): require-dvc-files reports it
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "config", "core.symlinks", "false")
    install_local_hooks(repo, ["require-dvc-files"], ["pre-commit"])
    write(repo / "data" / "train.csv", data)
    git(repo, "update-index", "--add", "--cacheinfo", f"120000,{blob},data/train.csv")
    proc = subprocess.run(
        ["git", "commit", "-m", "x"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "data/train.csv: data file stored in git" in proc.stdout + proc.stderr


# ---- parse work on the server ---------------------------------------------------------------


def _dvc_yaml(stages: int, tail: str = "") -> bytes:
    body = "".join(
        f"  s{i}:\n    cmd: python train.py --seed {i}\n    outs:\n    - out/o{i}.bin\n"
        for i in range(stages)
    )
    return f"stages:\n{body}{tail}".encode()


@pytest.mark.e2e
def test_pre_receive_skips_what_is_refused_and_bounds_parse_work(
    repo: Path, server: Path, tmp_path: Path
) -> None:
    # over the size limit: refused as large, never parsed (its last line is a duplicate key,
    # which only a parse would find)
    write(repo / "a" / "dvc.yaml", _dvc_yaml(8000, tail="stages: {}\n"))
    assert (repo / "a" / "dvc.yaml").stat().st_size > 500 * KIB
    commit(repo, "a huge dvc.yaml")
    proc = push(repo, "main")
    assert proc.returncode != 0
    assert "a/dvc.yaml: " in proc.stdout and "over the 500 KiB size limit" in proc.stdout
    assert "malformed" not in proc.stdout and "duplicate" not in proc.stdout, proc.stdout
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    # under the size limit, but more DVC bytes than one push may bring: the rest unparsed,
    # the push refused (fail closed); a push that fits is parsed and accepted
    policy = write(tmp_path / "policy.toml", 'max-push-dvc-total = "64KiB"\n')
    git(server, "config", "repro-hooks.policy", str(policy))
    for d in ("b", "c", "d"):
        write(repo / d / "dvc.yaml", _dvc_yaml(400, tail=f"# {d}\n"))  # three distinct blobs
        assert 20 * KIB < (repo / d / "dvc.yaml").stat().st_size < 32 * KIB
        commit(repo, f"stage {d}")
    proc = push(repo, "main")
    assert proc.returncode != 0
    assert (
        "(push): 1 DVC files (" in proc.stdout
        and "left unchecked: over the 64 KiB of DVC files one push may bring (max-push-dvc-total)"
        in proc.stdout
    ), proc.stdout
    assert push(repo, "HEAD~1:main").returncode == 0
    assert push(repo, "main").returncode == 0


# ---- the doc's matrix stays true --------------------------------------------------------------------


def test_bypass_matrix_rows_cite_these_tests() -> None:
    """Every test here is cited by a row of the push matrix or of the round-three matrix (its
    doors at push and on the server), and every row has the matrix's four cells."""
    doc = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    rows: list[str] = []
    for title in ("## Bypass matrix: push, CI and server", "## Bypass matrix: round three"):
        start = doc.index(title)
        end = doc.find("\n## ", start + 1)
        # split on newlines only: the round-three rows quote characters splitlines() splits on
        table = [
            r for r in doc[start : end if end != -1 else None].split("\n") if r.startswith("| ")
        ]
        assert all(len(r.strip("|").split(" | ")) == 4 for r in table)
        rows += table[1:]
    cited = {m for r in rows for m in re.findall(r"`tests/test_history_gate\.py::(\w+)`", r)}
    here = {name for name in globals() if name.startswith("test_") and name != __name__}
    assert cited == here - {"test_bypass_matrix_rows_cite_these_tests"}
