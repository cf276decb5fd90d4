"""The I/O half of `check-dvc`: ask git (batched), read and parse the DVC files, measure the
working tree (hashes through the hash cache, params values), and hand plain data to the core
in `repro_hooks.dvc.check`. Never imports DVC; runs `dvc status` only for what the fast path
cannot decide (templated stages, non-frozen imports from elsewhere).
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from repro_hooks.dvc.check import (
    DvcFiles,
    GitFacts,
    Pipeline,
    Scope,
    WorkTree,
    cache_targets,
    cached_outputs,
    exists_targets,
    hash_targets,
    params_targets,
    templated_stages,
    undecided_imports,
)
from repro_hooks.dvc.files import (
    DvcFile,
    DvcFileError,
    LockStage,
    Stage,
    parse_dvc_file,
    parse_dvc_lock,
    parse_dvc_yaml,
)
from repro_hooks.dvc.hashing import (
    DvcIgnore,
    FileToHash,
    HashCache,
    NotARegularFile,
    OutsideRepository,
    dir_hash,
    hash_files,
    read_regular,
    walk_output,
)
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.report import Finding, display_path

# Untracked directories never searched for data files: DVC's own directory (its cache holds every
# version of every output), environments and tool caches, MLflow's run store (its artifacts are
# tracked by MLflow). Passed to `git ls-files -x`, so git does not even descend into them.
SKIPPED_DIRS = (
    "/.dvc/", ".venv/", "venv/", ".tox/", ".nox/", "node_modules/", "__pycache__/",
    "site-packages/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".ipynb_checkpoints/",
    "mlruns/", "mlartifacts/",
)  # fmt: skip
CACHE_FILE = "repro-hooks/dvc-hashes.bin"


def _text(raw: bytes) -> str:
    return os.fsdecode(raw)


def git_listing(git: Git) -> tuple[list[str], list[str], list[str]]:
    """(tracked, untracked and not ignored, all untracked) in three concurrent git processes."""
    excludes = [arg for d in SKIPPED_DIRS for arg in ("-x", d)]
    calls: list[tuple[str, ...]] = [
        ("--cached",),
        ("--others", "--exclude-standard", *excludes),
        ("--others", *excludes),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        tracked, visible, everything = pool.map(lambda a: git.ls_files(*a), calls)
    return [_text(p) for p in tracked], [_text(p) for p in visible], [_text(p) for p in everything]


def _is_dvc_file(path: str) -> bool:
    name = posixpath.basename(path)
    return (name.endswith(".dvc") and name != ".dvc") or name in ("dvc.yaml", "dvc.lock")


def _read(root: Path, path: str, path_is_safe: Any) -> bytes | None:
    full = root / path
    if not path_is_safe(path):
        raise DvcFileError(path, "a symlink leading outside the repository")
    try:
        return read_regular(full)
    except NotARegularFile:
        if full.is_dir():  # a submodule or directory that happens to be named *.dvc
            return None
        raise DvcFileError(
            path, "not a regular file (a FIFO, socket or device): not read"
        ) from None
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    except OSError as exc:
        raise DvcFileError(path, exc.strerror or str(exc)) from None


def load_dvc_files(
    root: Path, candidates: Iterable[str], ignore: DvcIgnore, path_is_safe: Any
) -> DvcFiles:
    """Parse every .dvc, dvc.yaml and dvc.lock (as DVC collects them: .dvcignore honoured).
    A malformed or unsafe one becomes a reason, never an exception."""
    malformed: dict[str, str] = {}
    dvc_files: dict[str, DvcFile] = {}
    yamls: dict[str, dict[str, Stage]] = {}
    lock_bytes: dict[str, bytes] = {}
    for path in sorted(set(candidates)):
        if ignore and ignore.is_ignored(path):
            continue
        try:
            content = _read(root, path, path_is_safe)
            if content is None:
                continue
            name = posixpath.basename(path)
            if name == "dvc.yaml":
                yamls[path] = parse_dvc_yaml(content, path)
            elif name == "dvc.lock":
                lock_bytes[path] = content
            else:
                dvc_files[path] = parse_dvc_file(content, path)
        except DvcFileError as exc:
            malformed[path] = exc.reason
    pipelines = []
    for yaml_file, stages in sorted(yamls.items()):
        lock_file = posixpath.join(posixpath.dirname(yaml_file), "dvc.lock")
        locked: dict[str, LockStage] = {}
        if lock_file in lock_bytes:
            wdirs = {name: s.wdir for name, s in stages.items() if not s.templated}
            try:
                locked = parse_dvc_lock(lock_bytes[lock_file], lock_file, wdirs)
            except DvcFileError as exc:
                malformed[lock_file] = exc.reason
        pipelines.append(Pipeline(yaml_file, lock_file, stages, locked))
    return DvcFiles(dvc_files, pipelines, malformed)


# ---- measuring the working tree -------------------------------------------------------------


def _load_params(path: Path) -> Any:
    suffix = path.suffix.lower()
    data = read_regular(path)
    if suffix in (".yaml", ".yml"):
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(data, Loader=loader) or {}
    if suffix == ".json":
        return json.loads(data) if data.strip() else {}
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(data.decode("utf-8"))
    if suffix == ".py":
        return _python_params(data.decode("utf-8"))
    raise ValueError(f"unsupported params file type {suffix or '(none)'!r}")


def _python_params(source: str) -> dict[str, Any]:
    """DVC's Python params: module-level `NAME = <literal>` and class bodies' literals."""
    import ast

    def assigns(body: list[ast.stmt]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for node in body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            elif isinstance(node, ast.ClassDef):
                out[node.name] = assigns(node.body)
                continue
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    try:
                        out[target.id] = ast.literal_eval(value)
                    except ValueError:
                        continue
        return out

    return assigns(ast.parse(source).body)


@dataclass
class Measurer:
    root: Path
    ignore: DvcIgnore
    cache: HashCache
    _safe_dirs: dict[str, bool] = field(default_factory=dict)
    _links: dict[str, bool] = field(default_factory=dict)

    def is_inside(self, real: str) -> bool:
        root = self._real_root
        return real == root or real.startswith(root + os.sep)

    @cached_property
    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def _dir_is_safe(self, rel_dir: str) -> bool:
        hit = self._safe_dirs.get(rel_dir)
        if hit is None:
            hit = self.is_inside(os.path.realpath(os.path.join(self.root, rel_dir)))
            self._safe_dirs[rel_dir] = hit
        return hit

    def beyond_symlink(self, rel: str) -> bool:
        """Whether a parent directory of a repository-relative path is a symlink."""
        parent = posixpath.dirname(rel)
        while parent:
            hit = self._links.get(parent)
            if hit is None:
                hit = os.path.islink(os.path.join(self.root, parent))
                self._links[parent] = hit
            if hit:
                return True
            parent = posixpath.dirname(parent)
        return False

    def path_is_safe(self, rel: str) -> bool:
        """Whether reading a repository-relative path stays inside the repository (no symlink,
        in it or in a parent directory, leads out). One realpath per directory, memoised."""
        if not self._dir_is_safe(posixpath.dirname(rel)):
            return False
        full = os.path.join(self.root, rel)
        try:
            st = os.lstat(full)
        except OSError:
            return True  # nothing there: nothing to read
        if stat.S_ISLNK(st.st_mode):
            return self.is_inside(os.path.realpath(full))
        return True

    def measure(self, hashes: set[tuple[str, str]], exists: set[str], params: set[str]) -> WorkTree:
        present: dict[str, bool] = {}
        unsafe: dict[str, str] = {}
        stats: dict[str, os.stat_result] = {}
        for path in sorted(exists | {p for p, _ in hashes}):
            full = os.path.join(self.root, path)
            if not self.path_is_safe(path):
                unsafe[path] = "a symlink leading outside the repository: not read"
                present[path] = True
                continue
            try:
                stats[path] = os.stat(full)
            except OSError:
                present[path] = False
                continue
            is_dir = stat.S_ISDIR(stats[path].st_mode)
            if not is_dir and not stat.S_ISREG(stats[path].st_mode):
                unsafe[path] = "not a regular file (a FIFO, socket or device): not read"
                present[path] = True
                continue
            present[path] = not (self.ignore and self.ignore.is_ignored(path, is_dir))
        to_hash: list[FileToHash] = []
        dirs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        singles: dict[tuple[str, str], str] = {}
        for path, algorithm in sorted(hashes):
            if path in unsafe or not present.get(path):
                continue
            full = os.path.join(self.root, path)
            try:
                if stat.S_ISDIR(stats[path].st_mode):
                    walked = walk_output(self.root, path, self.ignore, self.is_inside)
                    dirs[(path, algorithm)] = [(w.relpath, w.path) for w in walked]
                    to_hash.extend(FileToHash(w.path, w.st, algorithm) for w in walked)
                else:
                    to_hash.append(FileToHash(full, stats[path], algorithm))
                    singles[(path, algorithm)] = full
            except OutsideRepository as exc:
                inner = os.path.relpath(str(exc), self.root).replace(os.sep, "/")
                unsafe[path] = f"{inner}: a symlink leading outside the repository: not read"
            except NotARegularFile as exc:
                inner = os.path.relpath(str(exc.filename), self.root).replace(os.sep, "/")
                unsafe[path] = f"{inner}: not a regular file (a FIFO, socket or device): not read"
            except OSError:
                present[path] = False
        computed = hash_files(to_hash, self.cache)
        result: dict[tuple[str, str], str | None] = {}
        for key, full in singles.items():
            result[key] = computed.get((full, key[1]))
        dir_entries: dict[tuple[str, str], list[str]] = {}
        for key, entries in dirs.items():
            values = [(rel, computed.get((full, key[1]))) for rel, full in entries]
            hashed = [(rel, v) for rel, v in values if v is not None]
            if len(hashed) < len(values):
                result[key] = None
            else:
                result[key] = dir_hash(hashed)
                dir_entries[key] = [v for _, v in hashed]
        loaded: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for pfile in sorted(params):
            ppath = self.root / pfile
            if not self.path_is_safe(pfile):
                errors[pfile] = "a symlink leading outside the repository: not read"
                continue
            try:
                loaded[pfile] = _load_params(ppath)
            except FileNotFoundError:
                loaded[pfile] = None
            except NotARegularFile:
                errors[pfile] = "not a regular file (a FIFO, socket or device): not read"
            except Exception as exc:  # a user's broken params file: one line, never a traceback
                errors[pfile] = (
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                )
        return WorkTree(result, present, unsafe, loaded, errors, dir_entries)


# ---- DVC's cache ------------------------------------------------------------------------------


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, is inside the repository root."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def cache_dir(root: Path) -> Path:
    """Where DVC keeps objects: `cache.dir` from .dvc/config.local or .dvc/config (relative to
    .dvc/), else .dvc/cache. The global and system DVC config are not read, nor a config file
    that is a symlink leading outside the repository (only stats happen in the cache dir)."""
    found: str | None = None
    for name in ("config", "config.local"):  # config.local wins
        config = root / ".dvc" / name
        try:
            if not inside(root, config):
                continue
            text = read_regular(config).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        section = None
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip().strip("'\"")
            elif section == "cache" and "=" in line and line.split("=", 1)[0].strip() == "dir":
                found = line.split("=", 1)[1].strip().strip("'\"")
    if found:
        return root / ".dvc" / os.path.expanduser(found)
    return root / ".dvc" / "cache"


def objects_in_cache(
    cache: Path, objects: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], bool]:
    """Whether each (hash, algorithm) object exists in DVC's cache (a stat each; DVC 3 objects
    live under files/md5/, legacy DVC 2 ones at the top)."""
    out = {}
    for value, algorithm in objects:
        base = cache / "files" / "md5" if algorithm == "md5" else cache
        out[(value, algorithm)] = os.path.isfile(base / value[:2] / value[2:])
    return out


# ---- what only DVC can decide ---------------------------------------------------------------


def dvc_status_findings(root: Path, targets: Sequence[tuple[str, str, str]]) -> list[Finding]:
    """Run `dvc status --json` on (target, display path, rule) triples: DVC's own verdict."""
    if not targets:
        return []
    from repro_hooks.dvc.runner import last_error_line, run_dvc

    names = [t for t, _, _ in targets]
    proc = run_dvc(["status", "--json", *names], root, what="checking templated DVC stages")
    if proc.returncode != 0:
        raise ReproHooksError(f"dvc status: {last_error_line(proc)}")
    try:
        status = json.loads(proc.stdout or "{}")
    except ValueError:
        raise ReproHooksError("dvc status --json: unreadable output") from None
    findings = []
    for key, changes in sorted(status.items()):
        base = key.split("@", 1)[0]
        where, rule = next(
            (
                (shown, rule)
                for target, shown, rule in targets
                # DVC addresses the root dvc.yaml's stages by bare name, others as file:name
                if base in (target, target.removeprefix("dvc.yaml:"))
            ),
            (key, "stale-lock"),
        )
        summary = json.dumps(changes, sort_keys=True)
        if len(summary) > 200:
            summary = summary[:197] + "..."
        findings.append(Finding(display_path(where), rule, f"dvc status: {key}: {summary}"))
    return findings


def deferred_targets(files: DvcFiles, scope: Scope) -> list[tuple[str, str, str]]:
    out = []
    for p, stage in templated_stages(files, scope):
        out.append((f"{p.yaml_file}:{stage.name}", p.yaml_file, "stale-lock"))
    for name in undecided_imports(files, scope):
        out.append((name, name, "stale-dvc"))
    return out


# ---- everything together --------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    files: DvcFiles
    git: GitFacts
    tree: WorkTree
    deferred: list[Finding]


def collect(git: Git, scope: Scope, *, use_cache: bool = True) -> Collected:
    assert git.root is not None
    root = git.root
    tracked, visible, everything = git_listing(git)
    ignore_files = {}
    for path in (*tracked, *everything):
        if posixpath.basename(path) == ".dvcignore":
            if not inside(root, root / path):
                continue  # a symlink leading outside the repository: never read
            try:
                ignore_files[path] = read_regular(root / path)
            except OSError:
                continue
    try:
        ignore = DvcIgnore(ignore_files)
    except ImportError:
        raise ReproHooksError(
            ".dvcignore: reading it needs the pathspec package (pip install 'repro-hooks[dvc]')"
        ) from None
    cache = HashCache(git.git_dir / CACHE_FILE if use_cache else None)
    measurer = Measurer(root, ignore, cache)
    candidates = [p for p in (*tracked, *everything) if _is_dvc_file(p)]
    files = load_dvc_files(root, candidates, ignore, measurer.path_is_safe)
    tree = measurer.measure(
        hash_targets(files, scope), exists_targets(files, scope), params_targets(files, scope)
    )
    tree = replace(
        tree, in_cache=objects_in_cache(cache_dir(root), cache_targets(files, tree, scope))
    )
    cache.save()
    visible_set = set(visible)
    ignored = [p for p in everything if p not in visible_set]
    # git refuses a whole check-ignore call naming a path beyond a symlink ("fatal: pathspec
    # ... is beyond a symbolic link"); such outputs are reported as unsafe, not asked about
    outs = [
        o for o in cached_outputs(files)
        if scope.covers(o) and not measurer.beyond_symlink(o)
    ]  # fmt: skip
    ignored_outs = git.ignored_paths([os.fsencode(o) for o in outs])
    not_ignored = [o for o in outs if os.fsencode(o) not in ignored_outs]
    facts = GitFacts(
        tracked=tracked,
        untracked=[p for p in visible if not _is_dvc_file(p)],
        ignored=ignored,
        not_ignored_outputs=not_ignored,
    )
    deferred = dvc_status_findings(root, deferred_targets(files, scope))
    return Collected(files, facts, tree, deferred)
