"""Coverage for this product's processes only (on PYTHONPATH in the test session; conftest.py).

coverage.py's `patch = ["subprocess"]` starts a tracer in every Python process the tests spawn:
pre-commit, DVC, the MLflow server and its workers, pip. None of them runs repro_hooks code, and
each paid 0.1 s of start-up plus a slower import (dvc status: 0.74 s -> 0.98 s). The session
fixture moves coverage's variable to REPRO_HOOKS_TEST_COVERAGE; this file puts it back, for one
process, unless that process is one of those tools, and takes it away again so that the tool's
own children decide for themselves.

In our processes, MLflow's own import (pandas, FastAPI and the rest: 1.6 s) runs untraced: it is
not this product's code, and the tracer made it 0.6 s slower in each of the ~120 deliveries,
syncs and training scripts of a run. The modules MLflow imports from this package (the stamp
plugin's entry point) are imported, and their module-level lines covered, by the test workers.

With REPRO_HOOKS_TEST_CENSUS=<file> (`make census`), every process, ours and the tools', appends
one JSON line to that file as it exits: its command line, its CPU and wall time, and whether it
imported MLflow. bench/suite_census.py adds them up: where the suite's processor time goes.
A process killed by a signal or ended by os._exit writes nothing (the MLflow servers' workers).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

_FOREIGN_SCRIPTS = frozenset(
    {
        "dvc",
        "pre-commit",
        "mlflow",
        "gunicorn",
        "uvicorn",
        "huey_consumer",
        "pip",
        "pip3",
        "twine",
        "virtualenv",
        "git-lfs",
    }
)
_FOREIGN_MODULES = frozenset(
    {
        "dvc",
        "pre_commit",
        "mlflow",
        "gunicorn",
        "uvicorn",
        "huey",
        "pip",
        "build",
        "twine",
        "virtualenv",
        "venv",
        "ensurepip",
    }
)


# interpreter options that take the next argument as their value (`-X dev`, `-W error`)
_VALUED_OPTIONS = frozenset({"-X", "-W", "--check-hash-based-pycs"})


def _program(argv: list[str]) -> list[str]:
    """What the interpreter runs, its own options skipped: `["-m", module, ...]`, `["-c",
    code, ...]`, `[script, ...]`, or `[]`. pre-commit's git hook runs `python -mpre_commit`:
    the module joined to its option is the module all the same."""
    args = argv[1:]
    while args and args[0].startswith("-") and args[0] != "-":
        option = args[0]
        if option in ("-m", "-c"):
            return args
        if option[:2] in ("-m", "-c"):
            return [option[:2], option[2:], *args[1:]]
        args = args[2:] if option in _VALUED_OPTIONS else args[1:]
    return args


def _foreign(argv: list[str]) -> bool:
    program = _program(argv)
    if program[:1] == ["-m"] and len(program) > 1:
        return program[1].split(".")[0] in _FOREIGN_MODULES
    if program[:1] == ["-c"] or not program:
        return False
    return os.path.basename(program[0]) in _FOREIGN_SCRIPTS


class _UntracedLoader(importlib.abc.Loader):
    """The real loader, with the tracer switched off while the module's body runs."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> object:  # get_resource_reader, get_source, ...
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        tracer = sys.gettrace()
        sys.settrace(None)
        try:
            self._loader.exec_module(module)
        finally:
            sys.settrace(tracer)


class _UntracedFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the top-level package `mlflow`, then leaves."""

    def find_spec(
        self, name: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "mlflow":
            return None
        sys.meta_path.remove(self)  # its job is done (and it must not find itself)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _UntracedLoader(spec.loader)
        return spec


def _start() -> None:
    config = os.environ.get("REPRO_HOOKS_TEST_COVERAGE")
    if not config or _foreign(list(getattr(sys, "orig_argv", sys.argv))):
        return
    try:
        import coverage
    except ImportError:  # a hook environment pre-commit built: no coverage there
        return
    import coverage.collector

    # the collector records its creator's stack (inspect.stack(): 13 ms a process, a thousand
    # processes a run) for one debugging message; not needed here
    coverage.collector.short_stack = lambda *args, **kwargs: ""  # type: ignore[attr-defined]
    os.environ["COVERAGE_PROCESS_CONFIG"] = config
    try:
        coverage.process_startup(slug="pth")
    finally:
        del os.environ["COVERAGE_PROCESS_CONFIG"]
    sys.meta_path.insert(0, _UntracedFinder())


def _census() -> None:
    path = os.environ.get("REPRO_HOOKS_TEST_CENSUS")
    if not path:
        return
    import atexit
    import json
    import time

    started = time.monotonic()
    argv = list(getattr(sys, "orig_argv", sys.argv))

    def record() -> None:
        times = os.times()
        line = {
            "argv": argv,
            "program": _program(argv)[:2],  # what bench/suite_census.py groups by
            "cpu": round(times.user + times.system, 3),
            "wall": round(time.monotonic() - started, 3),
            "mlflow": "mlflow" in sys.modules,
        }
        with open(path, "a", encoding="utf-8") as fh:  # one short append: lines never interleave
            fh.write(json.dumps(line) + "\n")

    atexit.register(record)


_census()
_start()
