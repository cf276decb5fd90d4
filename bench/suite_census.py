"""Where the suite's processor time goes: the census `make census` takes, added up by kind.

`make census` runs `make test` with REPRO_HOOKS_TEST_CENSUS set: every Python process the tests
start appends one line as it exits (tests/subprocess_coverage/sitecustomize.py): its command
line, its CPU time (user + system, its own, not its children's), its wall time and whether it
imported MLflow. This script groups the lines by what the process was (`repro-hooks check-dvc`,
`python -m repro_hooks.links.delivery`, a training script, pre-commit's git hook...) and
prints a table for bench/RESULTS.md ("The suite"), largest CPU first.

Processes killed by a signal write nothing (the MLflow servers' workers), and the test workers
are not children of the session that sets the variable: add their time from `ps` or process
accounting if it matters."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# a command whose first argument names what it does: `repro-hooks check-dvc`, `dvc add`
SUBCOMMANDS = frozenset({"repro-hooks", "pre-commit", "dvc", "mlflow", "git"})


def kind(program: Sequence[str]) -> str:
    """What a process was, from what its interpreter ran (the census line's `program`: `-m` and
    a module, `-c` and code, or a script and its first argument; the interpreter's own options
    already skipped where the line was written)."""
    if not program:
        return "python"
    if program[0] == "-m":
        return " ".join(["python -m", *program[1:2]])
    if program[0] == "-c":
        code = " ".join(program[1].split()) if len(program) > 1 else ""
        return f"python -c {code[:40]}"
    script = os.path.basename(program[0])
    if script in SUBCOMMANDS and len(program) > 1 and not program[1].startswith("-"):
        return f"{script} {program[1]}"
    return script


@dataclass
class Kind:
    name: str
    count: int = 0
    cpu: float = 0.0
    mlflow: int = 0


def tally(lines: Iterable[str]) -> list[Kind]:
    kinds: dict[str, Kind] = {}
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        name = kind(rec["program"])
        k = kinds.setdefault(name, Kind(name))
        k.count += 1
        k.cpu += float(rec["cpu"])
        k.mlflow += bool(rec["mlflow"])
    return sorted(kinds.values(), key=lambda k: (-k.cpu, k.name))


def table(kinds: list[Kind], top: int) -> str:
    total = sum(k.cpu for k in kinds)
    count = sum(k.count for k in kinds)
    mlflow = sum(k.cpu for k in kinds if k.mlflow)
    rows = [
        f"{count} processes, {total:.0f} s of CPU; {mlflow:.0f} s in the kinds that import MLflow",
        "",
        "| process | count | CPU (s) | per process (s) | imported MLflow |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k in kinds[:top]:
        name = k.name.replace("|", "\\|")
        rows.append(f"| `{name}` | {k.count} | {k.cpu:.1f} | {k.cpu / k.count:.2f} | {k.mlflow} |")
    rest = kinds[top:]
    if rest:
        rows.append(
            f"| {len(rest)} other kinds | {sum(k.count for k in rest)} "
            f"| {sum(k.cpu for k in rest):.1f} | | {sum(k.mlflow for k in rest)} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("census", type=Path, help="the file REPRO_HOOKS_TEST_CENSUS named")
    parser.add_argument("--top", type=int, default=20, help="rows before the rest is summed")
    args = parser.parse_args(argv)
    print(table(tally(args.census.read_text(encoding="utf-8").splitlines()), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
