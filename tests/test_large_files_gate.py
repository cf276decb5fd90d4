"""The large-files and data rules as a gate: at the commit stage and in the configuration.

Each door is tried end to end as a user or an attacker would: the real pre-commit framework
installed in a real repository, then a real `git commit`. docs/RELIABILITY.md ("Bypass matrix:
commit stage and configuration", and a replace ref at the commit stage in "Bypass matrix: round
three") cites these tests row by row.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from repro_hooks.git import Blob
from repro_hooks.large_files.check import commit_total_finding
from repro_hooks.policy.config import DEFAULT_DATA_PATTERNS, Policy, misspelled_table
from tests.helpers import VENV_BIN, big, commit, git, install_local_hooks, run_cli, write

pytestmark = pytest.mark.e2e
KIB = 1024
BIG = 2 * 1024 * 1024  # over the default 500 KiB size limit


def git_commit(repo: Path) -> subprocess.CompletedProcess[str]:
    """`git commit` of what is staged, hooks on."""
    return subprocess.run(
        ["git", "commit", "-m", "change"], cwd=repo, capture_output=True, text=True, check=False
    )


def blocked(proc: subprocess.CompletedProcess[str], *paths: str) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    for path in paths:
        assert f"{path}: " in output, output
    assert "Traceback" not in output
    return output


def passed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


# ---- staged blobs with no file on disk -----------------------------------------------------------


@pytest.mark.parametrize("how", ["skip-worktree", "assume-unchanged", "deleted-after-add"])
def test_staged_blob_without_a_file_on_disk_is_blocked(repo: Path, how: str) -> None:
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / "big.bin", big(600 * KIB))
    git(repo, "add", "big.bin")
    if how != "deleted-after-add":
        git(repo, "update-index", f"--{how}", "big.bin")
    (repo / "big.bin").unlink()
    write(repo / "notes.txt", "something else\n")
    git(repo, "add", "notes.txt")
    before = head(repo)
    out = blocked(git_commit(repo), "big.bin")
    assert "big.bin: 600 KiB in git, over the 500 KiB size limit" in out
    assert head(repo) == before  # HEAD never holds the blob


def test_symlink_on_disk_over_a_large_staged_blob_is_blocked(repo: Path) -> None:
    """pre-commit passes only `types: [file]` by default; a symlink on disk is never passed,
    whatever the index holds at that path."""
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    sha = git(repo, "hash-object", "-w", "--stdin", input=big(600 * KIB)).strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"120000,{sha},link")
    git(repo, "update-index", "--skip-worktree", "link")
    os.symlink("somewhere", repo / "link")
    write(repo / "notes.txt", "something else\n")
    git(repo, "add", "notes.txt")
    blocked(git_commit(repo), "link")


def test_plain_shim_blocks_a_staged_blob_without_a_file(repo: Path) -> None:
    assert run_cli(repo, "install").returncode == 0
    write(repo / "big.bin", big(600 * KIB))
    git(repo, "add", "big.bin")
    git(repo, "update-index", "--skip-worktree", "big.bin")
    (repo / "big.bin").unlink()
    write(repo / "notes.txt", "x\n")
    git(repo, "add", "notes.txt")
    blocked(git_commit(repo), "big.bin")


# ---- the hook's own files/exclude ----------------------------------------------------------------


def test_hook_exclude_holds_alone_and_with_others(repo: Path) -> None:
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"exclude": "^fixtures/"}},
    )
    write(repo / "fixtures/golden.bin", big(600 * KIB))
    passed(commit(repo, "alone", "fixtures/golden.bin", verify=True))
    write(repo / "fixtures/golden2.bin", big(600 * KIB, seed=2))
    write(repo / "code.py", "print('hi')\n")
    passed(commit(repo, "with others", "fixtures/golden2.bin", "code.py", verify=True))
    write(repo / "fixtures/golden3.bin", big(600 * KIB, seed=3))
    write(repo / "big.bin", big(600 * KIB, seed=4))
    out = blocked(commit(repo, "mixed", "fixtures/golden3.bin", "big.bin", verify=True), "big.bin")
    assert "fixtures/golden3.bin" not in out


def test_hook_files_filter_holds(repo: Path) -> None:
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"files": "^data/"}},
    )
    write(repo / "assets/video.bin", big(600 * KIB))
    passed(commit(repo, "outside data/", "assets/video.bin", verify=True))
    write(repo / "data/big.bin", big(600 * KIB, seed=1))
    blocked(commit(repo, "inside data/", "data/big.bin", verify=True), "data/big.bin")


def test_hook_exclude_cannot_hide_a_blob_missing_on_disk(repo: Path) -> None:
    """The documented residual: pre-commit could never pass it, so no filter decides it."""
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"exclude": "^fixtures/"}},
    )
    write(repo / "fixtures/golden.bin", big(600 * KIB))
    git(repo, "add", "fixtures/golden.bin")
    git(repo, "update-index", "--skip-worktree", "fixtures/golden.bin")
    (repo / "fixtures/golden.bin").unlink()
    blocked(git_commit(repo), "fixtures/golden.bin")


def test_pass_filenames_false_checks_everything_staged(repo: Path) -> None:
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"pass_filenames": False}},
    )
    write(repo / "big.bin", big(600 * KIB))
    blocked(commit(repo, "x", "big.bin", verify=True), "big.bin")


# ---- data patterns in any case -------------------------------------------------------------------


def test_data_patterns_match_any_case(repo: Path) -> None:
    install_local_hooks(repo, ["require-dvc-files"], ["pre-commit"])
    names = ["train.CSV", "model.PKL", "weights.Pt", "data.Parquet", "set.ZIP"]
    for name in names:
        write(repo / name, "tiny\n")
    out = blocked(commit(repo, "data", *names, verify=True), *names)
    assert out.count("data file stored in git") == len(names)


def test_data_patterns_case_sensitive_on_request(repo: Path) -> None:
    write(repo / "pyproject.toml", "[tool.repro-hooks]\ndata-patterns-case-sensitive = true\n")
    commit(repo, "policy", "pyproject.toml")
    install_local_hooks(repo, ["require-dvc-files"], ["pre-commit"])
    write(repo / "README.TXT.CSV", "tiny\n")
    passed(commit(repo, "upper case only", "README.TXT.CSV", verify=True))


# ---- bulk data under the size limit --------------------------------------------------------------


def test_bulk_images_under_the_size_limit_hit_the_commit_total(repo: Path) -> None:
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax-commit-total = "1MiB"\n')
    commit(repo, "policy", "pyproject.toml")
    install_local_hooks(repo, ["block-large-files", "require-dvc-files"], ["pre-commit"])
    for i in range(40):  # 40 x 40 KiB of incompressible "images": each far under 500 KiB
        write(repo / f"images/img_{i:03d}.png", big(40 * KIB, seed=i))
    proc = commit(repo, "bulk", "images", verify=True)
    out = blocked(proc, "(commit)")
    assert "(commit): 40 staged files take 1.6 MiB in git, over the 1 MiB total-size limit" in out
    assert "images/img_000.png" not in out  # images are no data pattern, and each is small
    git(repo, "rm", "-q", "-r", "--cached", "images")
    for i in range(10):
        git(repo, "add", f"images/img_{i:03d}.png")
    passed(git_commit(repo))  # 400 KiB: a handful of images is normal


def test_commit_total_counts_distinct_blobs_as_stored() -> None:
    policy = Policy(max_commit_total=100)
    same = [Blob(f"copy{i}".encode(), "100644", "a" * 40) for i in range(5)]
    assert commit_total_finding(same, {"a" * 40: 60}, policy) is None  # stored once
    two = [*same, Blob(b"other", "100644", "b" * 40)]
    finding = commit_total_finding(two, {"a" * 40: 60, "b" * 40: 60}, policy)
    assert finding is not None and finding.rule == "total-size"
    excluded = Policy(max_commit_total=100, exclude=("other",))
    assert commit_total_finding(two, {"a" * 40: 60, "b" * 40: 60}, excluded) is None


@pytest.mark.parametrize(
    "name",
    [
        "a.zip",
        "a.tar",
        "a.csv.gz",
        "a.npy",
        "a.npz",
        "a.ckpt",
        "a.pt",
        "a.pth",
        "a.safetensors",
        "a.onnx",
        "a.h5",
        "a.tflite",
        "a.parquet",
        "a.feather",
        "a.arrow",
        "a.tfrecord",
        "a.7z",
    ],
)
def test_default_data_patterns_cover_ml_formats(name: str) -> None:
    assert Policy().is_data(f"dir/{name.upper()}")
    assert Policy().is_data(name)
    assert not Policy().is_data("docs/logo.png")
    assert all(p.startswith("*.") for p in DEFAULT_DATA_PATTERNS)


# ---- a misspelled table --------------------------------------------------------------------------

MISSPELLED = [
    "tool.repro_hooks",
    "tool.reprohooks",
    "tool.Repro-Hooks",
    "tool.repro.hooks",
    "tool.repro-hook",
    "repro-hooks",
]


@pytest.mark.parametrize("table", MISSPELLED)
def test_misspelled_table_is_named(repo: Path, table: str) -> None:
    write(repo / "pyproject.toml", f'[{table}]\nmax-size = "5MB"\n')
    proc = run_cli(repo, "check-large-files")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        f"repro-hooks: pyproject.toml: [{table}]: misspelled table, ignored by every check: "
        "spell it [tool.repro-hooks]\n"
    )
    assert misspelled_table({"tool": {"repro-hooks": {}, "black": {}}}) is None


def test_misspelled_table_stops_the_commit(repo: Path) -> None:
    write(repo / "pyproject.toml", '[tool.repro_hooks]\nmax-size = "5MB"\n')
    commit(repo, "policy", "pyproject.toml")
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / "notes.txt", "x\n")
    out = blocked(commit(repo, "x", "notes.txt", verify=True), "[tool.repro_hooks]")
    assert "spell it [tool.repro-hooks]" in out


# ---- paths that match nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "code"),
    [
        ("data", 1),
        ("data/", 1),
        ("./data/../data", 1),
        (".", 1),
        ("data/*.bin", 2),
        ("missing.bin", 2),
        (":(glob)data/*", 2),
    ],
)
def test_user_paths_are_literal_and_must_match(repo: Path, arg: str, code: int) -> None:
    write(repo / "data/big.bin", big(600 * KIB))
    git(repo, "add", "-A")
    proc = run_cli(repo, "check-large-files", arg)
    assert proc.returncode == code, proc.stdout + proc.stderr
    if code == 1:
        assert proc.stdout.startswith("data/big.bin: 600 KiB in git")
    else:
        assert proc.stderr == (
            f"repro-hooks: {arg}: matches no file in the index (give a tracked or staged file "
            "or a directory; globs are not expanded)\n"
        )


def test_hook_args_naming_a_directory(repo: Path) -> None:
    install_local_hooks(
        repo,
        ["block-large-files"],
        ["pre-commit"],
        extra={"block-large-files": {"args": ["data/"], "pass_filenames": False}},
    )
    write(repo / "data/big.bin", big(600 * KIB))
    blocked(commit(repo, "x", "data/big.bin", verify=True), "data/big.bin")


# ---- further doors found on the commit side -------------------------------------------------


def test_plain_shim_ignores_leaked_pre_commit_variables(repo: Path) -> None:
    """PRE_COMMIT=1 in the environment (leaked from an outer pre-commit run) would turn "no
    names" into "every name filtered out"; PRE_COMMIT_FROM_REF into a push range."""
    assert run_cli(repo, "install").returncode == 0
    write(repo / "big.bin", big(600 * KIB))
    git(repo, "add", "big.bin")
    leaked = {
        **os.environ,
        "PRE_COMMIT": "1",
        "PRE_COMMIT_FROM_REF": "HEAD",
        "PRE_COMMIT_TO_REF": "HEAD",
    }
    proc = subprocess.run(
        ["git", "commit", "-m", "x"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=leaked,
    )
    blocked(proc, "big.bin")


def test_partial_commit_and_commit_all_are_checked(repo: Path) -> None:
    """`git commit <path>` and `git commit -a` stage into a temporary index the hook must read."""
    install_local_hooks(repo, ["block-large-files"], ["pre-commit"])
    write(repo / "notes.txt", "short\n")
    commit(repo, "notes", "notes.txt")
    write(repo / "notes.txt", big(600 * KIB))
    for args in (["notes.txt"], ["-a"]):
        proc = subprocess.run(
            ["git", "commit", "-m", "grow", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        blocked(proc, "notes.txt")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('max-commit-total = "lots"', "tool.repro-hooks.max-commit-total: not a size"),
        ("max-push-total = true", "tool.repro-hooks.max-push-total: expected a size"),
        (
            'data-patterns-case-sensitive = "no"',
            "data-patterns-case-sensitive: expected true or false",
        ),
    ],
)
def test_new_keys_are_validated(repo: Path, line: str, reason: str) -> None:
    write(repo / "pyproject.toml", f"[tool.repro-hooks]\n{line}\n")
    proc = run_cli(repo, "check-large-files")
    assert proc.returncode == 2
    assert reason in proc.stderr and proc.stderr.count("\n") == 1


# ---- every way pre-commit filters block-large-files' files -----------------

PAIR = ["block-large-files", "require-dvc-files"]
TRAIN_CSV = "a,b,c\n" + "0.5,1.25,label\n" * 180_000  # 2.7 MB of text: identify tags it csv, text


@pytest.mark.parametrize(
    ("top", "hook"),
    [
        pytest.param({"files": "^src/"}, {}, id="top-level-files"),
        pytest.param({"exclude": "^data/"}, {}, id="top-level-exclude"),
        pytest.param({}, {"files": "^src/"}, id="hook-files"),
        pytest.param({}, {"exclude": "^data/"}, id="hook-exclude"),
        pytest.param({}, {"types": ["python"]}, id="types"),
        pytest.param({}, {"types_or": ["python", "markdown"]}, id="types_or"),
        pytest.param({}, {"exclude_types": ["csv"]}, id="exclude_types"),
        pytest.param({}, {"exclude_types": ["text"]}, id="exclude_types-text"),
        pytest.param({}, {"pass_filenames": False, "exclude": "^data/"}, id="no-filenames"),
    ],
)
def test_large_data_hidden_from_block_large_files_is_reported(
    repo: Path, top: dict[str, object], hook: dict[str, object]
) -> None:
    """Check-dvc left large data files to block-large-files, which the config
    kept from seeing them: neither hook reported a 2.7 MB data/train.csv. Both report now,
    never neither."""
    install_local_hooks(repo, PAIR, ["pre-commit"], {"block-large-files": hook}, top)
    write(repo / "data/train.csv", TRAIN_CSV)
    before = head(repo)
    out = blocked(commit(repo, "train", "data/train.csv", verify=True), "data/train.csv")
    assert "data/train.csv: data file stored in git" in out
    assert head(repo) == before


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param({}, id="no-filter"),
        pytest.param({"files": "^data/"}, id="files-passing-it"),
        pytest.param({"types": ["text"], "exclude_types": ["python"]}, id="types-passing-it"),
        pytest.param({"args": ["--max-size", "2MB"]}, id="limit-it-exceeds"),
    ],
)
def test_large_data_seen_by_block_large_files_is_reported_once(
    repo: Path, hook: dict[str, object]
) -> None:
    """The other side of door 3: when pre-commit provably passes the file to block-large-files
    at a limit it exceeds, one finding, once, with block-large-files' recipe."""
    install_local_hooks(repo, PAIR, ["pre-commit"], {"block-large-files": hook})
    write(repo / "data/train.csv", TRAIN_CSV)
    out = blocked(commit(repo, "train", "data/train.csv", verify=True), "data/train.csv")
    assert out.count("data/train.csv:") == 1, out
    assert "data/train.csv: 2.6 MiB in git" in out or "data/train.csv: 2.7 MB in git" in out, out


def test_large_data_committed_earlier_is_reported(repo: Path) -> None:
    """Door 3, the first filter of all: pre-commit passes only staged names. A large CSV
    committed past the hooks stayed in the tree; check-dvc left it to block-large-files, which
    is never passed it at a later commit of something else: neither reported."""
    install_local_hooks(repo, PAIR, ["pre-commit"])
    write(repo / "data/train.csv", TRAIN_CSV)
    assert commit(repo, "sneaked in", "data/train.csv").returncode == 0  # --no-verify
    write(repo / "code.py", "print('hi')\n")
    out = blocked(commit(repo, "code", "code.py", verify=True), "data/train.csv")
    assert "data/train.csv: data file stored in git" in out


def test_one_hook_run_by_hand_reports(repo: Path) -> None:
    """`pre-commit run require-dvc-files`: block-large-files does not run at all."""
    install_local_hooks(repo, PAIR, ["pre-commit"])
    write(repo / "data/train.csv", TRAIN_CSV)
    git(repo, "add", "data/train.csv")
    for args in (["require-dvc-files"], ["require-dvc-files", "--all-files"]):
        proc = subprocess.run(
            [str(VENV_BIN / "pre-commit"), "run", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        out = blocked(proc, "data/train.csv")
        assert "data/train.csv: data file stored in git" in out


def test_config_file_of_the_installed_hook_is_the_one_read(repo: Path) -> None:
    """`pre-commit install -c other.yaml`: the hook runs other.yaml (no block-large-files); a
    .pre-commit-config.yaml that has it must not make check-dvc leave the file to it."""
    install_local_hooks(repo, PAIR, ["pre-commit"])
    manifest = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    hooks = manifest["repos"][0]["hooks"]
    manifest["repos"][0]["hooks"] = [h for h in hooks if h["id"] == "require-dvc-files"]
    write(repo / "other.yaml", yaml.safe_dump(manifest, sort_keys=False))
    git(repo, "add", "other.yaml")
    proc = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "install", "-f", "-c", "other.yaml"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    write(repo / "data/train.csv", TRAIN_CSV)
    out = blocked(commit(repo, "train", "data/train.csv", verify=True), "data/train.csv")
    assert "data/train.csv: data file stored in git" in out


def test_installed_plugin_reports_once_or_both_never_neither(
    repo: Path, plugin_snapshot: Path
) -> None:
    """Door 3 through the published path (`repo:` this checkout, `language: python`): without
    a filter the file is reported once; with `types: [text]` (which passes a CSV, but identify
    is not in the hook's environment to prove it) both hooks report it."""
    rev = git(plugin_snapshot, "rev-parse", "HEAD").strip()

    def configure(extra: str) -> None:
        (repo / ".pre-commit-config.yaml").write_text(
            f"repos:\n- repo: {plugin_snapshot}\n  rev: {rev}\n  hooks:\n"
            f"  - id: block-large-files\n{extra}  - id: require-dvc-files\n"
        )
        git(repo, "add", ".pre-commit-config.yaml")
        git(repo, "commit", "-q", "--no-verify", "-m", "config")

    configure("")
    subprocess.run(
        [str(VENV_BIN / "pre-commit"), "install"], cwd=repo, check=True, capture_output=True
    )
    write(repo / "data/train.csv", TRAIN_CSV)
    out = blocked(commit(repo, "train", "data/train.csv", verify=True), "data/train.csv")
    assert out.count("data/train.csv:") == 1, out
    git(repo, "reset", "-q", "data/train.csv")
    configure("    types: [text]\n")
    out = blocked(commit(repo, "train", "data/train.csv", verify=True), "data/train.csv")
    assert out.count("data/train.csv:") == 2, out
    assert "data/train.csv: data file stored in git" in out


# ---- a replace ref at the commit stage ---------------------------------------------------------


def hash_object(repo: Path, data: bytes, kind: str = "blob") -> str:
    # --literally: write the object exactly as given (git would write a tag with a repeated
    # header itself only through this door; fsck still accepts it)
    return git(repo, "hash-object", "-t", kind, "-w", "--literally", "--stdin", input=data).strip()


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
