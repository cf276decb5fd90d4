"""Whether repro-hooks' `block-large-files` provably reports a file at this commit, beside the
current hook: so that one finding is printed by one hook, once.

At the commit stage a large CSV breaks both the size limit (`block-large-files`) and the data
rule (`require-dvc-files`). When `block-large-files` runs at the same commit *and is passed that
file*, `check-dvc` leaves it to it (one finding, one recipe, and `--fix`). "Then both report,
never neither": a file is left to it only when every step is proven, as the framework itself
decides it (pre-commit 4.x, `pre_commit/commands/run.py`, `hook_impl.py`, `clientlib.py`):

1. The process that started us is the framework's git hook at the commit stage: our parent's
   command line is `pre-commit hook-impl --hook-type=pre-commit` (what `git commit` runs) or
   prek's. That names the config file (`--config`), the stage, and that every hook of the stage
   runs (a manual `pre-commit run <hook>`, `--all-files`, `--hook-stage`: not proven). No
   `/proc` (not Linux): not proven.
2. The config holds `block-large-files` from repro-hooks (a local hook's entry must be ours),
   at the commit stage, not skipped (SKIP by id or alias), passed file names, with args this
   module understands (the size options and `--config`): its size limit is then known.
3. pre-commit passes it the file: staged (`git diff --staged`), existing as a regular file, and
   through the top-level `files`/`exclude`, the hook's `files`/`exclude` (Python `re.search`,
   as pre-commit), and `types`/`types_or`/`exclude_types` (identify's tags, when identify is
   importable; the default `types: [file]` needs only the regular-file test).
4. At that hook's size limit the file is over it (`large_files.check`), which `check-dvc`'s
   caller decides.

Anything else means "not covered": both hooks report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repro_hooks.policy.config import Policy, load_config

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
COMMIT_STAGES = frozenset({"pre-commit", "commit"})  # "commit": pre-commit's legacy name
HOOK_ID = "block-large-files"
ENTRY = ("repro-hooks", "check-large-files")
DEFAULT_TYPES = frozenset({"file"})
# prek (a reimplementation) also reads these: with any of them beside the root config (its
# workspace mode runs nested projects on their own files) the set of hooks is not provable here
PREK_CONFIG_NAMES = (".pre-commit-config.yaml", ".pre-commit-config.yml", "prek.toml")

# hook-impl's options, per framework: name -> takes a value. Anything else: not proven.
_HOOK_IMPL_OPTIONS = {
    "pre-commit": {
        "--config": True,
        "-c": True,
        "--hook-type": True,
        "--hook-dir": True,
        "--skip-on-missing-config": False,
        "--color": True,
    },
    "prek": {
        "--hook-type": True,
        "--hook-dir": True,
        "--script-version": True,
        "--skip-on-missing-config": False,
        "--color": True,
        "-q": False,
        "--quiet": False,
        "--no-progress": False,
    },
}


@dataclass(frozen=True)
class HookRunner:
    """The framework's git hook that started us, at the commit stage, and its config file
    (relative to the repository root, where the framework runs hooks)."""

    framework: str  # "pre-commit" or "prek"
    config: str


def hook_runner(argv: Sequence[str]) -> HookRunner | None:
    """The commit-stage hook runner in a parent process's command line, or None when it is not
    provably `pre-commit hook-impl --hook-type=pre-commit` (or prek's) running every hook."""
    if "hook-impl" not in argv:
        return None
    at = list(argv).index("hook-impl")
    launcher = [os.path.basename(a) for a in argv[:at]]
    if any(name in ("prek", "prek.exe") for name in launcher):
        framework = "prek"
    elif any(name in ("pre-commit", "-mpre_commit", "pre_commit") for name in launcher):
        framework = "pre-commit"
    else:
        return None
    allowed = _HOOK_IMPL_OPTIONS[framework]
    given: dict[str, str] = {}
    args = list(argv[at + 1 :])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break  # git's own arguments to the hook follow
        name, eq, value = arg.partition("=")
        if name not in allowed:
            return None  # a selected hook, a --skip, a -C: not every hook of the stage
        if allowed[name] and not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        given[name] = value
        i += 1
    if given.get("--hook-type") != "pre-commit":
        return None
    return HookRunner(framework, given.get("--config", given.get("-c", PRE_COMMIT_CONFIG)))


def parent_argv() -> list[str] | None:
    """The parent process's command line (Linux `/proc`), or None where it cannot be read."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [os.fsdecode(a) for a in raw.split(b"\0")[:-1]] if raw else None


@dataclass(frozen=True)
class LargeFilesRun:
    """One `block-large-files` entry of the config: which names pre-commit passes it, and the
    policy it applies to them."""

    policy: Policy
    files: re.Pattern[str]
    exclude: re.Pattern[str]
    types: frozenset[str]
    types_or: frozenset[str]
    exclude_types: frozenset[str]

    def passed(self, path: str, tags: Callable[[], frozenset[str] | None]) -> bool:
        """Whether pre-commit passes this (staged, regular) file to this hook."""
        if not self.files.search(path) or self.exclude.search(path):
            return False
        if self.types <= DEFAULT_TYPES and not self.types_or and not self.exclude_types:
            return True  # a regular file is tagged `file`: the caller checked that
        found = tags()
        if found is None:
            return False  # identify is not importable here: not proven
        return (
            found >= self.types
            and (not self.types_or or bool(found & self.types_or))
            and not found & self.exclude_types
        )


@dataclass(frozen=True)
class CommitHooks:
    """The top-level filters of the config and its `block-large-files` runs at this commit."""

    files: re.Pattern[str]
    exclude: re.Pattern[str]
    runs: tuple[LargeFilesRun, ...]

    def runs_for(self, path: str, tags: Callable[[], frozenset[str] | None]) -> list[Policy]:
        """The policies of the runs pre-commit passes this file to (empty: none)."""
        if not self.files.search(path) or self.exclude.search(path):
            return []
        return [run.policy for run in self.runs if run.passed(path, tags)]


def identify_tags(root: Path) -> Callable[[str], frozenset[str] | None]:
    """identify's tags for a root-relative path, as pre-commit computes them; None for every
    path when identify is not importable (it comes with pre-commit, not with repro-hooks)."""
    try:
        from identify.identify import tags_from_path
    except ImportError:
        return lambda path: None
    return lambda path: frozenset(tags_from_path(os.path.join(root, path)))


def _hooks(doc: Any) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    if not isinstance(doc.get("repos"), list):
        return []
    return [
        (repo, hook)
        for repo in doc["repos"]
        if isinstance(repo, Mapping) and isinstance(repo.get("hooks"), list)
        for hook in repo["hooks"]
        if isinstance(hook, Mapping)
    ]


def _is_ours(repo: Mapping[str, Any], hook: Mapping[str, Any]) -> bool:
    """repro-hooks' block-large-files: a local hook whose entry is ours, or the hook of a
    repository named repro-hooks (its manifest's entry) unless the config overrides it."""
    url = repo.get("repo")
    entry = hook.get("entry")
    if entry is not None:
        return isinstance(entry, str) and tuple(entry.split()) == ENTRY
    if not isinstance(url, str) or url in ("local", "meta"):
        return False
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return name == "repro-hooks"


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


def _tags(value: Any, default: frozenset[str]) -> frozenset[str] | None:
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return frozenset(value)


def _regex(value: Any, default: str) -> re.Pattern[str] | None:
    if value is None:
        value = default
    if not isinstance(value, str):
        return None
    try:
        return re.compile(value)
    except re.error:
        return None


def _run(
    root: Path, hook: Mapping[str, Any], default_stages: Any, policy: Policy, skipped: set[str]
) -> LargeFilesRun | None:
    if hook.get("id") in skipped or hook.get("alias") in skipped:
        return None
    stages = hook.get("stages") or default_stages
    if stages is not None and not (isinstance(stages, list) and COMMIT_STAGES & set(stages)):
        return None
    if hook.get("pass_filenames", True) is not True:
        return None
    args = hook.get("args", [])
    if not isinstance(args, list):
        return None
    found = _size_policy(root, [str(a) for a in args], policy)
    files, exclude = _regex(hook.get("files"), ""), _regex(hook.get("exclude"), "^$")
    types = _tags(hook.get("types"), DEFAULT_TYPES)
    types_or = _tags(hook.get("types_or"), frozenset())
    exclude_types = _tags(hook.get("exclude_types"), frozenset())
    if (
        found is None
        or files is None
        or exclude is None
        or types is None
        or types_or is None
        or exclude_types is None
    ):
        return None
    return LargeFilesRun(found, files, exclude, types, types_or, exclude_types)


def large_files_runs_at_commit(
    root: Path,
    policy: Policy,
    env: Mapping[str, str],
    runner: HookRunner | None,
    other_configs: Callable[[], bool] = lambda: False,
) -> CommitHooks | None:
    """The `block-large-files` runs the framework's commit hook makes here (steps 1 and 2 of
    the module docstring), or None when none is proven. `policy` is the repository's own (what
    the hook reads by default); `other_configs` says whether config files other than the root
    one exist (prek runs those projects too: not proven)."""
    if runner is None or env.get("PRE_COMMIT") != "1":
        return None
    if env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_TO_REF"):
        return None
    if runner.framework == "prek" and (runner.config != PRE_COMMIT_CONFIG or other_configs()):
        return None
    skipped = {s.strip() for key in ("SKIP", "PREK_SKIP") for s in env.get(key, "").split(",") if s}
    import yaml

    try:
        text = (root / runner.config).read_text(encoding="utf-8")
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(doc, Mapping):
        return None
    files, exclude = _regex(doc.get("files"), ""), _regex(doc.get("exclude"), "^$")
    if files is None or exclude is None:
        return None
    default_stages = doc.get("default_stages")
    runs = [
        run
        for repo, hook in _hooks(doc)
        if hook.get("id") == HOOK_ID and _is_ours(repo, hook)
        for run in [_run(root, hook, default_stages, policy, skipped)]
        if run is not None
    ]
    return CommitHooks(files, exclude, tuple(runs)) if runs else None
