"""Baselines: findings already in history, recorded once (keyed by rule, path and blob)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repro_hooks.errors import ConfigError, ReproHooksError
from repro_hooks.report import Finding

BASELINE_VERSION = 1
BASELINE_KIND = "repro-hooks-baseline"


BaselineKey = tuple[str, str, str]  # (rule, path, blob sha)


def baseline_keys(
    findings: Iterable[Finding], sha_of: Mapping[tuple[str, str | None], str]
) -> dict[BaselineKey, Finding]:
    """Findings keyed by rule, path and blob, never by commit: a rebase keeps them baselined."""
    return {(f.rule, f.path, sha_of.get((f.path, f.commit), "")): f for f in findings}


def baseline_document(keys: Iterable[BaselineKey]) -> dict[str, Any]:
    return {
        "version": BASELINE_VERSION,
        "kind": BASELINE_KIND,
        "findings": [
            {"rule": rule, "path": path, "blob": blob} for rule, path, blob in sorted(set(keys))
        ],
    }


def write_baseline(file: Path, keys: Iterable[BaselineKey]) -> None:
    try:
        file.write_text(json.dumps(baseline_document(keys), indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ReproHooksError(f"{file}: cannot write baseline: {exc.strerror or exc}") from None


def load_baseline(file: Path) -> set[BaselineKey]:
    """The keys of a baseline file; a malformed file is a ConfigError naming it."""
    name = str(file)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(name, "file", exc.strerror or str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(name, "json", f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != BASELINE_KIND:
        raise ConfigError(name, "kind", f"not a repro-hooks baseline (expected {BASELINE_KIND!r})")
    if doc.get("version") != BASELINE_VERSION:
        raise ConfigError(
            name, "version", f"unsupported version {doc.get('version')!r} (expected 1)"
        )
    entries = doc.get("findings")
    if not isinstance(entries, list):
        raise ConfigError(name, "findings", "expected a list")
    keys = set()
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and all(isinstance(entry.get(k), str) for k in ("rule", "path", "blob"))
        ):
            raise ConfigError(name, f"findings[{i}]", "expected {rule, path, blob} strings")
        keys.add((entry["rule"], entry["path"], entry["blob"]))
    return keys


def without_baselined(
    keyed: Mapping[BaselineKey, Finding], baseline: set[BaselineKey]
) -> list[Finding]:
    return [f for key, f in keyed.items() if key not in baseline]
