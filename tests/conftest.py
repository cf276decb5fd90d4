"""Hermetic test environment: real git, real pre-commit, nothing read from the real home."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import built_once, copy_checkout, git, init_repo

VENV_BIN = Path(sys.executable).parent
SUBPROCESS_COVERAGE = Path(__file__).parent / "subprocess_coverage"
CENSUS_ENV = "REPRO_HOOKS_TEST_CENSUS"  # `make census`: a line per process, at its exit

# hypothesis: no per-example deadline and no "too slow" health check. Both are wall-clock
# budgets (200 ms per example by default) that a loaded machine or a second suite breaks.
settings.register_profile(
    "repro-hooks", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("repro-hooks")


# What a test could leave in the checkout it runs from (MLflow's default local stores): none
# may appear during the session. Checked once every test has run (by xdist's controller too).
CHECKOUT = Path(__file__).resolve().parent.parent
LEFT_BEHIND = ("mlruns", "mlflow.db", "mlartifacts")
_PRESENT_AT_START: set[str] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _PRESENT_AT_START.update(n for n in LEFT_BEHIND if (CHECKOUT / n).exists())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = [n for n in LEFT_BEHIND if n not in _PRESENT_AT_START and (CHECKOUT / n).exists()]
    if left and not hasattr(session.config, "workerinput"):
        sys.stderr.write(f"\ntests left {', '.join(left)} in the checkout {CHECKOUT}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    template = tmp_path_factory.mktemp("git-template")
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("GIT_", "PRE_COMMIT", "MLFLOW_", "DVC_", "REPRO_HOOKS_")):
            del os.environ[key]
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_TEMPLATE_DIR=str(template),
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
        # one pre-commit cache per test session: environments are built once
        PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")),
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(home / "dvc-site-cache"),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        LC_ALL="C.UTF-8",
        # a generous delivery deadline: a loaded machine must not fail a link that works;
        # tests about the deadline pass --timeout with a store that never answers
        REPRO_HOOKS_MLFLOW_TIMEOUT="300",
    )
    # subprocess coverage (ours only) and `make census`: tests/subprocess_coverage/sitecustomize.py
    coverage_config = saved.get("COVERAGE_PROCESS_CONFIG")
    census = saved.get(CENSUS_ENV)
    if coverage_config:
        del os.environ["COVERAGE_PROCESS_CONFIG"]
        os.environ["REPRO_HOOKS_TEST_COVERAGE"] = coverage_config
    if census:
        os.environ[CENSUS_ENV] = census
    if coverage_config or census:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SUBPROCESS_COVERAGE), saved.get("PYTHONPATH")) if p
        )
    (home / ".gitconfig").write_text(
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git repository (with one empty commit on main), the current directory."""
    path = tmp_path / "repo"
    init_repo(path)
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def empty_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh git repository with no commit at all (no HEAD), the current directory."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    monkeypatch.chdir(path)
    return path


@pytest.fixture(scope="session")
def dvc_template(hermetic_env: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with `dvc init` committed, built once per session (dvc is slow)."""
    from tests.dvc_helpers import make_template

    return make_template(tmp_path_factory.mktemp("dvc-template") / "repo")


@pytest.fixture
def dvc_repo(dvc_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the DVC template repository, the current directory."""
    from tests.dvc_helpers import clone_template

    repo = clone_template(dvc_template, tmp_path / "repo")
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture(scope="session")
def plugin_build(hermetic_env: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per run (tests/helpers.built_once): `repro-hooks/`, this checkout's working tree
    (uncommitted edits included) as a one-commit repository, and `pre-commit-home/`, the one
    pre-commit cache that the tests installing it share (pre-commit locks its own store)."""

    def build(path: Path) -> None:
        plugin = copy_checkout(path / "repro-hooks")
        git(plugin, "init", "-q", "-b", "main")
        git(plugin, "add", "-A")
        git(plugin, "commit", "-q", "--no-verify", "-m", "snapshot")
        (path / "pre-commit-home").mkdir()

    return built_once(tmp_path_factory, "plugin", build)


@pytest.fixture
def plugin_snapshot(plugin_build: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For tests that install repro-hooks through pre-commit as a remote `repo:` (`language:
    python`): the snapshot, the same path and rev in every worker, with the shared pre-commit
    cache, so the hook environment is built once per run."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(plugin_build / "pre-commit-home"))
    return plugin_build / "repro-hooks"


# Delivery deadlines in the MLflow tests: generous (a cap, never a budget), so a loaded machine
# (a second suite beside this one) never turns a link into "timed out". Tests about the
# deadline pass --timeout themselves. Written into the `repo` fixture's pyproject.toml.
LONG_DEADLINE_MODULES = frozenset({"tests.test_tag_mlflow", "tests.test_reliability_mlflow"})


@pytest.fixture(autouse=True)
def dvc_logs_to_a_live_stream() -> None:
    """`import dvc` binds DVC's log handlers to the sys.stdout/stderr of that moment; when a test
    under capsys made the first import, those streams are closed by the next test and any in-process
    DVC call would fail on logging. Point such handlers at the streams current now."""
    if "dvc.logger" not in sys.modules:
        return
    import logging

    for handler in logging.getLogger("dvc").handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None and getattr(stream, "closed", False):
            live = sys.stderr if handler.level >= logging.WARNING else sys.stdout
            handler.stream = live  # type: ignore[attr-defined]  # setStream would flush the closed one


@pytest.fixture(autouse=True)
def long_delivery_deadline(request: pytest.FixtureRequest) -> None:
    if request.module.__name__ not in LONG_DEADLINE_MODULES:
        return
    if "repo" not in request.fixturenames:
        return
    repo_path: Path = request.getfixturevalue("repo")
    (repo_path / "pyproject.toml").write_text("[tool.repro-hooks.mlflow]\ntimeout = 600\n")


# tag-mlflow's real-MLflow fixtures (server, sqlite stores), kept in their own module.
from tests.mlflow_fixtures import (  # noqa: E402, F401
    auth_server,
    make_server,
    mlflow_db_template,
    mlflow_server,
    sqlite_store,
)

# the run stamp plugin (links/stamp.py) for training processes, as an installed package has it
from tests.stamp_helpers import stamp_plugin  # noqa: E402, F401
