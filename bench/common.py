"""Shared benchmark helpers: alternating timed runs, medians, the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def timed(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False, env=env)
    return time.perf_counter() - start, proc.returncode


def alternate(
    runs: int, contenders: dict[str, Callable[[], tuple[float, int]]]
) -> dict[str, tuple[float, set[int]]]:
    """Run each contender `runs` times, interleaved; return (median seconds, exit codes seen)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    codes: dict[str, set[int]] = {name: set() for name in contenders}
    for _ in range(runs):
        for name, fn in contenders.items():
            seconds, code = fn()
            times[name].append(seconds)
            codes[name].add(code)
    return {name: (statistics.median(times[name]), codes[name]) for name in contenders}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {git}"


def git(cwd: Path, *args: str, input: bytes | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, input=input, check=True, capture_output=True)


def dvc_version() -> str:
    """`dvc --version` of the venv the bench runs in."""
    return subprocess.run(
        [str(VENV_BIN / "dvc"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()


def print_ratio_table(rows: Sequence[tuple[str, str, float, str, float]]) -> None:
    """One row per case: ours and the anchor, their medians and ours / anchor."""
    print("| case | ours | median (s) | anchor | median (s) | ours / anchor |")
    print("| --- | --- | --- | --- | --- | --- |")
    for case, o_name, o_t, a_name, a_t in rows:
        print(f"| {case} | `{o_name}` | {o_t:.3f} | `{a_name}` | {a_t:.3f} | {o_t / a_t:.3f}x |")
