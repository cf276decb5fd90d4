"""Is the data kept out of git described by DVC, exactly? The pure core of `check-dvc`.

Inputs are plain data: the parsed DVC files (`DvcFiles`), what git says about the working tree
(`GitFacts`), and what the working tree holds (`WorkTree`: hashes DVC's way, params values).
`hash_targets`/`exists_targets`/`params_targets` say what the adapter must measure; `dvc_findings`
turns it all into findings. The semantics are `dvc status`'s (dvc/stage, dvc/output,
dvc/dependency/param.py): an output or dependency is changed when it is missing, has no recorded
hash, or its hash differs; a frozen stage's dependencies are not checked; a dvc.yaml stage is
changed when its locked `cmd` differs, and a stage with neither deps nor outs always is.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro_hooks.dvc.files import DvcFile, LockStage, Output, Stage, abbrev, is_url
from repro_hooks.dvc.params import param_value
from repro_hooks.policy.config import Policy
from repro_hooks.policy.data import data_in_git
from repro_hooks.policy.globs import compile_any
from repro_hooks.report import Finding, display_path


@dataclass(frozen=True)
class Pipeline:
    """One dvc.yaml and the dvc.lock beside it."""

    yaml_file: str
    lock_file: str
    stages: Mapping[str, Stage]
    locked: Mapping[str, LockStage]


@dataclass(frozen=True)
class DvcFiles:
    dvc_files: Mapping[str, DvcFile] = field(default_factory=dict)  # path -> parsed .dvc file
    pipelines: Sequence[Pipeline] = ()
    malformed: Mapping[str, str] = field(default_factory=dict)  # DVC file -> reason


@dataclass(frozen=True)
class GitFacts:
    tracked: Collection[str] = frozenset()  # paths in the index
    not_ignored_outputs: Collection[str] = frozenset()  # cached outputs git would not ignore


@dataclass(frozen=True)
class WorkTree:
    hashes: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    exists: Mapping[str, bool] = field(default_factory=dict)
    unsafe: Mapping[str, str] = field(default_factory=dict)  # path -> why it was not read
    params: Mapping[str, Any] = field(default_factory=dict)  # file -> dict | None (missing)
    params_errors: Mapping[str, str] = field(default_factory=dict)
    # (path, algorithm) of a directory output -> the hashes of the files in it
    dir_entries: Mapping[tuple[str, str], Sequence[str]] = field(default_factory=dict)
    # (hash, algorithm) -> whether DVC's cache holds that object; None: the cache was not looked at
    in_cache: Mapping[tuple[str, str], bool] | None = None


@dataclass(frozen=True)
class Scope:
    """PATHS given on the command line (repository-relative); empty means everything."""

    paths: tuple[str, ...] = ()

    def covers(self, *candidates: str) -> bool:
        if not self.paths:
            return True
        return any(_related(c, p) for c in candidates for p in self.paths)


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/") or b == "."


# ---- what to measure ------------------------------------------------------------------------


def _selected_dvc_files(files: DvcFiles, scope: Scope) -> list[tuple[str, DvcFile]]:
    if not scope.paths:
        return sorted(files.dvc_files.items())
    return [
        (name, df)
        for name, df in sorted(files.dvc_files.items())
        if scope.covers(name, *(o.path for o in df.outs), *(d.path for d in df.deps))
    ]


def _stage_paths(stage: Stage) -> list[str]:
    return [*stage.deps, *(o.path for o in stage.outs), *stage.params]


def _selected_stages(files: DvcFiles, scope: Scope) -> list[tuple[Pipeline, Stage]]:
    return [
        (p, stage)
        for p in files.pipelines
        for stage in p.stages.values()
        if scope.covers(p.yaml_file, p.lock_file, *_stage_paths(stage))
    ]


def undecided_imports(files: DvcFiles, scope: Scope) -> list[str]:
    """Non-frozen imports from URLs or other repositories: only DVC can ask their source."""
    return [n for n, df in _selected_dvc_files(files, scope) if df.external_deps and not df.frozen]


def hash_targets(files: DvcFiles, scope: Scope) -> set[tuple[str, str]]:
    """(path, algorithm) for every recorded output and dependency the check compares."""
    targets: set[tuple[str, str]] = set()
    for _, df in _selected_dvc_files(files, scope):
        for o in (*df.outs, *(() if df.frozen else df.deps)):
            if o.hash_value:
                targets.add((o.path, o.algorithm))
    for p, stage in _selected_stages(files, scope):
        locked = p.locked.get(stage.name)
        if locked is None:
            continue
        outs = {o.def_path: o for o in locked.outs}
        deps = {d.def_path: d for d in locked.deps}
        pairs = [(so.path, outs.get(so.def_path)) for so in stage.outs]
        if not stage.frozen:
            pairs += [
                (p, deps.get(raw)) for p, raw in zip(stage.deps, stage.def_deps, strict=False)
            ]
        for path, entry in pairs:
            if entry is not None and entry.hash_value:
                targets.add((path, entry.algorithm))
    return targets


def exists_targets(files: DvcFiles, scope: Scope) -> set[str]:
    out: set[str] = set()
    for _, df in _selected_dvc_files(files, scope):
        out.update(o.path for o in (*df.outs, *df.deps))
    for _, stage in _selected_stages(files, scope):
        out.update(d for d in stage.deps if not is_url(d))
        out.update(o.path for o in stage.outs)
        out.update(stage.params)
    return out


def params_targets(files: DvcFiles, scope: Scope) -> set[str]:
    return {
        pfile
        for _, stage in _selected_stages(files, scope)
        if not stage.frozen
        for pfile in stage.params
    }


def _objects(out: Output, tree: WorkTree) -> list[tuple[str, str]]:
    """The cache objects an up-to-date output needs: itself, and a directory's files."""
    assert out.hash_value is not None
    algo = out.algorithm
    entries = tree.dir_entries.get((out.path, algo), ()) if out.is_dir else ()
    return [(out.hash_value, algo), *((md5, algo) for md5 in entries)]


def _cached_outs(files: DvcFiles, scope: Scope) -> list[Output]:
    outs = [o for _, df in _selected_dvc_files(files, scope) for o in df.outs]
    for p, stage in _selected_stages(files, scope):
        locked = p.locked.get(stage.name)
        if locked is not None:
            wanted = {so.def_path for so in stage.outs if so.cache}
            outs.extend(o for o in locked.outs if o.def_path in wanted)
    return [o for o in outs if o.cache and o.hash_value]


def cache_targets(files: DvcFiles, tree: WorkTree, scope: Scope) -> set[tuple[str, str]]:
    """(hash, algorithm) of every object DVC's cache must hold for the outputs that match the
    working tree (`dvc status` says "not in cache" otherwise)."""
    return {
        obj
        for o in _cached_outs(files, scope)
        if _compare(o, o.path, tree) is None
        for obj in _objects(o, tree)
    }


def _not_in_cache(out: Output, tree: WorkTree) -> bool:
    if tree.in_cache is None or not out.cache or not out.hash_value:
        return False
    return not all(tree.in_cache.get(obj, False) for obj in _objects(out, tree))


# ---- the verdict ----------------------------------------------------------------------------


def _short(value: str | None) -> str:
    return "none" if value is None else value[:8] + (".dir" if value.endswith(".dir") else "")


def _compare(entry: Output | None, path: str, tree: WorkTree) -> tuple[str, str] | None:
    """(kind, detail) when a recorded entry differs from the working tree, else None.
    kind: "missing" | "changed" | "unsafe"."""
    if path in tree.unsafe:
        return "unsafe", tree.unsafe[path]
    if not tree.exists.get(path, False):
        return "missing", "does not exist"
    if entry is None or not entry.hash_value:
        return "changed", "no hash recorded"
    actual = tree.hashes.get((path, entry.algorithm))
    if actual is None:  # it exists, but (a file in) it could not be read
        return "changed", "could not be read to hash it"
    if actual.startswith("!"):  # the adapter could say only why it differs
        return "changed", actual[1:]
    if actual != entry.hash_value:
        return "changed", f"{_short(entry.hash_value)} recorded, {_short(actual)} now"
    return None


def _dvc_file_findings(name: str, df: DvcFile, tree: WorkTree) -> list[Finding]:
    findings = []
    if df.always_changed:
        findings.append(
            Finding(
                display_path(name),
                "stale-dvc",
                "always_changed: DVC reports it changed on every status",
            )
        )
    for out in df.outs:
        diff = _compare(out, out.path, tree)
        if diff is None:
            if _not_in_cache(out, tree):
                findings.append(
                    Finding(
                        display_path(out.path),
                        "stale-dvc",
                        f"not in the DVC cache (dvc commit {name})",
                    )
                )
            continue
        findings.append(
            _changed_output(
                out.path,
                diff,
                where=name,
                missing=f"output of {name} is missing",
                stale_rule="stale-dvc",
                stale=lambda detail: f"differs from {name} ({detail})",
            )
        )
    if not df.frozen:
        for dep in df.deps:
            diff = _compare(dep, dep.path, tree)
            if diff is not None:
                rule = "malformed-dvc" if diff[0] == "unsafe" else "stale-dvc"
                findings.append(
                    Finding(
                        display_path(dep.path),
                        rule,
                        f"dependency of {name}: {diff[1]}",
                    )
                )
    return findings


def _same_param(actual: Any, locked: Any) -> bool:
    if isinstance(actual, tuple):
        actual = list(actual)
    return bool(actual == locked)


def _params_findings(
    label: str, pfile: str, keys: list[str] | None, locked: LockStage | None, tree: WorkTree
) -> list[Finding]:
    where = display_path(pfile)
    if pfile in tree.params_errors:
        return [
            Finding(
                where,
                "malformed-dvc",
                f"{label}: params file unreadable: {tree.params_errors[pfile]}",
            )
        ]
    config = tree.params.get(pfile)
    if config is None:
        return [Finding(where, "stale-lock", f"{label}: params file is missing")]
    values = None if locked is None else locked.params.get(pfile)
    if values is None:
        return [Finding(where, "stale-lock", f"{label}: params not in dvc.lock")]
    if keys:
        actual = {}
        for key in keys:
            found, value = param_value(config, key)
            if found:
                actual[key] = value
        names = list(dict.fromkeys(keys))
    else:
        actual = dict(config) if isinstance(config, Mapping) else {}
        names = list(dict.fromkeys([*actual, *values]))
    changed = []
    for key in names:
        if key not in actual:
            changed.append(f"{key} deleted")
        elif key not in values:
            changed.append(f"{key} new")
        elif not _same_param(actual[key], values[key]):
            changed.append(f"{key} {abbrev(values[key])} locked, {abbrev(actual[key])} now")
    if not changed:
        return []
    if len(changed) > 10:
        changed = [*changed[:10], f"and {len(changed) - 10} more"]
    return [Finding(where, "stale-lock", f"{label}: params changed: {'; '.join(changed)}")]


def _stage_findings(p: Pipeline, stage: Stage, tree: WorkTree) -> list[Finding]:
    label = f"stage {stage.name!r} ({p.lock_file})"
    locked = p.locked.get(stage.name)
    findings: list[Finding] = []
    yaml_where = display_path(p.yaml_file)
    if stage.cmd and not stage.deps and not stage.outs and not stage.params:
        return [
            Finding(
                yaml_where,
                "stale-lock",
                f"stage {stage.name!r} has no deps or outs: DVC always runs it",
            )
        ]
    if stage.always_changed:
        findings.append(
            Finding(
                yaml_where,
                "stale-lock",
                f"stage {stage.name!r}: always_changed: DVC always runs it",
            )
        )
    if locked is None:
        findings.append(
            Finding(
                yaml_where,
                "stale-lock",
                f"stage {stage.name!r} is not in {p.lock_file}: never run",
            )
        )
    elif locked.cmd != stage.cmd:
        findings.append(
            Finding(
                yaml_where,
                "stale-lock",
                f"stage {stage.name!r}: cmd differs from {p.lock_file}",
            )
        )
    if not stage.frozen:
        # DVC matches dvc.yaml entries with dvc.lock's by the path as written (`def_path`):
        # `./data/x` against `data/x` is a dependency without a recorded hash
        locked_deps = {d.def_path: d for d in locked.deps} if locked else {}
        for dep, raw in zip(stage.deps, stage.def_deps, strict=False):
            if is_url(dep):
                continue
            diff = _compare(locked_deps.get(raw), dep, tree)
            if diff is not None:
                rule = "malformed-dvc" if diff[0] == "unsafe" else "stale-lock"
                findings.append(Finding(display_path(dep), rule, f"dep of {label}: {diff[1]}"))
        for pfile, keys in stage.params.items():
            findings.extend(_params_findings(label, pfile, keys, locked, tree))
    locked_outs = {o.def_path: o for o in locked.outs} if locked else {}
    for out in stage.outs:
        recorded = locked_outs.get(out.def_path)
        diff = _compare(recorded, out.path, tree)
        if diff is None:
            if out.cache and recorded is not None and _not_in_cache(recorded, tree):
                findings.append(
                    Finding(
                        display_path(out.path),
                        "stale-lock",
                        f"out of {label}: not in the DVC cache (dvc commit)",
                    )
                )
            continue
        findings.append(
            _changed_output(
                out.path,
                diff,
                where=label,
                missing=f"out of {label} is missing",
                stale_rule="stale-lock",
                stale=lambda detail: f"out of {label}: {detail}",
            )
        )
    return findings


def _changed_output(
    path: str,
    diff: tuple[str, str],
    *,
    where: str,
    missing: str,
    stale_rule: str,
    stale: Callable[[str], str],
) -> Finding:
    """The finding for an output that differs from what a .dvc file or dvc.lock records:
    unsafe (malformed-dvc), missing (missing-output) or changed (`stale_rule`, with the message
    `stale` makes of the detail)."""
    kind, detail = diff
    if kind == "unsafe":
        return Finding(display_path(path), "malformed-dvc", f"{detail} ({where})")
    if kind == "missing":
        return Finding(display_path(path), "missing-output", missing)
    return Finding(display_path(path), stale_rule, stale(detail))


def _data_matcher(policy: Policy) -> Callable[[str], bool]:
    """policy.is_data, with every data pattern folded into one regular expression first (the
    check asks it for every file in the working tree)."""
    any_data = compile_any(policy.data_patterns, not policy.data_patterns_case_sensitive)
    if any_data is None:
        return lambda path: False
    match = any_data.match
    return lambda path: match(path) is not None and policy.is_data(path)


@dataclass(frozen=True)
class OutputIndex:
    """Every DVC output path, whether DVC caches it, and which file declares it."""

    outputs: Mapping[str, tuple[bool, str]]  # path -> (cache, declaring file)

    @classmethod
    def build(cls, files: DvcFiles) -> OutputIndex:
        outs: dict[str, tuple[bool, str]] = {}
        for name, df in files.dvc_files.items():
            for o in df.outs:
                outs[o.path] = (o.cache, name)
        for p in files.pipelines:
            for stage in p.stages.values():
                for so in stage.outs:
                    outs[so.path] = (so.cache, p.yaml_file)
        return cls(outs)

    def covering(self, path: str) -> tuple[str, bool, str] | None:
        """The output a path is (or is under): (output, cache, declaring file)."""
        probe = path
        while True:
            hit = self.outputs.get(probe)
            if hit is not None:
                return probe, hit[0], hit[1]
            if "/" not in probe:
                return None
            probe = probe.rsplit("/", 1)[0]


def dvc_findings(
    files: DvcFiles,
    git: GitFacts,
    tree: WorkTree,
    policy: Policy,
    scope: Scope = Scope(),
    deferred: Iterable[Finding] = (),
) -> list[Finding]:
    """All findings of the check (see the module docstring); `deferred` are DVC's own verdicts
    for what only DVC can decide."""
    findings: list[Finding] = list(deferred)
    for name, reason in files.malformed.items():
        if scope.covers(name):
            findings.append(Finding(display_path(name), "malformed-dvc", reason))
    findings.extend(duplicate_output_findings(files, scope))
    for name, df in _selected_dvc_files(files, scope):
        findings.extend(_dvc_file_findings(name, df, tree))
    for p, stage in _selected_stages(files, scope):
        findings.extend(_stage_findings(p, stage, tree))

    index = OutputIndex.build(files)
    is_data = _data_matcher(policy)
    for path in git.tracked:
        if not scope.covers(path):
            continue
        why = data_in_git(path, is_data, output=index.covering(path))
        if why is not None:
            findings.append(Finding(display_path(path), "data-in-git", why))
    # Untracked files (git-ignored or not) are not reported: the commit does not contain them,
    # so they cannot make it irreproducible. Once staged, they are data in git (above).
    for out in git.not_ignored_outputs:
        if scope.covers(out):
            _, _, declared = index.covering(out) or (out, True, "?")
            findings.append(
                Finding(
                    display_path(out),
                    "not-ignored",
                    f"DVC output ({declared}) not ignored by git: `git add -A` would commit it",
                )
            )
    return findings


def duplicate_output_findings(files: DvcFiles, scope: Scope = Scope()) -> list[Finding]:
    """An output recorded by two DVC files (two .dvc files, or a .dvc file and a dvc.yaml
    stage): DVC refuses the whole repository (OutputDuplicationError). Reported at the file that
    records it last in path order, naming the others. (Within one file: the parser's "listed
    twice"; two stages of one dvc.yaml: also here.)"""
    owners: dict[str, list[str]] = {}
    for name, df in files.dvc_files.items():
        for out in dict.fromkeys(o.path for o in df.outs):
            owners.setdefault(out, []).append(name)
    for p in files.pipelines:
        for stage in p.stages.values():
            for out in dict.fromkeys(o.path for o in stage.outs):
                owners.setdefault(out, []).append(f"{p.yaml_file}:{stage.name}")
    findings = []
    for out, names in owners.items():
        if len(names) < 2 or not scope.covers(out, *(n.split(":", 1)[0] for n in names)):
            continue
        ordered = sorted(names)
        findings.append(
            Finding(
                display_path(ordered[-1].split(":", 1)[0]),
                "malformed-dvc",
                f"output {out!r} is also recorded in {', '.join(ordered[:-1])}",
            )
        )
    return findings


def cached_outputs(files: DvcFiles) -> list[str]:
    """Outputs DVC caches (git must ignore them)."""
    return sorted(p for p, (cache, _) in OutputIndex.build(files).outputs.items() if cache)


def fix_hint(
    findings: Sequence[Finding], *, root: Path | None = None, cwd: Path | None = None
) -> str:
    """How to fix: for data in git and changed data, the exact commands,
    which run as printed in the shell that shows them (`root`/`cwd`: where that is; paths are
    root-relative, after one `cd` to the root when needed); for the rest, what to run."""
    import posixpath
    import shlex

    from repro_hooks.dvc.hints import Where, dvc_add_commands
    from repro_hooks.rules import ALL

    def quoted(paths: Iterable[str]) -> str:
        return " ".join(shlex.quote(p) for p in paths)

    def ignore_pattern(name: str) -> str:  # glob characters and trailing spaces, literally
        escaped = "".join("\\" + c if c in "\\[]*?" else c for c in name)
        stripped = escaped.rstrip(" ")
        return stripped + "\\ " * (len(escaped) - len(stripped))

    where = Where(root, cwd)
    blocks: list[tuple[str, list[str]]] = []
    outputs_in_git = [
        f.path for f in findings if f.rule == "data-in-git" and "also a DVC output" in f.message
    ]
    plain_in_git = [
        f.path for f in findings if f.rule == "data-in-git" and f.path not in outputs_in_git
    ]
    if plain_in_git:
        blocks.append(
            (
                "data in git, move it to DVC (a small file that belongs in git: list it under "
                "data-exclude in [tool.repro-hooks]):",
                dvc_add_commands(plain_in_git, where),
            )
        )
    if outputs_in_git:
        blocks.append(
            (
                "DVC outputs in git, take them out of git:",
                [f"git --literal-pathspecs rm --cached -q -- {quoted(outputs_in_git)}"],
            )
        )
    changed = [f.path for f in findings if f.rule == "stale-dvc"]
    if changed:
        blocks.append(
            (
                "changed data, record what is on disk (or restore the recorded version with "
                "dvc checkout --force, which discards the change):",
                [f"dvc commit -f -- {quoted(changed)}", "git add -u -- '*.dvc'"],
            )
        )
    if any(f.rule == "stale-lock" for f in findings):
        blocks.append(
            (
                "stale pipeline, run what changed (or dvc commit -f if the outputs are right):",
                ["dvc repro --all-pipelines", "git add -- ':(glob)**/dvc.lock'"],
            )
        )
    not_ignored = [f.path for f in findings if f.rule == "not-ignored"]
    if not_ignored:
        ignores = {p: posixpath.join(posixpath.dirname(p), ".gitignore") for p in not_ignored}
        blocks.append(
            (
                "outputs git does not ignore, ignore them beside the output (as dvc add does):",
                [
                    *(
                        f"printf '\\n%s\\n' {shlex.quote('/' + ignore_pattern(posixpath.basename(p)))}"
                        f" >> {shlex.quote(ignores[p])}"
                        for p in not_ignored
                    ),
                    f"git add -- {quoted(dict.fromkeys(ignores.values()))}",
                ],
            )
        )
    # the rules above get exact commands; the rest, the registry's line
    rules = {f.rule for f in findings} - {"data-in-git", "stale-dvc", "stale-lock", "not-ignored"}
    others = [f"{r.title + ':':<18}{r.fix}" for r in ALL if r.id in rules and r.title]
    if not blocks and not others:
        return ""
    lines = ["How to fix:"]
    if blocks:
        lines += ["  " + ln for ln in where.prefix()]
    for title, commands in blocks:
        lines += ["  " + title, *("    " + c for c in commands)]
    lines += ["  " + ln for ln in others]
    return "\n".join(lines)
