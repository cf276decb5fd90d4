"""Coverage for this product's processes only (on PYTHONPATH in the test session; conftest.py).

coverage.py's `patch = ["subprocess"]` starts a tracer in every Python process the tests spawn:
pre-commit, DVC, the MLflow server and its workers, pip. None of them runs repro_hooks code, and
each paid 0.1 s of start-up plus a slower import (dvc status: 0.74 s -> 0.98 s). The session
fixture moves coverage's variable to REPRO_HOOKS_TEST_COVERAGE; this file puts it back, for one
process, unless that process is one of those tools, and takes it away again so that the tool's
own children decide for themselves.
"""

from __future__ import annotations

import os
import sys

_FOREIGN_SCRIPTS = frozenset(
    {"dvc", "pre-commit", "mlflow", "gunicorn", "uvicorn", "huey_consumer", "pip", "pip3",
     "twine", "virtualenv", "git-lfs"}
)  # fmt: skip
_FOREIGN_MODULES = frozenset(
    {"dvc", "pre_commit", "mlflow", "gunicorn", "uvicorn", "huey", "pip", "build", "twine",
     "virtualenv", "venv", "ensurepip"}
)  # fmt: skip


def _foreign(argv: list[str]) -> bool:
    args = argv[1:]
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
        args = args[1:]  # interpreter flags (-u, -I, -X dev ...)
    if args[:1] == ["-m"] and len(args) > 1:
        return args[1].split(".")[0] in _FOREIGN_MODULES
    script = os.path.basename(args[0]) if args else ""
    return script in _FOREIGN_SCRIPTS


def _start() -> None:
    config = os.environ.get("REPRO_HOOKS_TEST_COVERAGE")
    if not config or _foreign(list(getattr(sys, "orig_argv", sys.argv))):
        return
    try:
        import coverage
    except ImportError:  # a hook environment pre-commit built: no coverage there
        return
    os.environ["COVERAGE_PROCESS_CONFIG"] = config
    try:
        coverage.process_startup(slug="pth")
    finally:
        del os.environ["COVERAGE_PROCESS_CONFIG"]


_start()
