"""Benchmark: `repro-hooks scan --all-history` on a 10,000-commit history against the raw git
pipeline that lists every object with its size (`git rev-list --objects --all | git cat-file
--batch-check`), in the same run. Prints both medians and the ratio (target: <= 2x).

    python bench/bench_scan.py [--commits 10000] [--runs 5] [--against CHECKOUT]

`--against CHECKOUT` also times another checkout of repro-hooks (main, say) in the same loop,
through the same interpreter with CHECKOUT first on PYTHONPATH (this checkout is run the same
way then): the machine is often shared, and only runs interleaved in one loop compare code.
Each contender's CPU time (its own and its git processes') is printed beside its wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import VENV_BIN, machine


def build_history(repo: Path, commits: int, files: int = 500) -> None:
    """`git fast-import` a linear history: each commit rewrites one of `files` small files; one
    commit in 1,000 also adds a 600 KiB blob (so the scan has findings to report)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    rng = random.Random(0)
    chunks: list[bytes] = []
    for i in range(commits):
        body = f"line {i}\n".encode() * 20
        ops = [
            f"M 100644 inline src/d{i % 25}/f{i % files}.txt\ndata {len(body)}\n".encode() + body
        ]
        if i % 1000 == 999:
            blob = rng.randbytes(600 * 1024)
            ops.append(f"M 100644 inline big/b{i}.bin\ndata {len(blob)}\n".encode() + blob)
        msg = f"commit {i}\n".encode()
        header = (
            f"commit refs/heads/main\ncommitter Bench <b@example.com> {1_700_000_000 + i} +0000\n"
            f"data {len(msg)}\n"
        ).encode()
        chunks.append(header + msg + b"\n".join(ops) + b"\n\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(chunks), check=True)


CHECKOUT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from repro_hooks.entry import main; sys.exit(main())"


def timed(
    cmd: list[str] | str, cwd: Path, shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=shell, stdout=subprocess.DEVNULL, check=False, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def commit_of(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(checkout), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, metavar="CHECKOUT")
    args = parser.parse_args()
    env_path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PATH"] = env_path
    # Python's bytecode cache on, in a directory of its own: an installed package has its .pyc
    # files, and with PYTHONDONTWRITEBYTECODE (set on some machines) every run would compile
    # each module it imports again, more for a checkout that never wrote its cache.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    pycache = tempfile.TemporaryDirectory(prefix="bench-scan-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = pycache.name
    raw_cmd = "git rev-list --objects --all | git cat-file --batch-check"
    ours_cmd = [str(VENV_BIN / "repro-hooks"), "scan", "--all-history"]
    contenders: dict[str, tuple[list[str] | str, dict[str, str] | None]] = {
        f"`{raw_cmd}` (anchor)": (raw_cmd, None),
        "`repro-hooks scan --all-history`": (ours_cmd, None),
    }
    if args.against is not None:
        scan = [sys.executable, "-c", ENTRY, "scan", "--all-history"]
        contenders = {
            f"`{raw_cmd}` (anchor)": (raw_cmd, None),
            f"this checkout ({commit_of(CHECKOUT)})": (
                scan,
                {**os.environ, "PYTHONPATH": str(CHECKOUT)},
            ),
            f"{args.against} ({commit_of(args.against)})": (
                scan,
                {**os.environ, "PYTHONPATH": str(args.against.resolve())},
            ),
        }
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "history"
        t0 = time.perf_counter()
        build_history(repo, args.commits)
        print(
            f"built {args.commits} commits with git fast-import in {time.perf_counter() - t0:.1f} s"
        )
        outputs = set()  # (the first run of each writes its bytecode cache)
        for name, (cmd, env) in list(contenders.items())[1:]:
            proc = subprocess.run(cmd, cwd=repo, capture_output=True, env=env, check=False)
            findings = proc.stdout.decode().count("size limit")
            outputs.add(proc.stdout)
            print(f"{name}: {findings} findings reported (exit {proc.returncode})")
        if len(outputs) > 1:
            print("NOTE: the contenders' outputs differ")
        load_before = load()
        walls: dict[str, list[float]] = {name: [] for name in contenders}
        cpus: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.runs):  # interleaved, so all see the same machine state
            for name, (cmd, env) in contenders.items():
                wall, cpu = timed(cmd, repo, shell=isinstance(cmd, str), env=env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    pycache.cleanup()
    print(f"machine: {machine()}; load (1 min) {load_before} -> {load()}")
    anchor = next(iter(contenders))
    m_wall = {name: statistics.median(times) for name, times in walls.items()}
    m_cpu = {name: statistics.median(times) for name, times in cpus.items()}
    print(f"| command | wall, median of {args.runs} | ratio | CPU | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name in contenders:
        cell = name.replace("|", "\\|")  # a pipe inside a Markdown table cell
        print(
            f"| {cell} | {m_wall[name]:.3f} s | {m_wall[name] / m_wall[anchor]:.2f}x "
            f"| {m_cpu[name]:.3f} s | {m_cpu[name] / m_cpu[anchor]:.2f}x |"
        )


if __name__ == "__main__":
    main()
