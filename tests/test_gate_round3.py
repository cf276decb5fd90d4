"""Gate integrity, round three.

Each door is tried end to end as an attacker or a hurried user would: a real bare server whose
`hooks/pre-receive` was installed by `repro-hooks install` (doors 1, 4, 6), the real pre-commit
framework installed in a real repository and a real `git commit` (door 2), a real `--fix` with
DVC (door 5). docs/RELIABILITY.md ("Bypass matrix: round three") cites these tests row by row.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, big, cli_here, commit, git, install_local_hooks, run_cli, write

BIG = 2 * 1024 * 1024  # over the default 500 KiB size limit
KIB = 1024


def push(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", "push", "origin", *args], cwd=repo, capture_output=True, text=True, check=False
    )
    proc.stdout += proc.stderr  # hooks' lines arrive on either stream
    return proc


def hash_object(repo: Path, data: bytes, kind: str = "blob") -> str:
    # --literally: write the object exactly as given (git would write a tag with a repeated
    # header itself only through this door; fsck still accepts it)
    return git(repo, "hash-object", "-t", kind, "-w", "--literally", "--stdin", input=data).strip()


@pytest.fixture
def server(tmp_path: Path, repo: Path) -> Path:
    """A bare server with hooks/pre-receive installed by `repro-hooks install`, main pushed."""
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    proc = run_cli(bare, "install")
    assert proc.returncode == 0, proc.stderr
    assert (bare / "hooks" / "pre-receive").is_file()
    return bare


# ---- door 1: a tag whose header git and repro-hooks read differently -------------------------

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


# ---- door 2: replace refs at the commit stage, and every git process -------------------------


@pytest.mark.e2e
def test_replace_ref_at_the_commit_stage_under_pre_commit(repo: Path) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / "README", "readme\n")
    commit(repo, "readme", "README")
    # a commit whose tree already has model.pt, put in place of HEAD
    model = big(BIG, seed=4)
    blob = hash_object(repo, model)
    readme = git(repo, "rev-parse", "HEAD:README").strip()
    tree = git(
        repo,
        "mktree",
        input=f"100644 blob {readme}\tREADME\n100644 blob {blob}\tmodel.pt\n".encode(),
    ).strip()
    decoy = git(repo, "commit-tree", tree, "-p", "HEAD", "-m", "decoy").strip()
    git(repo, "replace", "HEAD", decoy)
    write(repo / "model.pt", model)
    write(repo / "README", "readme, edited\n")
    git(repo, "add", "model.pt", "README")
    head = git(repo, "rev-parse", "HEAD").strip()
    proc = subprocess.run(
        ["git", "commit", "-m", "add model"], cwd=repo, capture_output=True, text=True, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "model.pt: 2 MiB in git, over the 500 KiB size limit" in output
    assert git(repo, "rev-parse", "HEAD").strip() == head
    # the plain shim blocks the same commit
    (repo / ".git" / "hooks" / "pre-commit").unlink()  # pre-commit's own hook
    assert run_cli(repo, "install", "--hook", "pre-commit").returncode == 0
    proc = subprocess.run(
        ["git", "commit", "-m", "add model"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0 and "model.pt: 2 MiB" in proc.stdout + proc.stderr


def _starts_git(call: ast.Call) -> bool:
    if not call.args or not isinstance(call.args[0], ast.List) or not call.args[0].elts:
        return False
    first = call.args[0].elts[0]
    return isinstance(first, ast.Constant) and first.value == "git"


def _calls_git_env(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "git_env"
        for n in ast.walk(node)
    )


def test_every_git_process_gets_the_one_git_environment() -> None:
    """Every `subprocess` call in the package that starts git passes `env=` built by
    `git_env` (repro_hooks/git/process.py): replace refs and grafts off, pathspecs literal.
    A new call that forgets it (as the staged-paths prefetch did) fails here."""
    bypasses = []
    for source in sorted((ROOT / "repro_hooks").rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            names = {  # local names bound to git_env(...)
                t.id
                for n in ast.walk(func)
                if isinstance(n, ast.Assign) and _calls_git_env(n.value)
                for t in n.targets
                if isinstance(t, ast.Name)
            }
            for call in ast.walk(func):
                if not isinstance(call, ast.Call) or not _starts_git(call):
                    continue
                env = next((k.value for k in call.keywords if k.arg == "env"), None)
                ok = env is not None and (
                    _calls_git_env(env) or (isinstance(env, ast.Name) and env.id in names)
                )
                if not ok:
                    bypasses.append(f"{source.relative_to(ROOT)}:{call.lineno}")
    assert bypasses == []


# ---- door 4: data stored as a symbolic link ---------------------------------------------------


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


# ---- door 5: --fix on names a .gitignore line cannot say as they are --------------------------


def _snapshot(repo: Path) -> dict[str, object]:
    from tests.test_dvc_fix import state

    return state(repo)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name", ["data\nbig.bin", "big.bin\r"], ids=["newline", "final-carriage-return"]
)
def test_fix_refuses_names_no_gitignore_line_can_say(dvc_repo: Path, name: str) -> None:
    os.makedirs(dvc_repo / "data", exist_ok=True)
    write(dvc_repo / "data" / "keep.txt", "kept in git\n")
    write(dvc_repo / name, big(600 * KIB))
    git(dvc_repo, "add", "-A")
    before = _snapshot(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().split("\n")
    assert len(err) == 1, proc.stderr
    assert "no .gitignore line can name it" in err[0] and "nothing was changed" in err[0]
    assert _snapshot(dvc_repo) == before
    assert not (dvc_repo / ".gitignore").exists()
    assert "or run: repro-hooks check-large-files --fix" not in proc.stdout


@pytest.mark.e2e
def test_fix_escapes_names_gitignore_can_escape(dvc_repo: Path) -> None:
    names = ["x  ", "a*b.bin", "q?.bin", "r[1].bin", "back\\slash.bin", "#hash.bin", "!bang.bin"]
    neighbours = ["x", "aab.bin", "q1.bin", "r1.bin", "backslash.bin"]
    for other in neighbours:
        write(dvc_repo / other, f"small {other}\n")
    for i, name in enumerate(names):
        write(dvc_repo / name, big(600 * KIB, seed=i))
    git(dvc_repo, "--literal-pathspecs", "add", "--", *names, *neighbours)
    proc = run_cli(dvc_repo, "check-large-files", "--fix")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("moved into DVC") == len(names), proc.stdout
    ignored = git(
        dvc_repo,
        "check-ignore",
        "--no-index",
        "-z",
        "--stdin",
        input=b"".join(n.encode() + b"\0" for n in [*names, *neighbours]),
        check=False,
    ).split("\0")
    assert sorted(n for n in ignored if n) == sorted(names)
    # the next `git add -A` keeps every moved file out of git, every neighbour in
    git(dvc_repo, "add", "-A")
    tracked = set(git(dvc_repo, "ls-files", "-z").split("\0"))
    assert not set(names) & tracked
    assert set(neighbours) <= tracked
    assert {n + ".dvc" for n in names} <= tracked


@pytest.mark.e2e
def test_fix_hint_says_the_gitignore_line_for_trailing_spaces(dvc_repo: Path) -> None:
    write(dvc_repo / "x  ", big(600 * KIB))
    write(dvc_repo / "x", "small\n")
    git(dvc_repo, "add", "-A")
    proc = run_cli(dvc_repo, "check-large-files")
    assert proc.returncode == 1
    commands = [line.strip() for line in proc.stdout.split("\n") if line.startswith("  ")]
    assert "printf '%s\\n' '/x\\ \\ ' >> .gitignore" in commands, proc.stdout
    for line in commands:  # run the hint as printed
        subprocess.run(line, shell=True, cwd=dvc_repo, check=True, capture_output=True)
    git(dvc_repo, "add", "-A")
    tracked = set(git(dvc_repo, "ls-files", "-z").split("\0"))
    assert "x  " not in tracked and "x" in tracked and "x  .dvc" in tracked


# ---- the --fix refusals: one line on stderr in every format -----------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_fix_refusal_is_one_line_on_stderr(dvc_repo: Path, fmt: str) -> None:
    write(dvc_repo / "w.bin", big(600 * KIB))
    git(dvc_repo, "add", "w.bin")
    write(dvc_repo / "w.bin", big(700 * KIB, 3))  # the rest, unstaged
    before = _snapshot(dvc_repo)
    proc = run_cli(dvc_repo, "check-large-files", "--fix", "--format", fmt)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        "repro-hooks: --fix: w.bin: staged content differs from the file on disk; stage or "
        "stash the rest first (git add -- w.bin), then re-run with --fix; nothing was changed\n"
    )
    assert "nothing was changed" not in proc.stdout
    assert "w.bin" in proc.stdout  # the findings stand, in the format asked for
    if fmt in ("json", "sarif"):
        json.loads(proc.stdout)
    assert _snapshot(dvc_repo) == before


# ---- door 6: parse work on the server ---------------------------------------------------------


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


# ---- the doc's matrix stays true --------------------------------------------------------------


def test_round_three_rows_cite_these_tests() -> None:
    import re

    doc = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    start = doc.index("## Bypass matrix: round three")
    end = doc.find("\n## ", start + 1)
    rows = [r for r in doc[start : end if end != -1 else None].split("\n") if r.startswith("| ")]
    cited = {m for r in rows[1:] for m in re.findall(r"`tests/test_gate_round3\.py::(\w+)`", r)}
    here = {name for name in globals() if name.startswith("test_")}
    assert cited == here - {"test_round_three_rows_cite_these_tests"}
    assert all(len(r.strip("|").split(" | ")) == 4 for r in rows)
