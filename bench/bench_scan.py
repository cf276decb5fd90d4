"""Benchmark: `repro-hooks scan --all-history` on a 10,000-commit history against the raw git
pipeline that lists every object with its size (`git rev-list --objects --all | git cat-file
--batch-check`), in the same run. Prints both medians and the ratio (target: <= 2x).

    python bench/bench_scan.py [--commits 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


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


def timed(cmd: list[str] | str, cwd: Path, shell: bool = False) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=shell, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env_path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PATH"] = env_path
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "history"
        t0 = time.perf_counter()
        build_history(repo, args.commits)
        print(
            f"built {args.commits} commits with git fast-import in {time.perf_counter() - t0:.1f} s"
        )
        ours_cmd = [str(VENV_BIN / "repro-hooks"), "scan", "--all-history"]
        raw_cmd = "git rev-list --objects --all | git cat-file --batch-check"
        proc = subprocess.run(ours_cmd, cwd=repo, capture_output=True, text=True, check=False)
        findings = sum(1 for line in proc.stdout.splitlines() if "size limit" in line)
        ours, raw = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine state
            raw.append(timed(raw_cmd, repo, shell=True))
            ours.append(timed(ours_cmd, repo))
        m_ours, m_raw = statistics.median(ours), statistics.median(raw)
        print(f"findings reported by scan: {findings} (exit {proc.returncode})")
        print(f"| command | median of {args.runs} (s) |")
        print("| --- | --- |")
        print(f"| `{raw_cmd}` (anchor) | {m_raw:.3f} |")
        print(f"| `repro-hooks scan --all-history` | {m_ours:.3f} |")
        print(f"| ratio (ours / anchor) | {m_ours / m_raw:.2f}x |")


if __name__ == "__main__":
    main()
