"""Which of repro-hooks' own hooks the repository's `.pre-commit-config.yaml` runs beside the
current one, and with which size limit: so that one finding is printed by one hook, once.

At the commit stage a large CSV breaks both the size limit (`block-large-files`) and the data
rule (`require-dvc-files`). When `block-large-files` runs at the same commit, `check-dvc`
leaves files over its size limit to it (one finding, one recipe, and `--fix`). Anything
uncertain (no config, a config that does not parse, a hook skipped with SKIP, args this module
does not understand) means "not covered": then both report, never neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from repro_hooks.policy.config import Policy, load_config

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
COMMIT_STAGES = frozenset({"pre-commit", "commit"})  # "commit": pre-commit's legacy name


def _hooks(doc: Any) -> list[Mapping[str, Any]]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("repos"), list):
        return []
    return [
        hook
        for repo in doc["repos"]
        if isinstance(repo, Mapping) and isinstance(repo.get("hooks"), list)
        for hook in repo["hooks"]
        if isinstance(hook, Mapping)
    ]


def _size_policy(root: Path, args: Sequence[str], policy: Policy) -> Policy | None:
    """The policy `check-large-files ARGS` would apply, or None if ARGS hold anything else
    than the size options (then we cannot be sure what it reports). As the command does: the
    --config file first, then --max-size or --maxkb over it."""
    from repro_hooks.policy.sizes import parse_size

    given: dict[str, str] = {}
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name not in ("--max-size", "--maxkb", "--config"):
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        given[name] = value
        i += 1
    if "--max-size" in given and "--maxkb" in given:
        return None  # the hook refuses this itself (exit 2)
    try:
        if "--config" in given:
            policy = load_config(root, root / given["--config"]).policy
        if "--max-size" in given:
            policy = replace(policy, max_size=parse_size(given["--max-size"]))
        elif "--maxkb" in given:
            policy = replace(policy, max_size=int(given["--maxkb"]) * 1024)
    except Exception:  # the hook itself will say what is wrong with its args
        return None
    return policy


def large_files_policy_at_commit(
    root: Path, policy: Policy, env: Mapping[str, str]
) -> Policy | None:
    """The policy `block-large-files` applies at this commit, when pre-commit (or prek) runs it
    here too; else None. `policy` is the repository's own (what the hook reads by default)."""
    if not env.get("PRE_COMMIT"):
        return None
    skipped = {s.strip() for s in env.get("SKIP", "").split(",")}
    if "block-large-files" in skipped:
        return None
    import yaml

    try:
        text = (root / PRE_COMMIT_CONFIG).read_text(encoding="utf-8")
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    default_stages = doc.get("default_stages") if isinstance(doc, Mapping) else None
    for hook in _hooks(doc):
        if hook.get("id") != "block-large-files":
            continue
        stages = hook.get("stages", default_stages)
        if stages is not None and not (isinstance(stages, list) and COMMIT_STAGES & set(stages)):
            continue
        if hook.get("files") or hook.get("exclude"):
            continue  # it may not see every path: report as usual
        args = hook.get("args", [])
        if not isinstance(args, list):
            continue
        found = _size_policy(root, [str(a) for a in args], policy)
        if found is not None:
            return found
    return None
