"""The CI spelling of the push hooks, and one finding printed once, through the real pre-commit.

`pre-commit run --all-files --hook-stage pre-push` sets no PRE_COMMIT_FROM_REF/TO_REF: the push
hooks then check HEAD's whole history. Each finding is printed by exactly one
hook in the recommended configuration.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.dvc_helpers import dvc
from tests.helpers import VENV_BIN, big, commit, git, install_local_hooks, run_cli, write

pytestmark = pytest.mark.e2e


def pre_commit_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def test_ci_spelling_of_the_push_stage_checks_head_history(dvc_repo: Path, tmp_path: Path) -> None:
    dvc(dvc_repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    install_local_hooks(
        dvc_repo,
        ["scan-pushed-commits", "require-dvc-pushed"],
        ["pre-push"],
        {"require-dvc-pushed": {"additional_dependencies": []}},
    )
    write(dvc_repo / "data/a.txt", "hello\n")
    dvc(dvc_repo, "add", "-q", "data/a.txt")
    commit(dvc_repo, "data")
    # clean history, data not in the DVC remote yet: only require-dvc-pushed fails
    out = pre_commit_run(dvc_repo, "--all-files", "--hook-stage", "pre-push")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "nothing to scan" not in out.stdout + out.stderr
    assert "data/a.txt: b1946ac92492d2347c6235b4d2611184 not in DVC remote" in out.stdout
    assert "scan pushed commits" in out.stdout and "Passed" in out.stdout
    dvc(dvc_repo, "push", "-q")
    out = pre_commit_run(dvc_repo, "--all-files", "--hook-stage", "pre-push")
    assert out.returncode == 0, out.stdout + out.stderr
    # a large file added and removed again, deep in HEAD's history: scan sees it
    write(dvc_repo / "big.bin", big(600 * 1024))
    commit(dvc_repo, "big")
    git(dvc_repo, "rm", "-q", "big.bin")
    commit(dvc_repo, "no big")
    out = pre_commit_run(dvc_repo, "--all-files", "--hook-stage", "pre-push")
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.count("big.bin: 600 KiB in git") == 1, out.stdout


RECOMMENDED = ["block-large-files", "require-dvc-files", "scan-pushed-commits"]


def test_each_finding_printed_once_at_commit_and_at_push(dvc_repo: Path, tmp_path: Path) -> None:
    """The recommended configuration: a large CSV at commit is reported by block-large-files
    alone (one recipe); at push by scan-pushed-commits alone."""
    install_local_hooks(dvc_repo, RECOMMENDED, ["pre-commit", "pre-push"])
    write(dvc_repo / "data/train.csv", big(2 * 1024 * 1024))
    proc = commit(dvc_repo, "train", verify=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert out.count("data/train.csv:") == 1, out
    assert "data/train.csv: 2 MiB in git" in out
    assert "dvc add" in out  # block-large-files' recipe, as commands that run as printed
    assert "data in git:" not in out  # require-dvc-files' recipe for the same file: not printed
    # a small data file only require-dvc-files reports: still reported, by it alone
    write(dvc_repo / "data/tiny.csv", "a,b\n1,2\n")
    proc = commit(dvc_repo, "train", verify=True)
    out = proc.stdout + proc.stderr
    assert out.count("data/train.csv:") == 1 and out.count("data/tiny.csv:") == 1, out
    assert "data/tiny.csv: data file stored in git" in out
    # skipped by the user: require-dvc-files no longer leaves the large file to it
    proc = subprocess.run(
        ["git", "commit", "-m", "x"],
        cwd=dvc_repo,
        capture_output=True,
        text=True,
        env={**os.environ, "SKIP": "block-large-files"},
        check=False,
    )
    assert proc.returncode == 1
    assert "data/train.csv: data file stored in git" in proc.stdout + proc.stderr
    # at push: committed past the hooks, then pushed
    git(dvc_repo, "rm", "-q", "--cached", "data/tiny.csv")
    assert commit(dvc_repo, "sneaked in").returncode == 0  # --no-verify
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(dvc_repo, "remote", "add", "origin", str(remote))
    proc = subprocess.run(
        ["git", "push", "origin", "main"], cwd=dvc_repo, capture_output=True, text=True, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert out.count("data/train.csv:") == 1, out


def test_without_block_large_files_require_dvc_files_reports_large_data(dvc_repo: Path) -> None:
    install_local_hooks(dvc_repo, ["require-dvc-files"], ["pre-commit"])
    write(dvc_repo / "data/train.csv", big(2 * 1024 * 1024))
    proc = commit(dvc_repo, "train", verify=True)
    assert proc.returncode == 1
    assert "data/train.csv: data file stored in git" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("config", "env", "limit"),
    [
        pytest.param("", {}, None, id="not-under-pre-commit"),
        pytest.param(None, {"PRE_COMMIT": "1"}, None, id="no-config-file"),
        pytest.param("repos: [", {"PRE_COMMIT": "1"}, None, id="malformed-yaml"),
        pytest.param("- a list", {"PRE_COMMIT": "1"}, None, id="not-a-mapping"),
        pytest.param("{hooks}", {"PRE_COMMIT": "1"}, 500 * 1024, id="default-limit"),
        pytest.param(
            "{hooks}", {"PRE_COMMIT": "1", "PRE_COMMIT_FROM_REF": "a"}, None, id="at-push"
        ),
        pytest.param(
            "{hooks}", {"PRE_COMMIT": "1", "SKIP": "x,block-large-files"}, None, id="skipped"
        ),
        pytest.param(
            "{hooks}\n    alias: blf", {"PRE_COMMIT": "1", "SKIP": "blf"}, None, id="skipped-alias"
        ),
        pytest.param(
            "{hooks}", {"PRE_COMMIT": "1", "PREK_SKIP": "block-large-files"}, None, id="prek-skip"
        ),
        pytest.param("{hooks}\n    stages: [pre-push]", {"PRE_COMMIT": "1"}, None, id="push-only"),
        pytest.param(
            "{hooks}\n    stages: [commit]", {"PRE_COMMIT": "1"}, 500 * 1024, id="legacy-stage"
        ),
        pytest.param(
            "default_stages: [pre-push]\n{hooks}", {"PRE_COMMIT": "1"}, None, id="default-stages"
        ),
        pytest.param(
            "{hooks}\n    pass_filenames: false", {"PRE_COMMIT": "1"}, None, id="no-filenames"
        ),
        pytest.param("{hooks}\n    files: '['", {"PRE_COMMIT": "1"}, None, id="bad-regex"),
        pytest.param("files: '('\n{hooks}", {"PRE_COMMIT": "1"}, None, id="bad-top-regex"),
        pytest.param("{hooks}\n    types: text", {"PRE_COMMIT": "1"}, None, id="types-not-a-list"),
        pytest.param("{hooks}\n    entry: echo", {"PRE_COMMIT": "1"}, None, id="not-our-entry"),
        pytest.param(
            "repos:\n- repo: https://x/other-hooks\n  hooks:\n  - id: block-large-files",
            {"PRE_COMMIT": "1"},
            None,
            id="other-repo",
        ),
        pytest.param(
            "repos:\n- repo: https://x/repro-hooks.git\n  hooks:\n  - id: block-large-files",
            {"PRE_COMMIT": "1"},
            500 * 1024,
            id="our-repo",
        ),
        pytest.param(
            "{hooks}\n    args: [--max-size, 2MB]", {"PRE_COMMIT": "1"}, 2_000_000, id="max-size"
        ),
        pytest.param("{hooks}\n    args: [--maxkb=100]", {"PRE_COMMIT": "1"}, 102_400, id="maxkb"),
        pytest.param(
            "{hooks}\n    args: [--config, p.toml]", {"PRE_COMMIT": "1"}, 3_000_000, id="config"
        ),
        pytest.param(
            "{hooks}\n    args: [--max-size=1KB, --config=p.toml]",
            {"PRE_COMMIT": "1"},
            1000,
            id="both",
        ),
        pytest.param(
            "{hooks}\n    args: [--maxkb, 1, --max-size, 1]",
            {"PRE_COMMIT": "1"},
            None,
            id="conflict",
        ),
        pytest.param("{hooks}\n    args: [--all]", {"PRE_COMMIT": "1"}, None, id="other-arg"),
        pytest.param(
            "{hooks}\n    args: [--max-size]", {"PRE_COMMIT": "1"}, None, id="missing-value"
        ),
        pytest.param(
            "{hooks}\n    args: [--max-size, huge]", {"PRE_COMMIT": "1"}, None, id="bad-size"
        ),
        pytest.param("{hooks}\n    args: --all", {"PRE_COMMIT": "1"}, None, id="args-not-a-list"),
    ],
)
def test_sibling_block_large_files_policy(
    tmp_path: Path, config: str | None, env: dict[str, str], limit: int | None
) -> None:
    from repro_hooks.policy.config import Policy
    from repro_hooks.policy.sibling_hooks import HookRunner, large_files_runs_at_commit

    hooks = (
        "repos:\n- repo: local\n  hooks:\n  - id: other\n  - id: block-large-files\n"
        "    entry: repro-hooks check-large-files"
    )
    if config is not None:
        (tmp_path / ".pre-commit-config.yaml").write_text(config.replace("{hooks}", hooks))
    (tmp_path / "p.toml").write_text('max-size = "3MB"\n')
    runner = HookRunner("pre-commit", ".pre-commit-config.yaml")
    got = large_files_runs_at_commit(tmp_path, Policy(), env, runner)
    assert (got.runs[0].policy.max_size if got is not None else None) == limit
    # not started by the framework's commit hook: never covered
    assert large_files_runs_at_commit(tmp_path, Policy(), env, None) is None


HOOK_IMPL = ["/v/bin/python", "-mpre_commit", "hook-impl"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            [
                *HOOK_IMPL,
                "--config=.pre-commit-config.yaml",
                "--hook-type=pre-commit",
                "--hook-dir",
                "/r/.git/hooks",
                "--",
            ],
            ("pre-commit", ".pre-commit-config.yaml"),
            id="git-commit",
        ),
        pytest.param(
            [*HOOK_IMPL, "--config=other.yaml", "--hook-type=pre-commit", "--"],
            ("pre-commit", "other.yaml"),
            id="install-c",
        ),
        pytest.param(
            ["/v/bin/python", "/v/bin/pre-commit", "hook-impl", "--hook-type", "pre-commit"],
            ("pre-commit", ".pre-commit-config.yaml"),
            id="script",
        ),
        pytest.param(
            [*HOOK_IMPL, "--config=c.yaml", "--hook-type=pre-push", "--"], None, id="pre-push"
        ),
        pytest.param(
            [*HOOK_IMPL, "--config=c.yaml", "--hook-type=pre-merge-commit"],
            None,
            id="pre-merge-commit",
        ),
        pytest.param([*HOOK_IMPL, "--config=c.yaml", "--hook-type"], None, id="missing-value"),
        pytest.param(
            [*HOOK_IMPL, "--hook-type=pre-commit", "--unknown"], None, id="unknown-option"
        ),
        pytest.param(
            ["/v/bin/python", "/v/bin/pre-commit", "run", "require-dvc-files"],
            None,
            id="run-one-hook",
        ),
        pytest.param(
            ["/v/bin/python", "/v/bin/pre-commit", "run", "--all-files"], None, id="run-all-files"
        ),
        pytest.param(
            ["/bin/sh", "hook-impl", "--hook-type=pre-commit"], None, id="not-a-framework"
        ),
        pytest.param(
            [
                "/v/bin/prek",
                "hook-impl",
                "--hook-dir=/r/.git/hooks",
                "--script-version=4",
                "--hook-type=pre-commit",
                "--",
            ],
            ("prek", ".pre-commit-config.yaml"),
            id="prek",
        ),
        pytest.param(
            ["/v/bin/prek", "hook-impl", "--hook-type=pre-commit", "block-large-files"],
            None,
            id="prek-one-hook",
        ),
        pytest.param(
            ["/v/bin/prek", "hook-impl", "--hook-type=pre-commit", "-C", "sub"], None, id="prek-cd"
        ),
        pytest.param(
            ["/v/bin/prek", "hook-impl", "--hook-type=pre-commit", "--skip", "x"],
            None,
            id="prek-skip",
        ),
    ],
)
def test_hook_runner_from_the_parent_command_line(
    argv: list[str], expected: tuple[str, str] | None
) -> None:
    from repro_hooks.policy.sibling_hooks import hook_runner

    got = hook_runner(argv)
    assert (None if got is None else (got.framework, got.config)) == expected


def push(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        ["git", "push", "origin", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_push_through_both_hooks_prints_each_finding_once(repo: Path, tmp_path: Path) -> None:
    """The README's set-up at push, pre-commit's scan-pushed-commits plus the plain
    shim (`repro-hooks install --hook pre-push`, run first as pre-push.legacy, every ref)
    printed every finding twice. One finding, once; no ref unchecked, with or without the
    shim, with scan-pushed-commits skipped."""
    install_local_hooks(repo, RECOMMENDED, ["pre-commit", "pre-push"])
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    legacy = repo / ".git" / "hooks" / "pre-push.legacy"
    assert legacy.is_file()
    git(tmp_path, "init", "-q", "--bare", "remote.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
    assert push(repo, "main")[0] == 0  # clean
    write(repo / "big.bin", big(600 * 1024))
    assert commit(repo, "big").returncode == 0  # --no-verify
    git(repo, "checkout", "-q", "-b", "other")
    write(repo / "big2.bin", big(700 * 1024, seed=2))
    assert commit(repo, "big2").returncode == 0
    git(repo, "checkout", "-q", "main")
    # two refs: pre-commit's hook sees main only, the shim both
    code, out = push(repo, "main", "other")
    assert code == 1, out
    assert out.count("big.bin:") == 1, out
    assert out.count("big2.bin:") == 1, out
    assert "printed above by the pre-push shim" in out
    # scan-pushed-commits skipped: the shim still checks every ref
    code, out = push(repo, "main", "other", env={"SKIP": "scan-pushed-commits"})
    assert code == 1 and out.count("big.bin:") == 1 and out.count("big2.bin:") == 1, out
    # no shim: pre-commit's hook checks the first ref itself
    legacy.unlink()
    code, out = push(repo, "main")
    assert code == 1, out
    assert out.count("big.bin:") == 1, out
    assert "printed above" not in out
    # a clean push through both
    assert run_cli(repo, "install", "--hook", "pre-push").returncode == 0
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    write(repo / "code.py", "print('hi')\n")
    assert commit(repo, "code").returncode == 0
    code, out = push(repo, "main")
    assert code == 0, out


def test_shim_record_covers_only_this_push_and_policy(tmp_path: Path) -> None:
    """The hand-off is trusted only for the same parent, remote, tip and policy; it is read
    once; a record of another version or garbage is none."""
    from dataclasses import replace

    from repro_hooks import handoff
    from repro_hooks.policy.config import Policy

    env = {
        "PRE_COMMIT_TO_REF": "b" * 40,
        "PRE_COMMIT_REMOTE_NAME": "origin",
        "PRE_COMMIT_REMOTE_URL": "/srv/r.git",
    }
    scan = handoff.shim_scan(["origin", "/srv/r.git"], ["a" * 40, "b" * 40], Policy(), 2)
    me = handoff.parent_identity()
    assert handoff.covers(scan, env, me, Policy())
    assert not handoff.covers(None, env, me, Policy())
    assert not handoff.covers(scan, env, "1:2", Policy())
    assert not handoff.covers(scan, env, me, replace(Policy(), max_size=1))
    assert not handoff.covers(scan, {**env, "PRE_COMMIT_TO_REF": "c" * 40}, me, Policy())
    assert not handoff.covers(scan, {**env, "PRE_COMMIT_REMOTE_NAME": "fork"}, me, Policy())
    assert not handoff.covers(scan, {}, me, Policy())
    handoff.save(tmp_path, scan)
    assert handoff.take(tmp_path) == scan
    assert handoff.take(tmp_path) is None  # read once
    (tmp_path / handoff.RECORD).write_text('{"version": 0}')
    assert handoff.take(tmp_path) is None
    (tmp_path / handoff.RECORD).write_text("garbage")
    assert handoff.take(tmp_path) is None
    handoff.save(tmp_path, scan)
    handoff.clear(tmp_path)
    assert handoff.take(tmp_path) is None
