"""Findings and the one message shape every command prints.

text:   `path: what is wrong`, sorted by path, then at most one short block saying how to fix it.
json:   a versioned document (schema: repro_hooks/schemas/findings-v1.json).
sarif:  SARIF 2.1.0, for code-scanning uploads.
github: GitHub Actions `::error file=...::` annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

JSON_SCHEMA_ID = "https://repro-hooks.dev/schemas/findings-v1.json"
JSON_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem with one path. `path` is the display form, relative to the repository root."""

    path: str
    rule: str
    message: str
    commit: str | None = None
    raw_path: bytes | None = field(default=None, compare=False)  # as git names it, for fixers
    ref: str | None = None  # the pushed ref that brings it (history scans), for messages

    def __post_init__(self) -> None:
        # a message may quote a file name (`differs from new\nline.csv.dvc`): keep it one line
        if not self.message.isprintable():
            object.__setattr__(self, "message", display_path(self.message))


def display_path(raw: bytes | str) -> str:
    """A path as one printable line: UTF-8 where valid, escapes for bad bytes and control chars."""
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(set(findings))


def render(findings: Sequence[Finding], fmt: str, *, command: str, fix_hint: str = "") -> str:
    """Render findings in one of FORMATS. Returns text without a trailing newline."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise ValueError(f"unknown format {fmt!r}")  # click.Choice prevents this
    return renderer(sort_findings(findings), command, fix_hint)


def _render_text(findings: Sequence[Finding], command: str, fix_hint: str) -> str:
    lines = []
    for f in findings:
        where = f"{f.path}: {f.message}"
        if f.commit or f.ref:
            said = [f"commit {f.commit[:12]}"] if f.commit else []
            where += f" ({', '.join([*said, *([f'ref {f.ref}'] if f.ref else [])])})"
        lines.append(where)
    if findings and fix_hint:
        lines.append("")
        lines.append(fix_hint.rstrip("\n"))
    return "\n".join(lines)


def _render_json(findings: Sequence[Finding], command: str, fix_hint: str) -> str:
    doc = {
        "$schema": JSON_SCHEMA_ID,
        "version": JSON_VERSION,
        "tool": "repro-hooks",
        "command": command,
        "findings": [
            {"path": f.path, "rule": f.rule, "message": f.message, "commit": f.commit}
            | ({"ref": f.ref} if f.ref else {})
            for f in findings
        ],
    }
    import json  # lazy: the text format, on every commit, never needs it

    return json.dumps(doc, indent=2, ensure_ascii=False)


def _render_sarif(findings: Sequence[Finding], command: str, fix_hint: str) -> str:
    from repro_hooks.rules import RULES  # lazy: building the registry is ~1 ms a clean commit skips

    used = sorted({f.rule for f in findings} | set(RULES))
    results = []
    for f in findings:
        result: dict[str, object] = {
            "ruleId": f.rule,
            "level": _level(f.rule),
            "message": {"text": f"{f.path}: {f.message}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _sarif_uri(f.path)}}}],
        }
        if f.commit or f.ref:
            result["properties"] = {
                k: v for k, v in (("commit", f.commit), ("ref", f.ref)) if v is not None
            }
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "repro-hooks",
                        "informationUri": "https://pypi.org/project/repro-hooks/",
                        "rules": [_sarif_rule(rule) for rule in used],
                    }
                },
                "results": results,
            }
        ],
    }
    import json  # lazy: the text format, on every commit, never needs it

    return json.dumps(doc, indent=2, ensure_ascii=False)


def _level(rule_id: str) -> str:
    from repro_hooks.rules import RULES

    known = RULES.get(rule_id)
    return known.severity if known is not None else "error"


def _sarif_rule(rule_id: str) -> dict[str, object]:
    """A SARIF reportingDescriptor: the registry's summary, severity and fix line."""
    from repro_hooks.rules import RULES

    known = RULES.get(rule_id)
    if known is None:  # a test keeps every emitted id in the registry; never fail the output
        return {"id": rule_id, "shortDescription": {"text": rule_id}}
    descriptor: dict[str, object] = {
        "id": rule_id,
        "shortDescription": {"text": known.summary},
        "defaultConfiguration": {"level": known.severity},
    }
    help_text = " ".join(line for line in (known.fix, known.history_fix) if line)
    if help_text:
        descriptor["help"] = {"text": help_text}
    return descriptor


def _sarif_uri(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _render_github(findings: Sequence[Finding], command: str, fix_hint: str) -> str:
    def esc_data(s: str) -> str:
        return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def esc_prop(s: str) -> str:
        return esc_data(s).replace(":", "%3A").replace(",", "%2C")

    return "\n".join(
        f"::error file={esc_prop(f.path)},title={esc_prop(f.rule)}::{esc_data(f.message)}"
        for f in findings
    )


# format name -> renderer(sorted findings, command, fix hint); the --format choices. A new
# format is one function and one entry here.
RENDERERS: dict[str, Callable[[Sequence[Finding], str, str], str]] = {
    "text": _render_text,
    "json": _render_json,
    "sarif": _render_sarif,
    "github": _render_github,
}
FORMATS = tuple(RENDERERS)
