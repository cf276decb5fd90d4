"""check-dvc on a templated pipeline, without DVC installed, against `dvc status`.

A 200-stage `foreach` pipeline (issue 21): `vars` from a second file (`conf/paths.yaml:paths`),
the foreach over a dict of params.yaml (`${shards}`), each item with its own dependency file,
output and param (`shards.${key}.rows`), and a shared param interpolated into every command;
the raw data in DVC (`dvc add data/raw`), dvc.lock written by DVC itself (`dvc commit -f`). The same project written without templating
(200 stages expanded by hand) is the second project.

(a) templated, unchanged: `repro-hooks check-dvc` from a light environment (click + PyYAML
    only, no DVC: built once with `python -m venv` and cached under the temp dir) vs
    `dvc status -q` from the dev environment. Target: ≥ 10x faster.
(b) the same with one output changed: both exit 1, same path.
(c) check-dvc on the templated project vs on the expanded one, unchanged. Target: ≤ 1.5x.

Data files are dated an hour back (past the hash cache's racy window); each tool is run once
before timing (DVC's state and our hash cache warm). Runs interleave; medians.

    .venv/bin/python bench/bench_templated.py [--stages 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import VENV_BIN, alternate, dvc_version, git, machine, print_ratio_table, timed

ROOT = Path(__file__).resolve().parent.parent
OLD = time.time() - 3600  # data written an hour ago: past the hash cache's racy window
CMD = "python stages/shard.py --rows {rows} --scale {scale} {dep} {out}"


def light_venv(cache: Path, source: Path) -> Path:
    """A venv with a checkout installed without extras (click + PyYAML, no DVC), cached by the
    checkout's package sources."""
    digest = hashlib.md5()
    for path in sorted((source / "repro_hooks").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update((source / "pyproject.toml").read_bytes())
    venv = cache / f"light-{digest.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        for old in cache.glob("light-*"):  # environments of earlier sources
            shutil.rmtree(old, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        src = cache / "src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(source, src, ignore=shutil.ignore_patterns(".venv", ".git", "*cache*"))
        uv = VENV_BIN / "uv"
        install = [str(uv), "pip", "install", "-q", "--python", str(python), str(src)]
        if not uv.exists() or subprocess.run(install, check=False).returncode != 0:
            subprocess.run([str(python), "-m", "pip", "install", "-q", str(src)], check=True)
        # bytecode, as an installed hook environment has it (PYTHONDONTWRITEBYTECODE may be set:
        # every run would compile every module again)
        site = next((venv / "lib").glob("python3*/site-packages"))
        subprocess.run([str(python), "-m", "compileall", "-q", str(site)], check=True)
        (venv / ".installed").touch()
    probe = subprocess.run([str(python), "-c", "import dvc"], capture_output=True, check=False)
    assert probe.returncode != 0, "the light environment must not have DVC"
    return venv


def keys(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(n)]


def write_inputs(root: Path, n: int) -> None:
    """Everything but dvc.yaml: params, the vars file, dependencies and outputs."""
    rng = random.Random(0)
    lines = ["common:", "  scale: 2", "shards:"]
    lines += [f"  {k}:\n    rows: {3 + i % 7}" for i, k in enumerate(keys(n))]
    (root / "params.yaml").write_text("\n".join(lines) + "\n")
    (root / "conf").mkdir()
    (root / "conf/paths.yaml").write_text(
        "paths:\n  raw: data/raw\n  out: out\nother:\n  unused: 1\n"
    )
    (root / "stages").mkdir()
    (root / "stages/shard.py").write_text("import sys\nprint(sys.argv)\n")
    for sub in ("data/raw", "out"):
        (root / sub).mkdir(parents=True)
    ignored = []
    for k in keys(n):
        for path in (root / f"data/raw/{k}.csv", root / f"out/{k}.csv"):
            path.write_bytes(rng.randbytes(rng.randint(200, 4_000)).hex().encode())
            os.utime(path, (OLD, OLD))
        ignored.append(f"/{k}.csv")
    (root / "out/.gitignore").write_text("\n".join(ignored) + "\n")


TEMPLATED = """vars:
  - conf/paths.yaml:paths
stages:
  shard:
    foreach: ${shards}
    do:
      cmd: python stages/shard.py --rows ${item.rows} --scale ${common.scale} ${paths.raw}/${key}.csv ${paths.out}/${key}.csv
      deps:
        - stages/shard.py
        - ${paths.raw}/${key}.csv
      params:
        - shards.${key}.rows
        - common.scale
      outs:
        - ${paths.out}/${key}.csv
"""


def expanded(n: int) -> str:
    out = ["stages:"]
    for i, k in enumerate(keys(n)):
        dep, target = f"data/raw/{k}.csv", f"out/{k}.csv"
        out += [
            f"  shard-{k}:",
            f"    cmd: {CMD.format(rows=3 + i % 7, scale=2, dep=dep, out=target)}",
            "    deps:",
            "      - stages/shard.py",
            f"      - {dep}",
            "    params:",
            f"      - shards.{k}.rows",
            "      - common.scale",
            "    outs:",
            f"      - {target}",
        ]
    return "\n".join(out) + "\n"


def build(root: Path, n: int, dvc_yaml: str, env: dict[str, str]) -> None:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    dvc = str(VENV_BIN / "dvc")
    subprocess.run([dvc, "init", "-q"], cwd=root, check=True, env=env)
    subprocess.run([dvc, "config", "core.autostage", "false"], cwd=root, check=True, env=env)
    write_inputs(root, n)
    (root / "dvc.yaml").write_text(dvc_yaml)
    # the raw data in DVC (one directory, as a data registry keeps it)
    subprocess.run([dvc, "add", "-q", "data/raw"], cwd=root, check=True, env=env)
    # the lock as DVC writes it, without running 200 commands
    subprocess.run([dvc, "commit", "-f", "-q"], cwd=root, check=True, env=env)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-verify", "-m", "pipeline")


def verdicts(ours: list[str], root: Path, env: dict[str, str]) -> tuple[set[str], set[str]]:
    """The paths each tool reports (check-dvc's findings, dvc status' changed deps/outs)."""
    proc = subprocess.run(
        [*ours, "--format", "json"], cwd=root, capture_output=True, text=True, check=False, env=env
    )
    found = {f["path"] for f in json.loads(proc.stdout)["findings"]}
    proc = subprocess.run(
        [str(VENV_BIN / "dvc"), "status", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    theirs = {
        path
        for changes in json.loads(proc.stdout or "{}").values()
        for change in changes
        if isinstance(change, dict)
        for entries in change.values()
        for path in entries
    }
    return found, theirs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout to install")
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    cache = Path(tempfile.gettempdir()) / "repro-hooks-bench-templated"
    cache.mkdir(exist_ok=True)
    light = light_venv(cache, args.source.resolve())
    # ours runs with the light venv's PATH only: no DVC anywhere to fall back on
    light_env = {**os.environ, "PATH": f"{light / 'bin'}:/usr/bin:/bin"}
    ours = [str(light / "bin" / "repro-hooks"), "check-dvc"]
    anchor = [str(VENV_BIN / "dvc"), "status", "-q"]
    rows: list[tuple[str, str, float, str, float]] = []

    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tpl, flat = Path(tmp) / "templated", Path(tmp) / "expanded"
        build(tpl, args.stages, TEMPLATED, env)
        build(flat, args.stages, expanded(args.stages), env)
        for root in (tpl, flat):
            assert timed(anchor, root, env)[1] == 0, f"{root.name}: DVC must call it up to date"
        # DVC reads the lock it just wrote: same stages, same verdicts, in both projects
        time.sleep(2.1)  # past the hash cache's racy window after DVC's writes
        for root in (tpl, flat):
            proc = subprocess.run(
                ours, cwd=root, capture_output=True, text=True, check=False, env=light_env
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr  # also warms the hash cache

        res = alternate(
            args.runs,
            {
                "ours": lambda: timed(ours, tpl, light_env),
                "flat": lambda: timed(ours, flat, light_env),
                "dvc": lambda: timed(anchor, tpl, env),
            },
        )
        assert (res["ours"][1], res["flat"][1], res["dvc"][1]) == ({0}, {0}, {0}), res
        n = args.stages
        rows.append(
            (
                f"(a) {n}-stage foreach, unchanged",
                "check-dvc (no DVC installed)",
                res["ours"][0],
                "dvc status -q",
                res["dvc"][0],
            )
        )
        rows.append(
            (
                f"(c) {n} stages: templated vs expanded by hand, unchanged",
                "check-dvc, templated",
                res["ours"][0],
                "check-dvc, expanded",
                res["flat"][0],
            )
        )

        victim = tpl / f"out/{keys(n)[n // 2]}.csv"
        victim.write_bytes(victim.read_bytes()[::-1] + b"!")
        found, theirs = verdicts(ours, tpl, light_env)
        assert found == theirs == {f"out/{keys(n)[n // 2]}.csv"}, (found, theirs)
        res = alternate(
            args.runs,
            {
                "ours": lambda: timed(ours, tpl, light_env),
                "dvc": lambda: timed(anchor, tpl, env),
            },
        )
        assert (res["ours"][1], res["dvc"][1]) == ({1}, {1}), res
        rows.append(
            (
                f"(b) {n}-stage foreach, one output changed",
                "check-dvc (no DVC installed)",
                res["ours"][0],
                "dvc status -q",
                res["dvc"][0],
            )
        )

    load = os.getloadavg()[0]
    print(
        f"machine: {machine()}; DVC {dvc_version()}; medians of {args.runs} interleaved runs; "
        f"load average {load:.1f}"
    )
    print_ratio_table(rows)


if __name__ == "__main__":
    main()
