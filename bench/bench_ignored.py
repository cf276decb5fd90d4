"""P6: check-dvc's cost must not grow with files that cannot matter.

The P2 project (1,000 data files, each with its own .dvc file; bench_check_dvc.py) and a copy
of it beside 100,000 small git-ignored non-data files (Hydra-style `outputs/<day>/<run>/` folders
of logs) are checked warm, in the same interleaved runs, with `dvc status -q` on the first. Targets: ours with the ignored files ≤ 1.5x
ours without, and ours still ≥ 10x faster than `dvc status -q` on the same project. Runs
alternate; medians.

    .venv/bin/python bench/bench_ignored.py [--files 1000] [--ignored 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_check_dvc import build_many
from common import VENV_BIN, alternate, dvc_version, machine, timed


def add_ignored(root: Path, count: int) -> None:
    with (root / ".gitignore").open("a") as fh:
        fh.write("/outputs/\n")
    per_dir = 50
    for i in range(count):
        run = root / "outputs" / f"2024-01-{i // 20_000 + 1:02d}" / f"run-{i // per_dir:05d}"
        if i % per_dir == 0:
            run.mkdir(parents=True, exist_ok=True)
        (run / f"log-{i % per_dir:02d}.txt").write_bytes(b"step 1 loss 0.5\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--ignored", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    ours = [str(VENV_BIN / "repro-hooks"), "check-dvc"]
    anchor = [str(VENV_BIN / "dvc"), "status", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain"
        plain.mkdir()
        build_many(plain, args.files)
        # the same project beside 100,000 ignored files: a copy, so that both are timed in
        # the same interleaved runs (a shared machine's load moves between phases)
        crowded = Path(tmp) / "crowded"
        shutil.copytree(plain, crowded, symlinks=True, copy_function=shutil.copy2)
        add_ignored(crowded, args.ignored)
        assert timed(anchor, plain, env)[1] == 0, "DVC must agree that all is up to date"
        time.sleep(2.1)  # past the hash cache's racy window (see bench_check_dvc.py)
        for root in (plain, crowded):
            assert timed(ours, root, env)[1] == 0  # warm
        res = alternate(
            args.runs,
            {
                "plain": lambda: timed(ours, plain, env),
                "crowded": lambda: timed(ours, crowded, env),
                "dvc": lambda: timed(anchor, plain, env),
            },
        )
    assert {k: v[1] for k, v in res.items()} == {"plain": {0}, "crowded": {0}, "dvc": {0}}, res
    o0, o1, d0 = res["plain"][0], res["crowded"][0], res["dvc"][0]
    print(f"machine: {machine()}; DVC {dvc_version()}; medians of {args.runs} alternating runs")
    print("| case | median (s) |")
    print("| --- | --- |")
    print(f"| `repro-hooks check-dvc`, {args.files} .dvc files | {o0:.3f} |")
    print(f"| `repro-hooks check-dvc`, same + {args.ignored:,} git-ignored files | {o1:.3f} |")
    print(f"| `dvc status -q`, {args.files} .dvc files (anchor) | {d0:.3f} |")
    print(
        f"growth with the ignored files: {o1 / o0:.2f}x (target ≤ 1.5x); "
        f"ours / anchor {o0 / d0:.3f}x ({d0 / o0:.1f}x faster, target ≥ 10x)"
    )


if __name__ == "__main__":
    main()
