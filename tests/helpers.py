"""Small helpers over the real git and pre-commit CLIs, shared by the test layers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
VENV_BIN = Path(sys.executable).parent


def git(
    cwd: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> str:
    """`git ARGS` in `cwd`: its output. When it fails (with `check`), both its streams in the
    assertion: a hook that stopped a commit or a push writes to either."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, env=env, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout.decode("utf-8", "surrogateescape")


CAP = 600.0  # only stops a hung test; never a budget


def wait_until(condition: Callable[[], object], why: Callable[[], str], cap: float = CAP) -> None:
    """Poll `condition` until it holds; past the cap, fail with `why()`. Tests wait on
    conditions, never on a time budget: the cap only stops a hung test."""
    deadline = time.monotonic() + cap
    while not condition():
        assert time.monotonic() < deadline, why()
        time.sleep(0.1)


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A directory built once per test run and shared by every xdist worker, for session
    fixtures that are slow to build: the first worker to ask builds it under a lock, the others
    wait on that lock and reuse it. A build that fails leaves no marker, so the next one starts
    again. Its users only read it (copy it before changing anything).

    Not xdist's `--dist loadgroup`: with pytest 9.2 its groups are silently ignored
    (pytest-dev/pytest-xdist#1386), and a lock does not depend on how tests are scheduled."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's, not /tmp
    path, done = root / f"once-{name}", root / f"once-{name}.done"
    with open(root / f"once-{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            build(path)
            done.touch()
    return path


def copy_checkout(dest: Path) -> Path:
    """This checkout's working tree as git sees it (tracked and untracked files, ignored ones
    left out; uncommitted edits included), copied to dest."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for raw in listed.split("\0"):
        if raw and (ROOT / raw).is_file():
            (dest / raw).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / raw, dest / raw)
    return dest


def init_repo(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "--no-verify", "-m", "root")


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def big(n: int, seed: int = 0) -> bytes:
    """n incompressible-looking bytes (deterministic)."""
    import random

    return random.Random(seed).randbytes(n)


def commit(
    repo: Path, message: str = "change", *paths: str, verify: bool = False
) -> subprocess.CompletedProcess[str]:
    """`git add` (paths or -A) then `git commit`; hooks run only with verify=True."""
    git(repo, "add", *(paths or ("-A",)))
    args = ["git", "commit", "-m", message]
    if not verify:
        args.append("--no-verify")
    return subprocess.run(args, cwd=repo, capture_output=True, text=True, check=False)


def run_cli(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed console script in a subprocess, as a hook would run it."""
    return subprocess.run(
        [str(VENV_BIN / "repro-hooks"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def cli_here(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`repro-hooks *args` in this process (click's CliRunner), in repo: for tests of verdicts
    and output, not of the process (exit codes from the interpreter, encodings, signals).
    It saves the interpreter and coverage start-up of `run_cli` (~0.2 s a call). Exceptions
    propagate: a crash must never read as exit 1."""
    from click.testing import CliRunner

    from repro_hooks.cli import cli

    with contextlib.chdir(repo):
        result = CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(
        ["repro-hooks", *args], result.exit_code, result.stdout, result.stderr
    )


def install_local_hooks(
    repo: Path,
    hook_ids: list[str],
    hook_types: list[str],
    extra: dict[str, dict[str, object]] | None = None,
    top: dict[str, object] | None = None,
) -> None:
    """Write a `repo: local` .pre-commit-config.yaml built from our manifest (entries, stages
    and flags exactly as published; language `unsupported` so the installed console script
    runs; `extra` keys per hook id, `top` top-level keys), then `pre-commit install` the given
    hook types."""
    manifest = {h["id"]: h for h in yaml.safe_load(MANIFEST.read_text())}
    hooks = []
    for hook_id in hook_ids:
        hook = dict(manifest[hook_id])
        hook["language"] = "unsupported"
        hook.pop("minimum_pre_commit_version", None)
        hook.update((extra or {}).get(hook_id, {}))
        hooks.append(hook)
    config = {**(top or {}), "repos": [{"repo": "local", "hooks": hooks}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "pre-commit config")
    types = [arg for t in hook_types for arg in ("--hook-type", t)]
    proc = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "install", *types],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
