"""Core: one run of each command's domain function in-process, on real git repositories: the
typed results the click commands only render."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.errors import ReproHooksError
from repro_hooks.history.run import BaselineWritten, ScanOptions, Verdict, pre_receive, scan
from repro_hooks.shims import SHIM_MARKER
from tests.helpers import big, commit, git, write

BIG = 600 * 1024  # over the default 500 KiB size limit
Z = "0" * 40


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def test_scan_results_and_notes(repo: Path, tmp_path: Path) -> None:
    base = head(repo)
    write(repo / "big.bin", big(BIG))
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax-size = "1MB"\n')
    commit(repo, "big, and a looser policy")
    notes: list[str] = []
    verdict = scan(ScanOptions(rev_range=f"{base}..HEAD"), env={}, note=notes.append)
    assert isinstance(verdict, Verdict)
    assert [(f.path, f.rule) for f in verdict.findings] == [("big.bin", "large-file")]
    assert "dvc add" in verdict.hint
    assert notes == [
        "note: HEAD changes the policy in pyproject.toml; the range is checked against "
        f"{base}'s (give --config to choose another)"
    ]
    clean = scan(ScanOptions(rev_range="HEAD..HEAD"), env={})
    assert isinstance(clean, Verdict)
    assert clean.findings == []
    baseline = tmp_path / "baseline.json"
    # the checkout's policy is now the looser one: --max-size holds the whole history to 500 KiB
    strict = ScanOptions(all_history=True, max_size="500KiB")
    written = scan(replace(strict, write_baseline=baseline), env={})
    assert written == BaselineWritten(1, baseline)
    known = scan(replace(strict, baseline=baseline), env={})
    assert isinstance(known, Verdict)
    assert known.findings == []


def test_scan_reads_pre_push_lines_from_the_stream_given(repo: Path) -> None:
    old = head(repo)
    write(repo / "big.bin", big(BIG))
    commit(repo, "big")
    lines = io.StringIO(f"refs/heads/main {head(repo)} refs/heads/main {old}\n")
    verdict = scan(ScanOptions(pre_push=True, hook_args=("origin", "url")), env={}, stdin=lines)
    assert isinstance(verdict, Verdict)
    assert [f.path for f in verdict.findings] == ["big.bin"]
    with pytest.raises(ReproHooksError, match="REMOTE URL go with --pre-push"):
        scan(ScanOptions(hook_args=("origin",)), env={})


def test_pre_receive_scans_what_no_ref_reaches(repo: Path) -> None:
    old = head(repo)
    write(repo / "big.bin", big(BIG))
    commit(repo, "big")
    new = head(repo)
    git(repo, "reset", "-q", "--hard", old)  # as on a server before the update: no ref has it
    verdict = pre_receive(
        config_file=None, baseline=None, stdin=io.StringIO(f"{old} {new} refs/heads/main\n")
    )
    assert [(f.path, f.rule) for f in verdict.findings] == [("big.bin", "large-file")]
    assert "rejected by the server's policy" in verdict.hint
    deletion = io.StringIO(f"{old} {Z} refs/heads/main\n")
    assert pre_receive(config_file=None, baseline=None, stdin=deletion) == Verdict([], "")


def test_check_dvc_paths_are_relative_to_the_directory_given(repo: Path) -> None:
    from repro_hooks.dvc.run import check

    (repo / "sub").mkdir()
    with pytest.raises(ReproHooksError, match=r"^\.\./\.\.: outside the repository"):
        check(("../..",), env={}, cwd=repo / "sub")
    assert check(("..",), env={}, cwd=repo / "sub").findings == []


def test_setup_prints_pre_commit_output_before_a_refused_shim(repo: Path) -> None:
    """pre-commit installs its scripts, then a hand-written pre-push.legacy stops the shim: its
    output stays on screen, then the one-line refusal, exit 2; the hand-written hook is kept."""
    write(repo / ".pre-commit-config.yaml", "default_install_hook_types: [pre-push]\nrepos: []\n")
    legacy = repo / ".git" / "hooks" / "pre-push.legacy"
    write(legacy, "#!/bin/sh\necho mine\n")
    result = CliRunner().invoke(cli, ["setup", str(repo)])
    assert result.exit_code == 2, result.output
    *pre_commit_lines, last = result.output.splitlines()
    assert any("pre-commit installed at" in line for line in pre_commit_lines), result.output
    assert last == (
        f"repro-hooks: {legacy}: a hook not written by repro-hooks is there; refusing to "
        "overwrite it (move it away, or call repro-hooks from it)"
    )
    assert legacy.read_text() == "#!/bin/sh\necho mine\n"
    assert SHIM_MARKER not in legacy.read_text()
