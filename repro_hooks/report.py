"""Findings and the one message shape every command prints.

text:   `path: what is wrong`, sorted by path, then at most one short block saying how to fix it.
json:   a versioned document (schema: repro_hooks/schemas/findings-v1.json).
sarif:  SARIF 2.1.0, for code-scanning uploads.
github: GitHub Actions `::error file=...::` annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

FORMATS = ("text", "json", "sarif", "github")
JSON_SCHEMA_ID = "https://repro-hooks.dev/schemas/findings-v1.json"
JSON_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# rule id -> one-line description (SARIF rule metadata and docs).
RULES: dict[str, str] = {
    "large-file": "A file larger than the size limit is stored in git.",
    "lfs-pointer": "A path under a filter=lfs attribute is stored raw instead of as an LFS pointer.",
    "data-in-git": "A data or model file is stored in git instead of DVC.",
    "untracked-data": "A data file is described by no .dvc file or dvc.yaml stage.",
    "stale-dvc": "A .dvc file's recorded hash differs from the data in the working tree.",
    "missing-output": "A DVC output is missing from the working tree.",
    "stale-lock": "A dvc.lock stage differs from the working tree, params or command.",
    "not-ignored": "A cached DVC output is not ignored by git.",
    "malformed-dvc": "A .dvc, dvc.yaml or dvc.lock file is malformed or unsafe.",
    "dvc-not-pushed": "A DVC object referenced by pushed commits is missing from its remote.",
    "uncommitted-output": "A cache: false DVC output (kept by git) is not in the commit recording it.",
    "dvc-push-false": "A DVC output marked push: false: its data is in no DVC remote.",
    "large-message": "A commit or tag message is larger than the message limit.",
    "ref-name": "A pushed ref name that misleads other tools (a branch named HEAD).",
    # check-model (the deploy gate, repro_hooks/deploy/gate.py)
    "run-missing": "The model version's run is deleted or gone from the tracking store.",
    "run-unlinked": "The model version's run is linked to no commit (no git.commit tag).",
    "link-unverified": "The run's link was forced or written by hand, not made by the rules.",
    "commit-missing": "The commit the run is linked to is not in this repository.",
    "commit-unprotected": "The commit the run is linked to is not on the protected branch.",
    "data-mismatch": "The run's DVC hashes differ from what its commit records.",
    "model-source": "The model version serves files that are not its run's own artifacts.",
    "model-bytes": "A file the model version serves differs from what its run recorded.",
    "attestation-missing": "The protected branch requires a signed statement the run lacks.",
    "attestation-invalid": "The run's signed statement does not verify or disagrees with it.",
    "stamp-invalid": "The run's stamp is missing, malformed or does not fit the linked commit.",
    "stamp-shared": "Several runs carry the same stamp: it was copied, so none proves the link.",
    "total-size": "The files of one commit together exceed the total-size limit (bulk data).",
}


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
    ordered = sort_findings(findings)
    if fmt == "text":
        return _render_text(ordered, fix_hint)
    if fmt == "json":
        return _render_json(ordered, command)
    if fmt == "sarif":
        return _render_sarif(ordered)
    if fmt == "github":
        return _render_github(ordered)
    raise ValueError(f"unknown format {fmt!r}")  # click.Choice prevents this


def _render_text(findings: Sequence[Finding], fix_hint: str) -> str:
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


def _render_json(findings: Sequence[Finding], command: str) -> str:
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


def _render_sarif(findings: Sequence[Finding]) -> str:
    used = sorted({f.rule for f in findings} | set(RULES))
    results = []
    for f in findings:
        result: dict[str, object] = {
            "ruleId": f.rule,
            "level": "error",
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
                        "rules": [
                            {"id": rule, "shortDescription": {"text": RULES.get(rule, rule)}}
                            for rule in used
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
    import json  # lazy: the text format, on every commit, never needs it

    return json.dumps(doc, indent=2, ensure_ascii=False)


def _sarif_uri(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def _render_github(findings: Sequence[Finding]) -> str:
    def esc_data(s: str) -> str:
        return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def esc_prop(s: str) -> str:
        return esc_data(s).replace(":", "%3A").replace(",", "%2C")

    return "\n".join(
        f"::error file={esc_prop(f.path)},title={esc_prop(f.rule)}::{esc_data(f.message)}"
        for f in findings
    )
