"""Meta-tests: the manifest validates, every hook id and command is documented, shims are sh."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from repro_hooks.cli import COMMANDS
from tests.helpers import MANIFEST, ROOT, VENV_BIN, big, built_once, git, wait_until, write

README = (ROOT / "README.md").read_text(encoding="utf-8")
# the reference moved from the README to docs/*.md; the README keeps the hooks table
DOCS = "\n".join(
    page.read_text(encoding="utf-8")
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)
HOOKS = yaml.safe_load(MANIFEST.read_text())


def test_manifest_validates() -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "validate-manifest", str(MANIFEST)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("hook", HOOKS, ids=[h["id"] for h in HOOKS])
def test_hook_documented_and_well_formed(hook: dict[str, object]) -> None:
    assert f"`{hook['id']}`" in README
    entry = str(hook["entry"])
    assert entry.startswith("repro-hooks ")
    assert entry.split()[1] in COMMANDS  # subcommands live in entry, never in args
    assert "args" not in hook
    stages = hook["stages"]
    assert isinstance(stages, list) and stages
    assert hook.get("minimum_pre_commit_version") == "3.2.0"
    if any(s.startswith("post-") for s in stages):
        assert hook.get("always_run") is True and hook.get("pass_filenames") is False


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_documented(name: str) -> None:
    assert re.search(rf"repro-hooks {re.escape(name)}(?![\w-])", DOCS), name


@pytest.mark.parametrize("shim", sorted(p.name for p in (ROOT / "hooks").iterdir()))
def test_hook_shims_are_posix_sh_and_exec_the_cli(shim: str) -> None:
    text = (ROOT / "hooks" / shim).read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "exec repro-hooks " in text
    assert subprocess.run(["sh", "-n", str(ROOT / "hooks" / shim)], check=False).returncode == 0


def test_plain_pre_commit_shim_blocks(repo: Path) -> None:
    hook = repo / ".git/hooks/pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_bytes((ROOT / "hooks/pre-commit").read_bytes())
    hook.chmod(0o755)
    write(repo / "big.bin", big(600 * 1024))
    git(repo, "add", "-A")
    proc = subprocess.run(
        ["git", "commit", "-m", "x"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "big.bin: 600 KiB in git" in proc.stdout + proc.stderr


def test_plain_shim_without_cli_says_so(repo: Path) -> None:
    proc = subprocess.run(
        ["sh", str(ROOT / "hooks/pre-commit")],
        cwd=repo,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 1
    assert "repro-hooks: not installed" in proc.stderr


def test_own_pre_commit_config_dogfoods_the_manifest() -> None:
    """The repository's own config uses its own hooks, with the manifest's entries and stages."""
    config = ROOT / ".pre-commit-config.yaml"
    proc = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "validate-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = {h["id"]: h for h in HOOKS}
    local = {h["id"]: h for r in yaml.safe_load(config.read_text())["repos"] for h in r["hooks"]}
    ours = [hook_id for hook_id in local if hook_id in manifest]
    assert {"block-large-files", "require-dvc-files", "scan-pushed-commits"} <= set(ours)
    for hook_id in ours:
        assert local[hook_id]["entry"] == manifest[hook_id]["entry"]
        assert local[hook_id]["stages"] == manifest[hook_id]["stages"]


def test_own_repository_passes_its_own_commit_stage_hooks() -> None:
    """Dogfooding for real: this checkout's tracked files pass check-large-files --all and
    check-dvc (when run from a git checkout; CI runs on a clone)."""
    if not (ROOT / ".git").exists():  # pragma: no cover - a source tarball
        pytest.skip("not a git checkout")
    for args in (["check-large-files", "--all"], ["check-dvc"]):
        proc = subprocess.run(
            [str(VENV_BIN / "repro-hooks"), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_built_once_builds_once_and_retries_a_failed_build(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The suite's shared builds (tests/helpers.built_once): a second caller that arrives while
    the first is building waits for it (seen blocked in /proc/locks, a condition, not a clock)
    and reuses its result; a build that raised is started again by the next caller."""
    import threading
    import uuid

    name = f"meta-{uuid.uuid4().hex}"
    building, release = threading.Event(), threading.Event()
    calls: list[str] = []
    results: dict[str, Path] = {}

    def build(path: Path) -> None:
        calls.append(threading.current_thread().name)
        building.set()
        assert release.wait(600)
        (path / "made").write_text("once")

    def caller() -> None:
        results[threading.current_thread().name] = built_once(tmp_path_factory, name, build)

    def blocked_flocks() -> int:  # this process's callers waiting on a flock
        lines = Path("/proc/locks").read_text().splitlines()
        return sum(" -> FLOCK " in ln and ln.split()[5] == str(os.getpid()) for ln in lines)

    first = threading.Thread(target=caller, name="first")
    first.start()
    assert building.wait(600)
    waiting_before = blocked_flocks()
    second = threading.Thread(target=caller, name="second")
    second.start()
    # until the second caller waits on the lock (or builds, or ends: then the asserts fail)
    wait_until(
        lambda: blocked_flocks() > waiting_before or len(calls) > 1 or not second.is_alive(),
        lambda: "the second caller neither waited on the lock nor built",
    )
    release.set()
    first.join(600)
    second.join(600)
    assert calls == ["first"]
    assert results["first"] == results["second"]
    assert (results["second"] / "made").read_text() == "once"

    def broken(path: Path) -> None:
        (path / "half").write_text("")
        raise RuntimeError("build failed")

    other = f"{name}-retry"
    with pytest.raises(RuntimeError):
        built_once(tmp_path_factory, other, broken)
    path = built_once(tmp_path_factory, other, lambda p: (p / "made").write_text("again"))
    assert sorted(p.name for p in path.iterdir()) == ["made"]  # the half-built rest is gone


# ---- every git process the package starts gets the one git environment ------------------


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
