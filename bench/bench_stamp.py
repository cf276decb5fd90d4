"""The run stamp's cost at `mlflow.start_run()`: with the repro-hooks plugin against without it,
same process, same store, interleaved.

A repository with 1,000 DVC outputs (one `.dvc` file each, written as `dvc add` writes them),
warm (the hash cache and the parsed-DVC-file cache filled by a first stamp). A sqlite tracking
store outside the repository, migrated before timing. The plugin is registered exactly as an
installed repro-hooks registers it (an entry point `mlflow.run_context_provider` in the
distribution metadata; the venv's own when repro-hooks is installed there, and it is then
not registered a second time: until 2026-12-02 it was, and every figure was of two stamps per
`start_run`); "without" sets REPRO_HOOKS_STAMP=0, which makes the provider step aside
(`in_context()` is False), so both sides run MLflow's own providers and the same store calls.
Target: the stamp adds at most 50 ms (median difference).

Measured twice: a run outside any stage (`python train.py`), and a stage run as `dvc repro`
starts it (DVC_STAGE=train and DVC_ROOT in the environment; a committed `dvc.yaml` whose `train`
stage reads `train.py`, two of the 10 data directories (200 DVC outputs) and two params), where
the stamp also resolves the stage and records its deps' hashes and params' values at the start.

    .venv/bin/python bench/bench_stamp.py [--files 1000] [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_check_dvc import build_many
from common import git, machine

ROOT = Path(__file__).resolve().parent.parent
STAGE = """\
stages:
  train:
    cmd: python train.py
    deps:
    - train.py
    - data/part00
    - data/part01
    params:
    - train.lr
    - train.epochs
    outs:
    - model.pkl
"""


def add_stage(repo: Path) -> None:
    """The textbook's train stage over the bench repository, committed."""
    (repo / "train.py").write_text("import mlflow\n")
    (repo / "params.yaml").write_text("train:\n  lr: 0.1\n  epochs: 5\n")
    (repo / "dvc.yaml").write_text(STAGE)
    (repo / ".gitignore").write_text("/model.pkl\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "a train stage")


def installed_plugin() -> bool:
    """Whether this interpreter already has repro-hooks' entry point (an installed package)."""
    from importlib.metadata import entry_points

    group = entry_points(group="mlflow.run_context_provider")
    return any(ep.value == "repro_hooks.links.stamp:RunStamp" for ep in group)


def interleaved(
    runs: int, start: Callable[[bool], tuple[float, float]]
) -> tuple[dict[bool, float], dict[bool, float]]:
    """Median wall and CPU time of `start(stamped)`, without and with the stamp, interleaved."""
    times: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for stamped in (False, True):
            took, cpu_took = start(stamped)
            times[stamped].append(took)
            cpus[stamped].append(cpu_took)
    return (
        {k: statistics.median(v) for k, v in times.items()},
        {k: statistics.median(v) for k, v in cpus.items()},
    )


def report(label: str, times: dict[bool, float], cpus: dict[bool, float]) -> None:
    without, with_ = times[False], times[True]
    print(f"{label}:")
    print(f"  mlflow.start_run() without the stamp (anchor): {without * 1000:.1f} ms")
    print(f"  mlflow.start_run() with the stamp:             {with_ * 1000:.1f} ms")
    print(f"  difference (target <= 50 ms):                  {(with_ - without) * 1000:.1f} ms")
    print(
        f"  CPU time (own + child processes), without / with: {cpus[False] * 1000:.1f} / "
        f"{cpus[True] * 1000:.1f} ms; difference {(cpus[True] - cpus[False]) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        repo = base / "repo"
        repo.mkdir()
        build_many(repo, args.files)
        sys.path[:0] = [str(ROOT)]
        if not installed_plugin():  # a venv without repro-hooks: register it as pip would
            site = base / "site"
            info = site / "repro_hooks_bench-0.0.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(
                "Metadata-Version: 2.1\nName: repro-hooks-bench\nVersion: 0.0\n"
            )
            (info / "entry_points.txt").write_text(
                "[mlflow.run_context_provider]\nrepro-hooks = repro_hooks.links.stamp:RunStamp\n"
            )
            sys.path.insert(1, str(site))
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{base / 'mlflow.db'}"
        os.chdir(repo)
        sys.argv = [str(repo / "train.py")]  # as if the training script lived in the repository
        import mlflow
        from mlflow.tracking.context.registry import _run_context_provider_registry

        from repro_hooks.links.stamp import RunStamp

        stamps = [p for p in _run_context_provider_registry if isinstance(p, RunStamp)]
        assert [p.in_context() for p in stamps] == [True], "the stamp must be taken once"
        for _ in range(2):  # migrate the store, fill the caches
            with mlflow.start_run() as run:
                pass
        assert "repro_hooks.stamp" in mlflow.get_run(run.info.run_id).data.tags

        def cpu() -> float:
            own = resource.getrusage(resource.RUSAGE_SELF)
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

        def start(stamped: bool) -> tuple[float, float]:
            os.environ["REPRO_HOOKS_STAMP"] = "1" if stamped else "0"
            cpu_before = cpu()
            began = time.perf_counter()
            mlflow.start_run()
            took = time.perf_counter() - began
            cpu_took = cpu() - cpu_before
            mlflow.end_run()
            return took, cpu_took

        tree = interleaved(args.runs, start)
        stamp_only = []
        for _ in range(args.runs):
            began = time.perf_counter()
            RunStamp().tags()
            stamp_only.append(time.perf_counter() - began)

        add_stage(repo)
        os.environ.update(DVC_STAGE="train", DVC_ROOT=str(repo), REPRO_HOOKS_STAMP="1")
        for _ in range(2):  # fill the caches for the stage's deps
            with mlflow.start_run() as run:
                pass
        stage_tags = mlflow.get_run(run.info.run_id).data.tags
        stage = interleaved(args.runs, start)

        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
        print(f"repository: {args.files} DVC outputs, warm; runs: {args.runs}, interleaved")
        report("a run outside any stage (python train.py)", *tree)
        report("a stage run (DVC_STAGE=train, as under dvc repro)", *stage)
        print(f"  stage recorded: repro_hooks.stage = {stage_tags.get('repro_hooks.stage')!r}")
        print(
            f"RunStamp().tags() alone, outside a stage:      "
            f"{statistics.median(stamp_only) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
