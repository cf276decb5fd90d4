"""check-large-files against pre-commit-hooks' check-added-large-files on the same staged files.

A repository with 20,000 staged small files plus a few large ones; both tools get the same file
list (as pre-commit passes it, with PRE_COMMIT=1 set). Runs alternate; prints the medians and
the ratio (ours / anchor).
Target: ours ≤ 1.0x the anchor while sizing staged blobs (the anchor only stats the files).

    .venv/bin/python bench/bench_large_files.py [--files 20000] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import VENV_BIN, alternate, git, machine, timed


def build(root: Path, n_files: int) -> list[str]:
    git(root, "init", "-q", "-b", "main")
    rng = random.Random(0)
    names = []
    for i in range(n_files):
        name = f"src/d{i // 100:03d}/file_{i}.txt"
        names.append(name)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{i}\n" * 10)
    for i in range(3):
        name = f"data/large_{i}.bin"
        (root / "data").mkdir(exist_ok=True)
        (root / name).write_bytes(rng.randbytes(2 * 1024 * 1024))
        names.append(name)
    git(root, "add", "-A")
    return names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = build(root, args.files)
        # PRE_COMMIT=1 as the framework sets it: ours takes the hook's path (the passed names,
        # plus the staged blobs pre-commit cannot pass, plus the commit's total size)
        env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "PRE_COMMIT": "1"}
        ours = [str(VENV_BIN / "repro-hooks"), "check-large-files", *names]
        anchor = [str(VENV_BIN / "check-added-large-files"), *names]
        results = alternate(
            args.runs,
            {
                "repro-hooks check-large-files": lambda: timed(ours, root, env),
                "check-added-large-files": lambda: timed(anchor, root, env),
            },
        )
    (t_ours, c_ours), (t_anchor, c_anchor) = results.values()
    print(f"machine: {machine()}")
    print(f"{args.files} staged small files + 3 x 2 MiB, {args.runs} alternating runs")
    print(f"  repro-hooks check-large-files : median {t_ours:.3f} s, exit {sorted(c_ours)}")
    print(f"  check-added-large-files       : median {t_anchor:.3f} s, exit {sorted(c_anchor)}")
    print(f"  ratio ours/anchor             : {t_ours / t_anchor:.2f}x")
    assert c_ours == {1}, "ours must report the large files"
    assert c_anchor == {1}, "the anchor must report the large files"


if __name__ == "__main__":
    main()
