"""The DVC adapter: DVC's own CLI, run as a subprocess (never imported on a commit-stage path)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from repro_hooks.errors import ReproHooksError
from repro_hooks.snippets import pip_install

INSTALL_HINT = pip_install("dvc")


def dvc_command() -> list[str] | None:
    """How to run DVC: this environment's `python -m dvc` if installed here, else `dvc` on PATH."""
    if importlib.util.find_spec("dvc") is not None:
        return [sys.executable, "-m", "dvc"]
    exe = shutil.which("dvc")
    return [exe] if exe else None


def run_dvc(args: Sequence[str], cwd: Path, *, what: str) -> subprocess.CompletedProcess[str]:
    """Run `dvc <args>` in `cwd`; a missing DVC is a ReproHooksError naming `what` needed it."""
    command = dvc_command()
    if command is None:
        raise ReproHooksError(f"{what} needs DVC, which is not installed ({INSTALL_HINT})")
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def last_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """DVC's error as one line: its `ERROR: ...` message with the lines after it (DVC puts the
    advice there), else the last line of output; at most 400 characters."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    if not lines:
        return f"exit {proc.returncode}"
    start = next((i for i, ln in enumerate(lines) if ln.startswith("ERROR:")), len(lines) - 1)
    text = " ".join(lines[start:]).removeprefix("ERROR:").strip()
    return text if len(text) <= 400 else text[:399] + "…"
