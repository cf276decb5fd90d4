"""The I/O half of `check-dvc`: ask git (batched), read and parse the DVC files, measure the
working tree (hashes through the hash cache, params values), and hand plain data to the core
in `repro_hooks.dvc.check`. Never imports DVC: templated `dvc.yaml` files are resolved here
(repro_hooks.dvc.templating), each DVC project with its own vars files and config; `dvc status`
runs only for what needs a DVC remote or another repository (non-frozen imports).
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
    undecided_imports,
)
from repro_hooks.dvc.files import (
    MAX_DVC_FILE_SIZE,
    DvcFile,
    DvcFileError,
    LockStage,
    Stage,
    parse_dvc_file,
    parse_dvc_lock,
    parse_dvc_yaml,
    repo_path,
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
from repro_hooks.dvc.names import is_dvc_file
from repro_hooks.dvc.params import (
    config_sections,
    parse_params,
    project_of,
    vars_file,
)
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.report import Finding, display_path

# Untracked directories never searched for data files: DVC's own directory (its cache holds every
# version of every output), environments and tool caches, MLflow's run store (its artifacts are
# tracked by MLflow). Passed to `git ls-files -x`, so git does not even descend into them.
SKIPPED_DIRS = (
    "/.dvc/",
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    "node_modules/",
    "__pycache__/",
    "site-packages/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "mlruns/",
    "mlartifacts/",
)
CACHE_FILE = "repro-hooks/dvc-hashes.bin"
NESTED_DVCIGNORE = "a .dvcignore inside a directory DVC tracks"


def _text(raw: bytes) -> str:
    return os.fsdecode(raw)


def git_listing(git: Git) -> tuple[list[str], list[str]]:
    """(tracked, untracked and not ignored) in two concurrent git processes. Git-ignored files
    are never listed: a commit cannot contain them, and DVC refuses git-ignored DVC files
    (FileIsGitIgnored), so they cannot matter (and 100,000 of them must cost nothing)."""
    excludes = [arg for d in SKIPPED_DIRS for arg in ("-x", d)]
    calls: list[tuple[str, ...]] = [("--cached",), ("--others", "--exclude-standard", *excludes)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        tracked, visible = pool.map(lambda a: git.ls_files(*a), calls)
    return [_text(p) for p in tracked], [_text(p) for p in visible]


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
    A templated dvc.yaml reads its vars files from the working tree (`vars_loader`) and the
    `[parsing]` config of its own DVC project. A malformed or unsafe one becomes a reason, never
    an exception."""
    malformed: dict[str, str] = {}
    dvc_files: dict[str, DvcFile] = {}
    yamls: dict[str, dict[str, Stage]] = {}
    lock_bytes: dict[str, bytes] = {}
    load = vars_loader(root, path_is_safe)
    projects = DvcProjects(root)
    for path in sorted(set(candidates)):
        if ignore and ignore.is_ignored(path):
            continue
        try:
            content = _read(root, path, path_is_safe)
            if content is None:
                continue
            name = posixpath.basename(path)
            if name == "dvc.yaml":
                yamls[path] = parse_dvc_yaml(content, path, load, projects.parsing_for(path))
            elif name == "dvc.lock":
                lock_bytes[path] = content
            else:
                dvc_files[path] = parse_dvc_file(content, path)
        except DvcFileError as exc:
            malformed[path] = exc.reason if exc.file == path else str(exc)
    pipelines = []
    for yaml_file, stages in sorted(yamls.items()):
        lock_file = posixpath.join(posixpath.dirname(yaml_file), "dvc.lock")
        locked: dict[str, LockStage] = {}
        if lock_file in lock_bytes:
            wdirs = {name: s.wdir for name, s in stages.items()}
            try:
                locked = parse_dvc_lock(lock_bytes[lock_file], lock_file, wdirs)
            except DvcFileError as exc:
                malformed[lock_file] = exc.reason
        pipelines.append(Pipeline(yaml_file, lock_file, stages, locked))
    return DvcFiles(dvc_files, pipelines, malformed)


def vars_loader(root: Path, path_is_safe: Any) -> Any:
    """`load` for the templating resolver over the working tree: a vars file (repository-relative)
    parsed as DVC reads it, None when missing; DvcFileError for one outside the repository (by
    its name or a symlink), not a regular file, too large or unreadable. Memoised."""
    cache: dict[str, Any] = {}

    def load(rel: str) -> Any:
        if rel not in cache:
            cache[rel] = _read_vars(root, rel, path_is_safe)
        return cache[rel]

    return load


def _read_vars(root: Path, rel: str, path_is_safe: Any) -> Any:
    rel = repo_path("", rel, rel, "vars file")
    if not path_is_safe(rel):
        raise DvcFileError(rel, "a symlink leading outside the repository: not read")
    try:
        st = os.stat(root / rel)
        if stat.S_ISREG(st.st_mode) and st.st_size > MAX_DVC_FILE_SIZE:
            raise DvcFileError(rel, f"too large for a params file ({st.st_size} bytes)")
        data = read_regular(root / rel)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except NotARegularFile:
        raise DvcFileError(
            rel, "not a regular file (a directory, FIFO, socket or device): not read"
        ) from None
    except OSError as exc:
        raise DvcFileError(rel, exc.strerror or str(exc)) from None
    return vars_file(data, rel)


@dataclass
class DvcProjects:
    """The DVC projects of a working tree: the nearest directory holding `.dvc/` owns a file
    (`dvc init --subdir` puts projects below the git root), and each has its own config."""

    root: Path
    _has_dvc_dir: dict[str, bool] = field(default_factory=dict)
    _configs: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def has_dvc_dir(self, rel_dir: str) -> bool:
        hit = self._has_dvc_dir.get(rel_dir)
        if hit is None:
            hit = self._has_dvc_dir[rel_dir] = os.path.isdir(self.root / rel_dir / ".dvc")
        return hit

    def config(self, project: str) -> dict[str, dict[str, str]]:
        if project not in self._configs:
            self._configs[project] = read_dvc_config(self.root, project)
        return self._configs[project]

    def parsing_for(self, file: str) -> Any:
        """The `[parsing]` section of the config of `file`'s project, when asked for."""
        return lambda: self.config(project_of(file, self.has_dvc_dir)).get("parsing")


# ---- measuring the working tree -------------------------------------------------------------


def _load_params(path: Path) -> Any:
    """A params file as DVC reads it (repro_hooks.dvc.params.parse_params), sized before it
    is read."""
    st = os.stat(path)
    if st.st_size > MAX_DVC_FILE_SIZE:
        raise ValueError(f"too large for a params file ({st.st_size} bytes)")
    return parse_params(read_regular(path), path.name)


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
            # DVC hashes a dependency named in .dvcignore all the same (only the contents of a
            # directory are filtered)
            present[path] = True
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
                    nested = [
                        w.relpath for w in walked if posixpath.basename(w.relpath) == ".dvcignore"
                    ]
                    if nested:
                        unsafe[path] = (
                            f"{path}/{nested[0]}: {NESTED_DVCIGNORE}: "
                            'DVC refuses the directory (".dvcignore file should not be in '
                            'collected dir path")'
                        )
                        continue
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
            except DvcFileError as exc:
                errors[pfile] = exc.reason
            except Exception as exc:  # a user's broken params file: one line, never a traceback
                first = str(exc).splitlines()[0] if str(exc) else ""
                errors[pfile] = f"{type(exc).__name__}: {first[:200]}"
        return WorkTree(result, present, unsafe, loaded, errors, dir_entries)


# ---- DVC's cache ------------------------------------------------------------------------------


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, is inside the repository root."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def read_dvc_config(root: Path, project: str = "") -> dict[str, dict[str, str]]:
    """The config of the DVC project at `project` (repository-relative): `.dvc/config`, then
    `.dvc/config.local` (which wins). The global and system DVC config are not read, nor a
    config file that is a symlink leading outside the repository."""
    texts = []
    for name in ("config", "config.local"):
        config = root / project / ".dvc" / name
        try:
            if not inside(root, config):
                continue
            texts.append(read_regular(config).decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return config_sections(texts)


def cache_dir(root: Path) -> Path:
    """Where DVC keeps objects: `cache.dir` from .dvc/config.local or .dvc/config (relative to
    .dvc/), else .dvc/cache (only stats happen in the cache dir)."""
    found = read_dvc_config(root).get("cache", {}).get("dir")
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


def dvc_roots(root: Path, files: DvcFiles) -> list[Path]:
    """The DVC projects the DVC files belong to: for each, the nearest directory at or above
    it holding `.dvc/` (`dvc init --subdir` puts projects below the git root)."""
    names = [*files.dvc_files, *(p.yaml_file for p in files.pipelines)]
    projects = DvcProjects(root)
    roots = {project_of(name, projects.has_dvc_dir) for name in names}
    return [root / r for r in sorted(roots or {""})]


def objects_in_caches(
    root: Path, files: DvcFiles, objects: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], bool]:
    """objects_in_cache over the cache of every DVC project in the repository (an object is
    there when any project's cache holds it)."""
    wanted = list(objects)
    found: dict[tuple[str, str], bool] = dict.fromkeys(wanted, False)
    for project in dvc_roots(root, files):
        missing = [o for o in wanted if not found[o]]
        if not missing:
            break
        for key, hit in objects_in_cache(cache_dir(project), missing).items():
            found[key] = found[key] or hit
    return found


def _nested_dvcignore_without_listing(root: Path, files: DvcFiles, tree: WorkTree) -> WorkTree:
    """DVC refuses a directory output holding a .dvcignore only when it can read the recorded
    listing (the `.dir` object) from its cache; without it, it reports the directory changed.
    Say the same."""
    nested = {p for p, why in tree.unsafe.items() if NESTED_DVCIGNORE in why}
    if not nested:
        return tree
    outs = [o for df in files.dvc_files.values() for o in df.outs]
    outs += [o for p in files.pipelines for ls in p.locked.values() for o in ls.outs]
    recorded = [o for o in outs if o.path in nested and o.is_dir and o.hash_value]
    found = objects_in_caches(root, files, [(o.hash_value or "", o.algorithm) for o in recorded])
    unsafe, hashes = dict(tree.unsafe), dict(tree.hashes)
    for o in recorded:
        if not found.get((o.hash_value or "", o.algorithm)):
            unsafe.pop(o.path, None)
            hashes[(o.path, o.algorithm)] = (
                "!its recorded listing is not in the DVC cache and it holds a .dvcignore"
            )
    return replace(tree, unsafe=unsafe, hashes=hashes)


# ---- what only DVC can decide ---------------------------------------------------------------


def dvc_status_findings(root: Path, targets: Sequence[tuple[str, str, str]]) -> list[Finding]:
    """Run `dvc status --json` on (target, display path, rule) triples: DVC's own verdict."""
    if not targets:
        return []
    from repro_hooks.dvc.runner import last_error_line, run_dvc

    names = [t for t, _, _ in targets]
    proc = run_dvc(["status", "--json", *names], root, what="checking imports from elsewhere")
    if proc.returncode != 0:
        # DVC refuses the project (a file its schema rejects, a broken params file...): that is
        # a finding about the project, as DVC's exit 255 is, not a failure of this check
        where = targets[0][1]
        return [
            Finding(
                display_path(where),
                "malformed-dvc",
                f"dvc status failed: {last_error_line(proc)[:300]}",
            )
        ]
    try:
        status = json.loads(proc.stdout or "{}")
    except ValueError:
        raise ReproHooksError("dvc status --json: unreadable output") from None
    findings = []
    for key, changes in sorted(status.items()):
        where, rule = next(
            ((shown, rule) for target, shown, rule in targets if key == target), (key, "stale-dvc")
        )
        for change in changes if isinstance(changes, list) else [changes]:
            if isinstance(change, dict):  # {"changed outs": {path: status}, ...}: name each path
                for kind, entries in sorted(change.items()):
                    for path, state in sorted(dict(entries).items()):
                        rel = posixpath.normpath(str(path).replace(os.sep, "/"))
                        findings.append(
                            Finding(
                                display_path(rel),
                                rule,
                                f"dvc status: {key}: {kind}: {state}",
                            )
                        )
            else:
                findings.append(
                    Finding(display_path(where), rule, f"dvc status: {key}: {str(change)[:200]}")
                )
    return findings


def deferred_targets(files: DvcFiles, scope: Scope) -> list[tuple[str, str, str]]:
    """What only DVC can decide: non-frozen imports (their source is another repository or a
    URL)."""
    return [(name, name, "stale-dvc") for name in undecided_imports(files, scope)]


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
    tracked, visible = git_listing(git)
    ignore_files = {}
    for path in (*tracked, *visible):
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
        from repro_hooks.snippets import pip_install

        raise ReproHooksError(
            f".dvcignore: reading it needs the pathspec package ({pip_install('dvc')})"
        ) from None
    cache = HashCache(git.git_dir / CACHE_FILE if use_cache else None)
    measurer = Measurer(root, ignore, cache)
    candidates = [p for p in (*tracked, *visible) if is_dvc_file(p)]
    files = load_dvc_files(root, candidates, ignore, measurer.path_is_safe)
    tree = measurer.measure(
        hash_targets(files, scope), exists_targets(files, scope), params_targets(files, scope)
    )
    tree = _nested_dvcignore_without_listing(root, files, tree)
    tree = replace(tree, in_cache=objects_in_caches(root, files, cache_targets(files, tree, scope)))
    cache.save()
    # git refuses a whole check-ignore call naming a path beyond a symlink ("fatal: pathspec
    # ... is beyond a symbolic link"); such outputs are reported as unsafe, not asked about
    outs = [o for o in cached_outputs(files) if scope.covers(o) and not measurer.beyond_symlink(o)]
    ignored_outs = git.ignored_paths([os.fsencode(o) for o in outs])
    not_ignored = [o for o in outs if os.fsencode(o) not in ignored_outs]
    facts = GitFacts(tracked=tracked, not_ignored_outputs=not_ignored)
    deferred = dvc_status_findings(root, deferred_targets(files, scope))
    return Collected(files, facts, tree, deferred)
