"""The rule registry is the only list of rules: every rule id the package can emit is in it, the
docs' rule table is it, and SARIF's rule metadata comes from it."""

from __future__ import annotations

import ast
import json
import re
import sys

import pytest

from repro_hooks.policy.config import Policy
from repro_hooks.policy.data import data_in_git
from repro_hooks.report import FORMATS, Finding, render
from repro_hooks.rules import ALL, RULES, SEVERITIES, STAGES, fixes, rule
from tests.helpers import ROOT

PACKAGE = ROOT / "repro_hooks"
COMMANDS_DOC = ROOT / "docs" / "commands.md"
TABLE_HEADER = "| rule | checked at | what it finds |"
RULE_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")


def rules_table() -> str:
    """The docs' rule table, as the registry says it."""
    lines = [TABLE_HEADER, "| --- | --- | --- |"]
    lines += [f"| `{r.id}` | {', '.join(r.stages)} | {r.summary} |" for r in ALL]
    return "\n".join(lines)


def _rule_literals(tree: ast.AST) -> set[str]:
    """The rule ids a module names: the second argument (or `rule=`) of every `Finding(...)`,
    every `*rule=` keyword (`stale_rule="stale-lock"`), every string compared with a `.rule`
    or with `rules` (hints: `f.rule == "x"`, `rules & {...}`, `"x" in rules`), and the rule
    of each (target, shown, rule) triple check-dvc defers to DVC."""
    found: set[str] = set()

    def strings(node: ast.AST) -> set[str]:
        return {
            n.value
            for n in ast.walk(node)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and RULE_ID.match(n.value)
        }

    def names_rule(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "rule") or (
            isinstance(node, ast.Name) and node.id in ("rules", "rule")
        )

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "Finding" and len(node.args) >= 2:
                found |= strings(node.args[1])
            for kw in node.keywords:
                if kw.arg is not None and kw.arg.endswith("rule"):
                    found |= strings(kw.value)
        elif (
            isinstance(node, ast.Compare)
            and (names_rule(node.left) or any(names_rule(c) for c in node.comparators))
        ) or (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, (ast.BitAnd, ast.Sub))
            and (names_rule(node.left) or names_rule(node.right))
        ):
            found |= strings(node)
    return found


def emitted_rule_ids() -> dict[str, set[str]]:
    """module -> the rule ids it names (see `_rule_literals`)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "rules.py":
            continue
        ids = _rule_literals(ast.parse(path.read_text(encoding="utf-8")))
        if ids:
            out[path.relative_to(ROOT).as_posix()] = ids
    return out


def test_every_rule_id_the_package_names_is_registered() -> None:
    named = emitted_rule_ids()
    unknown = {m: sorted(ids - RULES.keys()) for m, ids in named.items() if ids - RULES.keys()}
    assert unknown == {}
    # the scan sees the rooms that emit findings (it would pass vacuously on a broken walk)
    assert {"large-file", "data-in-git", "malformed-dvc", "run-missing", "ref-name"} <= set().union(
        *named.values()
    )


def test_every_registered_rule_is_emitted_somewhere() -> None:
    """A rule no code names is dead (as `untracked-data` was)."""
    named = set().union(*emitted_rule_ids().values())
    assert sorted(RULES.keys() - named) == []


def test_the_scan_catches_an_unregistered_rule() -> None:
    module = 'Finding(path, "notebook-outputs", "x")\nif f.rule == "no-such-rule": pass\n'
    assert _rule_literals(ast.parse(module)) == {"notebook-outputs", "no-such-rule"}


def test_registry_entries_are_well_formed() -> None:
    assert len(RULES) == len(ALL)
    for r in ALL:
        assert RULE_ID.match(r.id), r.id
        assert r.severity in SEVERITIES, r.id
        assert r.stages and list(r.stages) == [s for s in STAGES if s in r.stages], r.id
        assert r.summary.endswith(".") and "\n" not in r.summary, r.id
        assert not r.title or r.fix, f"{r.id}: a title names a fix line"
    assert rule("data-in-git") is RULES["data-in-git"]
    with pytest.raises(KeyError):
        rule("untracked-data")


def test_fix_lines_are_said_once_in_registry_order() -> None:
    said = fixes({"data-in-git", "large-file", "malformed-dvc", "large-message"}, history=True)
    assert said == [
        rule("large-file").history_fix,  # large-file and data-in-git share it
        rule("large-message").history_fix,
        rule("malformed-dvc").history_fix,
    ]


def test_docs_rule_table_is_the_registry() -> None:
    """Generated from the registry: a rule added without docs fails here. To update, paste
    the expected table over the one in docs/commands.md (or run this file as a script)."""
    text = COMMANDS_DOC.read_text(encoding="utf-8")
    start = text.index(TABLE_HEADER)
    end = _table_end(text, start)
    assert text[start:end] == rules_table()


def test_sarif_rule_metadata_comes_from_the_registry() -> None:
    doc = json.loads(render([Finding("a.csv", "data-in-git", "x")], "sarif", command="scan"))
    descriptors = {d["id"]: d for d in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert sorted(descriptors) == sorted(RULES)
    data = descriptors["data-in-git"]
    assert data["shortDescription"] == {"text": rule("data-in-git").summary}
    assert data["defaultConfiguration"] == {"level": "error"}
    assert rule("data-in-git").fix in data["help"]["text"]
    assert "help" not in descriptors["run-missing"]  # no fix line: no help
    assert doc["runs"][0]["results"][0]["level"] == "error"


@pytest.mark.parametrize(
    ("path", "kwargs", "expected"),
    [
        pytest.param("d/a.csv", {}, "data file stored in git", id="commit-stage"),
        pytest.param("d/a.txt", {}, None, id="not-a-data-pattern"),
        pytest.param("runs/x/a.csv", {}, None, id="data-exclude"),
        pytest.param(
            "d/a.csv",
            {"size": 2048},
            "data file stored in git (2 KiB): track it with DVC",
            id="history-adds-the-size",
        ),
        pytest.param("d/a.csv", {"size": 0}, None, id="empty-blob"),
        pytest.param(
            "d/a.csv",
            {"size": 2048, "as_symlink": True},
            "data file stored in git as a symbolic link (a regular file where symlinks are off) "
            "(2 KiB): track it with DVC",
            id="symlink-judged-as-a-file",
        ),
        pytest.param(
            "d/a.txt",
            {"output": ("d", True, "d.dvc")},
            "in git and also a DVC output (d, d.dvc)",
            id="under-a-cached-output",
        ),
        pytest.param("d/a.csv", {"output": ("d/a.csv", False, "dvc.yaml")}, None, id="cache-false"),
    ],
)
def test_data_in_git_decides_for_every_stage(
    path: str, kwargs: dict[str, object], expected: str | None
) -> None:
    policy = Policy(data_exclude=("runs/",))
    assert data_in_git(path, policy.is_data, **kwargs) == expected


def test_every_format_renders_and_is_a_choice() -> None:
    found = [Finding("a.csv", "data-in-git", "x")]
    assert FORMATS == ("text", "json", "sarif", "github")
    for fmt in FORMATS:
        assert "a.csv" in render(found, fmt, command="scan")
    with pytest.raises(ValueError, match="unknown format"):
        render(found, "xml", command="scan")


def _table_end(text: str, start: int) -> int:
    end = text.find("\n\n", start)
    return end if end != -1 else len(text.rstrip("\n"))


def _write_table() -> None:
    text = COMMANDS_DOC.read_text(encoding="utf-8")
    start = text.index(TABLE_HEADER)
    end = _table_end(text, start)
    COMMANDS_DOC.write_text(text[:start] + rules_table() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-docs"]:
        _write_table()
