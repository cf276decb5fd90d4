"""P6: check-dvc's cost must not grow with files that cannot matter.

The P2 project (1,000 data files, each with its own .dvc file; bench_check_dvc.py) is checked
warm, then again after 100,000 small git-ignored non-data files are written beside it (Hydra-style
`outputs/<day>/<run>/` folders of logs and configs). Targets: ours with the ignored files ≤ 1.5x
ours without, and ours still ≥ 10x faster than `dvc status -q` on the same project. Runs
alternate; medians.

    .venv/bin/python bench/bench_ignored.py [--files 1000] [--ignored 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_check_dvc import build_many
from common import VENV_BIN, alternate, machine, timed


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
        root = Path(tmp) / "many"
        root.mkdir()
        build_many(root, args.files)
        assert timed(anchor, root, env)[1] == 0, "DVC must agree that the data is up to date"
        time.sleep(2.1)  # past the hash cache's racy window (see bench_check_dvc.py)
        assert timed(ours, root, env)[1] == 0  # warm
        before = alternate(args.runs, {
            "ours": lambda: timed(ours, root, env), "dvc": lambda: timed(anchor, root, env),
        })  # fmt: skip
        add_ignored(root, args.ignored)
        assert timed(ours, root, env)[1] == 0
        after = alternate(args.runs, {
            "ours": lambda: timed(ours, root, env), "dvc": lambda: timed(anchor, root, env),
        })  # fmt: skip
    for res in (before, after):
        assert (res["ours"][1], res["dvc"][1]) == ({0}, {0}), res
    o0, d0 = before["ours"][0], before["dvc"][0]
    o1, d1 = after["ours"][0], after["dvc"][0]
    dvc_version = subprocess.run([str(VENV_BIN / "dvc"), "--version"], capture_output=True,
                                 text=True, check=False).stdout.strip()  # fmt: skip
    print(f"machine: {machine()}; DVC {dvc_version}; medians of {args.runs} alternating runs")
    print("| project | `repro-hooks check-dvc` (s) | `dvc status -q` (s) | ours / anchor |")
    print("| --- | --- | --- | --- |")
    print(f"| {args.files} .dvc files | {o0:.3f} | {d0:.3f} | {o0 / d0:.3f}x |")
    print(f"| same + {args.ignored:,} git-ignored files | {o1:.3f} | {d1:.3f} | {o1 / d1:.3f}x |")
    print(f"growth with the ignored files: ours {o1 / o0:.2f}x (target ≤ 1.5x), "
          f"dvc status {d1 / d0:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
