"""check-dvc against `dvc status` on the same repositories.

(a) 1,000 data files, each with its own .dvc file, unchanged: `repro-hooks check-dvc` with a
    warm hash cache vs `dvc status -q` with DVC's state warm. Target: ≥ 10x faster.
(b) the same repository with one file modified: both must report it (exit 1); the ratio.
(c) one 1 GiB file: our cold check (`--no-cache`) vs `md5sum` of the file (target ≤ 1.1x), and
    our warm check vs warm `dvc status -q`.

The .dvc files are written from hashes computed here and the cache objects hardlinked into
`.dvc/cache`, then `dvc status` is asked once to confirm DVC agrees that all is up to date.
Runs alternate; medians.

    .venv/bin/python bench/bench_check_dvc.py [--files 1000] [--runs 7] [--gib 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import VENV_BIN, alternate, dvc_version, git, machine, print_ratio_table, timed

OLD = time.time() - 3600  # data written an hour ago: past the hash cache's racy window


def dvc_repo(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    subprocess.run([str(VENV_BIN / "dvc"), "init", "-q"], cwd=root, check=True)
    subprocess.run(
        [str(VENV_BIN / "dvc"), "config", "core.analytics", "false"], cwd=root, check=True
    )


def add_by_hand(root: Path, rel: str) -> None:
    """What `dvc add` writes (DVC 3 format), with the cache object hardlinked, not copied."""
    path = root / rel
    md5 = hashlib.md5()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            md5.update(chunk)
    value = md5.hexdigest()
    obj = root / ".dvc/cache/files/md5" / value[:2] / value[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    if not obj.exists():
        os.link(path, obj)
    size = path.stat().st_size
    name = path.name
    (path.parent / f"{name}.dvc").write_text(
        f"outs:\n- md5: {value}\n  size: {size}\n  hash: md5\n  path: {name}\n"
    )
    with (path.parent / ".gitignore").open("a") as fh:
        fh.write(f"/{name}\n")


def build_many(root: Path, n: int) -> list[str]:
    dvc_repo(root)
    rng = random.Random(0)
    names = []
    for i in range(n):
        rel = f"data/part{i // 100:02d}/f{i:05d}.csv"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(200, 20_000)))
        os.utime(path, (OLD, OLD))
        add_by_hand(root, rel)
        names.append(rel)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "data")
    return names


def build_big(root: Path, gib: float) -> str:
    dvc_repo(root)
    block = random.Random(1).randbytes(1 << 20)
    path = root / "big.bin"
    with path.open("wb") as fh:
        for _ in range(int(gib * 1024)):
            fh.write(block)
    os.utime(path, (OLD, OLD))
    add_by_hand(root, "big.bin")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "big")
    return "big.bin"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    ours = [str(VENV_BIN / "repro-hooks"), "check-dvc"]
    ours_cold = [*ours, "--no-cache"]
    anchor = [str(VENV_BIN / "dvc"), "status", "-q"]
    rows: list[tuple[str, str, float, str, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "many"
        root.mkdir()
        names = build_many(root, args.files)
        assert timed(anchor, root, env)[1] == 0, "DVC must agree that the data is up to date"
        # DVC's first run makes its cache objects read-only, and they are hardlinks of the data
        # here: that moves the data's ctime to now, and the hash cache keeps no entry changed in
        # the last 2 s. (The same happens once to a user with cache.type = hardlink.)
        time.sleep(2.1)
        assert timed(ours, root, env)[1] == 0  # warms our hash cache
        res = alternate(
            args.runs,
            {
                "ours": lambda: timed(ours, root, env),
                "dvc": lambda: timed(anchor, root, env),
            },
        )
        assert (res["ours"][1], res["dvc"][1]) == ({0}, {0}), res
        rows.append(
            (
                f"(a) {args.files} .dvc files, unchanged, warm",
                "repro-hooks check-dvc",
                res["ours"][0],
                "dvc status -q",
                res["dvc"][0],
            )
        )

        victim = root / names[len(names) // 2]
        victim.write_bytes(victim.read_bytes()[::-1] + b"!")
        res = alternate(
            args.runs,
            {
                "ours": lambda: timed(ours, root, env),
                "dvc": lambda: timed(anchor, root, env),
            },
        )
        assert (res["ours"][1], res["dvc"][1]) == ({1}, {1}), res
        rows.append(
            (
                f"(b) {args.files} .dvc files, one modified",
                "repro-hooks check-dvc",
                res["ours"][0],
                "dvc status -q",
                res["dvc"][0],
            )
        )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "big"
        root.mkdir()
        big = build_big(root, args.gib)
        md5sum = ["md5sum", big]
        runs = max(3, args.runs // 2)
        res = alternate(
            runs,
            {
                "ours": lambda: timed(ours_cold, root, env),
                "md5sum": lambda: timed(md5sum, root, env),
            },
        )
        assert res["ours"][1] == {0}, res
        rows.append(
            (
                f"(c) one {args.gib:g} GiB file, cold",
                "repro-hooks check-dvc --no-cache",
                res["ours"][0],
                "md5sum",
                res["md5sum"][0],
            )
        )
        assert timed(anchor, root, env)[1] == 0
        time.sleep(2.1)  # past the racy window after DVC's chmod of the hardlinked object
        assert timed(ours, root, env)[1] == 0
        res = alternate(
            args.runs,
            {
                "ours": lambda: timed(ours, root, env),
                "dvc": lambda: timed(anchor, root, env),
            },
        )
        assert (res["ours"][1], res["dvc"][1]) == ({0}, {0}), res
        rows.append(
            (
                f"(c) one {args.gib:g} GiB file, warm",
                "repro-hooks check-dvc",
                res["ours"][0],
                "dvc status -q",
                res["dvc"][0],
            )
        )

    print(f"machine: {machine()}; DVC {dvc_version()}; medians of {args.runs} alternating runs")
    print_ratio_table(rows)


if __name__ == "__main__":
    main()
