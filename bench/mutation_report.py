"""The kill rate per module of the last `make mutation` run, and its survivors.

Reads mutmut's results (`mutants/**/*.py.meta`) from the repository root: one table row per
mutated module and, with --survivors, each surviving mutant's name, for bench/RESULTS.md
("Mutation testing"). The kill rate counts the mutants some unit test reaches (killed or timed
out, over killed, survived and timed out); "no test" are mutants of functions no selected unit
test calls, "not run" those this run left out."""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): 1 and 3 are kills; 0 a survivor
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {36, 24, -24, 152, 255}


def results(root: Path) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def kind_of(code: int | None) -> str:
    if code is None:
        return "not run"
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in TIMEOUT:
        return "timeout"
    if code in NO_TESTS:
        return "no test"
    return "other"  # suspicious, segfault, interrupted: reached, not a kill


def row(label: str, c: Counter[str]) -> str:
    reached = c["killed"] + c["survived"] + c["timeout"] + c["other"]
    rate = f"{100 * (c['killed'] + c['timeout']) / reached:.0f}%" if reached else "-"
    mutants = sum(c.values())
    return (
        f"| {label} | {mutants} | {reached} | {c['killed']} | {c['survived']} | {c['timeout']} | "
        f"{rate} | {c['no test']} | {c['not run']} |"
    )


def module_of(name: str) -> str:
    return name.rsplit(".", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--survivors", action="store_true", help="list every survivor")
    parser.add_argument("patterns", nargs="*", help="mutant name globs (default: all)")
    args = parser.parse_args()
    found = {
        name: code
        for name, code in results(args.root).items()
        if not args.patterns or any(fnmatch.fnmatch(name, p) for p in args.patterns)
    }
    rows: dict[str, Counter[str]] = {}
    for name, code in found.items():
        rows.setdefault(module_of(name), Counter())[kind_of(code)] += 1
    print(
        "| module | mutants | reached by a test | killed | survived | timeout | kill rate | no test | not run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    total: Counter[str] = Counter()
    for module, counts in sorted(rows.items()):
        total.update(counts)
        print(row(f"`{module}`", counts))
    print(row("all", total))
    if args.survivors:
        print()
        for name, code in sorted(found.items()):
            if code in SURVIVED:
                print(name)


if __name__ == "__main__":
    main()
