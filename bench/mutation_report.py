"""The kill rate per module of the last `make mutation` run, and its survivors.

Reads mutmut's results (`mutants/**/*.py.meta`) from the repository root: one table row per
mutated module (killed, survived, timeouts, no test, not run) and, with --survivors, each
surviving mutant's name, for bench/RESULTS.md ("Mutation testing")."""

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
        kind = (
            "killed"
            if code in KILLED
            else "survived"
            if code in SURVIVED
            else "timeout"
            if code in TIMEOUT
            else "no test"
            if code in NO_TESTS
            else "not run"
            if code is None
            else "other"
        )
        rows.setdefault(module_of(name), Counter())[kind] += 1
    print("| module | mutants run | killed | survived | timeout | no test | kill rate | not run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    total: Counter[str] = Counter()
    for module, c in sorted(rows.items()):
        total.update(c)
        ran = c["killed"] + c["survived"] + c["timeout"] + c["no test"] + c["other"]
        rate = f"{100 * (c['killed'] + c['timeout']) / ran:.0f}%" if ran else "-"
        print(
            f"| `{module}` | {ran} | {c['killed']} | {c['survived']} | {c['timeout']} | "
            f"{c['no test']} | {rate} | {c['not run']} |"
        )
    ran = sum(total.values()) - total["not run"]
    rate = f"{100 * (total['killed'] + total['timeout']) / ran:.0f}%" if ran else "-"
    print(
        f"| all | {ran} | {total['killed']} | {total['survived']} | {total['timeout']} | "
        f"{total['no test']} | {rate} | {total['not run']} |"
    )
    if args.survivors:
        print()
        for name, code in sorted(found.items()):
            if code in SURVIVED:
                print(name)


if __name__ == "__main__":
    main()
