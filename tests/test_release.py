"""The release: one version, a wheel and an sdist that build, pass `twine check`, install into a
fresh virtual environment and run the hooks there (console script and the plain git shims that
`repro-hooks install` copies from the wheel's data files); and the README's pre-commit snippet
works as printed against this checkout.

The build runs once per run, shared by the workers (tests/helpers.built_once): ~20 s, PyPI only
for the build backend (setuptools in build's isolated environment).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

import repro_hooks
from tests.helpers import ROOT, VENV_BIN, big, built_once, copy_checkout, git, write

pytestmark = pytest.mark.slow

README = (ROOT / "README.md").read_text(encoding="utf-8")
CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=env if env is not None else os.environ.copy(),
    )
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_one_version() -> None:
    """pyproject reads the version from the package; the CLI and the CHANGELOG say the same."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "repro_hooks.__version__"
    version = repro_hooks.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    out = run(VENV_BIN / "repro-hooks", "--version")
    assert out.strip().endswith(f"version {version}")
    # the newest CHANGELOG entry is the version being released
    first = re.search(r"^## \[?v?(\d+\.\d+\.\d+)\]?", CHANGELOG, re.M)
    assert first is not None and first.group(1) == version
    assert f"rev: v{version}" in README


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` (sdist, then the wheel from the sdist) on a copy of the working tree,
    so the checkout gets no build/ or egg-info. Once per run (tests/helpers.built_once)."""

    def build(path: Path) -> None:
        src = copy_checkout(path / "src")
        run(sys.executable, "-m", "build", "--outdir", path / "dist", src)

    return built_once(tmp_path_factory, "dist", build) / "dist"


def test_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    version = repro_hooks.__version__
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"repro_hooks-{version}-py3-none-any.whl", f"repro_hooks-{version}.tar.gz"]
    out = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert out.count("PASSED") == 2, out


@pytest.fixture(scope="module")
def fresh_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel installed (--no-deps); its two dependencies
    (click, PyYAML) come from the test environment's site-packages through a .pth line, so no
    network is needed and nothing of this checkout is importable there."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    (wheel,) = dist.glob("*.whl")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of ROOT
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        venv / "bin" / "python",
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
        env=clean,
    )
    purelib = Path(
        run(
            venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"
        ).strip()
    )
    (purelib / "zz_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def fresh_env(venv: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "COV_CORE"))}
    env.pop("COVERAGE_PROCESS_START", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    env["HOME"] = str(home)
    return env


def test_wheel_installs_and_runs_the_hooks(fresh_venv: Path, tmp_path: Path) -> None:
    env = fresh_env(fresh_venv, tmp_path)
    where = run(
        fresh_venv / "bin" / "python",
        "-c",
        "import repro_hooks; print(repro_hooks.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(fresh_venv), where
    version = run(fresh_venv / "bin" / "repro-hooks", "--version", env=env)
    assert version.strip().endswith(repro_hooks.__version__)
    shims = fresh_venv / "share" / "repro-hooks" / "hooks"
    assert sorted(p.name for p in shims.iterdir()) == sorted(
        p.name for p in (ROOT / "hooks").iterdir()
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "--no-verify", "-m", "root")
    out = run("repro-hooks", "install", cwd=repo, env=env)
    installed = (repo / ".git" / "hooks" / "pre-commit").read_text()
    assert installed == (shims / "pre-commit").read_text(), out
    # a real commit through the installed shim: blocked, then accepted
    write(repo / "big.bin", big(600 * 1024))
    git(repo, "add", "big.bin")
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", "big"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "big.bin: 600 KiB in git" in proc.stdout + proc.stderr
    git(repo, "rm", "-q", "--cached", "big.bin")
    write(repo / "small.txt", "ok\n")
    git(repo, "add", "small.txt")
    run("git", "commit", "-q", "-m", "small", cwd=repo, env=env)


def readme_snippet() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.S)
    (snippet,) = [b for b in blocks if "rev: v" in b and "repo: https://" in b]
    return snippet


def test_readme_says_how_to_pin() -> None:
    """The snippet names a tag; the lines next to it say how to pin a commit instead."""
    at = README.index(readme_snippet())
    near = README[max(0, at - 800) : at + len(readme_snippet()) + 800]
    assert "pre-commit autoupdate" in near and "sha" in near


@pytest.mark.e2e
def test_readme_snippet_works_against_this_checkout(tmp_path: Path, plugin_snapshot: Path) -> None:
    """The README's snippet, with only its repo URL (this checkout: a one-commit snapshot of its
    working tree, so uncommitted edits are tested too) and rev (that commit's sha) replaced,
    through a real commit: pre-commit clones this repository at that sha, finds
    every hook id the snippet names in its manifest (an unknown id fails the whole run), builds
    the commit-stage environment (`pip install .`) and runs the commit-stage hooks.

    Not `pre-commit install-hooks`: it would also build the MLflow hooks' environments (full
    MLflow: over 8 minutes and 770 MB here) and DVC's; those differ only by
    `additional_dependencies`, which pre-commit installs as pip would."""
    snippet = readme_snippet()
    url = re.search(r"repo: (\S+)", snippet)
    rev = re.search(r"rev: (\S+)", snippet)
    assert url is not None and rev is not None
    head = git(plugin_snapshot, "rev-parse", "HEAD").strip()
    config = snippet.replace(url.group(1), str(plugin_snapshot))
    config = config.replace(f"rev: {rev.group(1)}", f"rev: {head}")
    assert config.count("\n") == snippet.count("\n")
    parsed = yaml.safe_load(config)
    assert [r["repo"] for r in parsed["repos"]] == [str(plugin_snapshot)]
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".pre-commit-config.yaml").write_text(config)
    git(repo, "add", ".pre-commit-config.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "config")
    pre_commit = str(VENV_BIN / "pre-commit")
    run(pre_commit, "validate-config", ".pre-commit-config.yaml", cwd=repo)
    run(pre_commit, "install", "--hook-type", "pre-commit", cwd=repo)
    write(repo / "big.bin", big(600 * 1024))
    git(repo, "add", "big.bin")
    proc = subprocess.run(
        ["git", "commit", "-m", "big"], cwd=repo, capture_output=True, text=True, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "big.bin: 600 KiB in git" in out
    assert "require exact DVC files for data" in out  # the second commit-stage hook ran too
    git(repo, "rm", "-q", "--cached", "big.bin")
    write(repo / "notes.txt", "fine\n")
    git(repo, "add", "notes.txt")
    run("git", "commit", "-q", "-m", "notes", cwd=repo)
