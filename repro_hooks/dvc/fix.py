"""`check-large-files --fix`: move offending files out of git and into DVC with `dvc add`.

All or nothing, and the user's data is never lost:

1. Check first, change nothing: DVC installed; each file inside a DVC project (a `.dvc/`
   directory at or above it); a regular file in the working tree, not reached through a symlink
   leading out of the repository, and staged exactly as it is on disk (a partially staged file would lose the unstaged part's meaning).
   Notebooks are never moved: their outputs are what is large, the hint says to strip them.
2. Snapshot the index (a byte copy of the index file, wherever `GIT_INDEX_FILE` points) and
   every file DVC may write: `<path>.dvc`, the `.gitignore` beside it, and the `.dvc` and
   `.gitignore` files of every enclosing directory.
3. `git rm --cached` (the file stays on disk), `dvc add`, `dvc unprotect` when DVC made the file
   a link into its cache (cache.type symlink or hardlink: an edit in place would write into the
   cache object), then stage the `.dvc` files and `.gitignore` files.
4. On any failure, put back the index file and every snapshotted file byte for byte, and make
   sure the data file holds exactly its staged content (rewritten from the staged blob if DVC
   left it moved or linked). Objects DVC copied into its cache stay there (content-addressed,
   harmless).

Every git call that names user paths takes them literally (`GIT_LITERAL_PATHSPECS=1`); DVC
takes paths literally unless given `--glob`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from shlex import quote

from repro_hooks.dvc.hints import (
    dvc_writes_wrong_entry,
    gitignore_entry,
    gitignore_for,
    is_notebook,
    stage_outputs,
)
from repro_hooks.dvc.runner import INSTALL_HINT, dvc_command, last_error_line, run_dvc
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.report import Finding, display_path

LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def movable(findings: Sequence[Finding]) -> list[Finding]:
    """The findings `--fix` moves into DVC: files over the size limit, except notebooks."""
    return [
        f
        for f in findings
        if f.rule == "large-file" and f.raw_path is not None and not is_notebook(f.path)
    ]


def move_to_dvc(git: Git, findings: Sequence[Finding]) -> list[Finding]:
    """Move each movable finding's path into DVC. Returns the findings, the moved ones reworded
    to say so (the commit must be re-run). Raises ReproHooksError when anything stands in the
    way; then nothing was changed (or everything was put back exactly)."""
    assert git.root is not None
    moving = movable(findings)
    if not moving:
        return list(findings)
    if dvc_command() is None:
        raise ReproHooksError(
            f"--fix needs DVC, which is not installed ({INSTALL_HINT}); nothing was changed"
        )
    paths = [os.fsdecode(f.raw_path) for f in moving if f.raw_path is not None]
    # a dvc.yaml stage output (or a file inside one): `dvc add` refuses it (it overlaps the
    # stage); it only leaves the index, and `dvc repro` / `dvc commit` record it in dvc.lock
    outputs = stage_outputs(git.root, paths)
    to_add = [p for p in paths if p not in outputs]
    to_untrack = [p for p in paths if p in outputs]
    _check_untrack(git, to_untrack)
    moved = _apply(git, _plan(git, to_add)) if to_add else {}
    untracked = _untrack(git, to_untrack)
    reworded: list[Finding] = []
    for f in findings:
        path = os.fsdecode(f.raw_path) if f.raw_path is not None else None
        if path is not None and path in moved:
            dvc_file = display_path(os.fsencode(moved[path]))
            f = replace(
                f,
                message=f"{f.message}: moved into DVC ({dvc_file} staged); review and commit again",
            )
        elif path is not None and path in untracked:
            why = (
                f"an output of {outputs[path]}: dvc repro or dvc commit records it in dvc.lock"
                + untracked[path]
            )
            f = replace(
                f, message=f"{f.message}: taken out of the index ({why}); review and commit again"
            )
        reworded.append(f)
    return reworded


def _check_untrack(git: Git, paths: Sequence[str]) -> None:
    """Before anything changes: each stage output to take out of the index is a file on disk
    (the index entry must not be its only copy), in an index that outlives the hook."""
    if not paths:
        return
    assert git.root is not None
    if os.environ.get("GIT_INDEX_FILE", "").endswith(".lock"):
        raise ReproHooksError(
            "--fix: this commit stages files itself (git commit -a, or with paths) and drops "
            "what a hook stages; stage with git add, then run git commit without -a or paths; "
            "nothing was changed"
        )
    for path in paths:
        full = git.root / path
        if full.is_symlink() or not full.is_file():
            raise _fail(path, "not a regular file in the working tree")


def _untrack(git: Git, paths: Sequence[str]) -> dict[str, str]:
    """`git rm --cached` the stage outputs (the files stay on disk); per path, a note when git
    does not ignore it (then `git add -A` would stage it again)."""
    if not paths:
        return {}
    git.run(
        "rm",
        "--cached",
        "-q",
        "--pathspec-from-file=-",
        "--pathspec-file-nul",
        input=_nul(paths),
        env=LITERAL,
    )
    ignored = git.ignored_paths([os.fsencode(p) for p in paths])
    return {
        p: "" if os.fsencode(p) in ignored else "; git does not ignore it yet: dvc repro does"
        for p in paths
    }


@dataclass
class _Plan:
    root: Path
    paths: list[str]  # root-relative POSIX
    staged: dict[str, tuple[str, str]]  # path -> (mode, blob sha) in the index
    groups: dict[str, list[str]]  # DVC project ("" = the root) -> its paths
    project: dict[str, str]  # path -> its DVC project
    nlinks: dict[str, int]  # path -> its hard link count before (DVC may add one)
    index_file: Path
    touched: list[str] = field(default_factory=list)  # files DVC may write, root-relative


def _fail(path: str, reason: str) -> ReproHooksError:
    return ReproHooksError(
        f"--fix: {display_path(os.fsencode(path))}: {reason}; nothing was changed"
    )


def _plan(git: Git, paths: list[str]) -> _Plan:
    """Every check that can be made before changing anything."""
    assert git.root is not None
    root = git.root
    if os.environ.get("GIT_INDEX_FILE", "").endswith(".lock"):
        # `git commit -a`, `--include` or `git commit <paths>`: git commits a temporary index
        # and throws it away when a hook fails, so what --fix stages there would be lost
        raise ReproHooksError(
            "--fix: this commit stages files itself (git commit -a, or with paths) and drops "
            "what a hook stages; stage with git add, then run git commit without -a or paths; "
            "nothing was changed"
        )
    real_root = os.path.realpath(root)
    groups: dict[str, list[str]] = {}
    for path in paths:
        full = root / path
        if os.path.commonpath([real_root, os.path.realpath(full)]) != real_root:
            raise _fail(path, "a symbolic link in its directories leads outside the repository")
        if full.is_symlink() or not full.is_file():
            raise _fail(path, "not a regular file in the working tree")
        if gitignore_entry(posixpath.basename(path)) is None:
            raise _fail(
                path,
                "no .gitignore line can name it (a newline, or a carriage return at the end), "
                "so dvc add would ignore other files and leave it unignored; rename it "
                "(git mv) first",
            )
        project = _dvc_project(root, path)
        if project is None:
            raise ReproHooksError(
                f"--fix: {root} is not a DVC repository (run `dvc init` first); nothing was changed"
            )
        project = _dvc_project(root, path)
        if project is None:
            raise ReproHooksError(
                f"--fix: {root} is not a DVC repository (run `dvc init` first); nothing was changed"
            )
        groups.setdefault(project, []).append(path)
    staged = _index_entries(git, paths)
    # `git diff-files` trusts the index's stat data (a file untouched since `git add` is not
    # read again); only files it lists are hashed, as `git add` would store them
    listed = git.run("diff-files", "-z", "--name-only", "--", *paths, env=LITERAL)
    maybe = [os.fsdecode(n) for n in listed.split(b"\0") if n]
    on_disk = {p: staged[p][1] for p in paths if p in staged}
    on_disk.update(_worktree_blobs(git, maybe) if maybe else {})
    for path in paths:
        entry = staged.get(path)
        if entry is None:
            raise _fail(path, "not in the index")
        if on_disk.get(path) != entry[1]:
            raise _fail(
                path,
                "staged content differs from the file on disk; stage or stash the rest first "
                f"(git add -- {quote(path)}), then re-run with --fix",
            )
    touched: list[str] = []
    for project, members in groups.items():
        for path in members:
            touched += [path + ".dvc", gitignore_for(path)]
            for outer in _ancestors(path, project):
                touched += [outer + ".dvc", gitignore_for(outer)]
    for name in dict.fromkeys(touched):
        if (root / name).is_symlink():
            raise _fail(name, "a symbolic link; dvc add would write through it")
    index = git.run("rev-parse", "--git-path", "index").decode("utf-8", "surrogateescape")
    return _Plan(
        root=root,
        paths=paths,
        staged=staged,
        groups=groups,
        project={p: proj for proj, ps in groups.items() for p in ps},
        nlinks={p: os.stat(root / p).st_nlink for p in paths},
        index_file=root / index.strip(),
        touched=list(dict.fromkeys(touched)),
    )


def _dvc_project(root: Path, path: str) -> str | None:
    """The nearest directory at or above `path` holding `.dvc/` ("" = the root), or None."""
    parts = path.split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        candidate = "/".join(parts[:depth])
        if (root / candidate / ".dvc").is_dir():
            return candidate
    return None


def _enclosing_dvc_file(root: Path, path: str, project: str) -> str | None:
    """The `<dir>.dvc` of the outermost enclosing directory DVC already tracks, if any."""
    for outer in _ancestors(path, project):
        if (root / (outer + ".dvc")).is_file():
            return outer + ".dvc"
    return None


def _ancestors(path: str, project: str) -> Iterable[str]:
    """The directories between the DVC project and the file (root-relative)."""
    parts = path.split("/")[:-1]
    start = len(project.split("/")) if project else 0
    for depth in range(start + 1, len(parts) + 1):
        yield "/".join(parts[:depth])


def _index_entries(git: Git, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
    out = git.run("ls-files", "-s", "-z", "--", *paths, env=LITERAL)
    entries: dict[str, tuple[str, str]] = {}
    for record in out.split(b"\0"):
        if record:
            meta, _, name = record.partition(b"\t")
            mode, sha, _stage = meta.decode().split(" ")
            entries[os.fsdecode(name)] = (mode, sha)
    return entries


def _worktree_blobs(git: Git, paths: Sequence[str]) -> dict[str, str]:
    """What `git add` would store for each file (clean filters applied), without storing it."""
    out = git.run("hash-object", "--", *paths).decode().split()
    return dict(zip(paths, out, strict=True))


def _nul(paths: Iterable[str]) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if not path.is_symlink() else None
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _apply(git: Git, plan: _Plan) -> dict[str, str]:
    """Move the files; returns each path's DVC file."""
    root = plan.root
    index_copy = plan.index_file.read_bytes()
    saved = {name: _read(root / name) for name in plan.touched}
    try:
        return _move(git, plan)
    except BaseException as exc:
        problems = _restore(git, plan, index_copy, saved)
        if problems:
            raise ReproHooksError(f"{exc}; and restoring failed: {'; '.join(problems)}") from None
        if isinstance(exc, ReproHooksError):
            raise ReproHooksError(f"{exc}; everything was put back as it was") from None
        raise


def _move(git: Git, plan: _Plan) -> dict[str, str]:
    root = plan.root
    git.run(
        "rm",
        "--cached",
        "-q",
        "--pathspec-from-file=-",
        "--pathspec-file-nul",
        input=_nul(plan.paths),
        env=LITERAL,
    )
    _write_entries_dvc_gets_wrong(git, plan)
    for project, members in plan.groups.items():
        inner = [posixpath.relpath(p, project) if project else p for p in members]
        proc = run_dvc(["add", "--", *inner], root / project, what="--fix")
        if proc.returncode != 0:
            raise ReproHooksError(f"--fix: dvc add failed: {last_error_line(proc)}")
        linked = [
            name
            for name, path in zip(inner, members, strict=True)
            if (root / path).is_symlink() or os.stat(root / path).st_nlink > plan.nlinks[path]
        ]
        if linked:
            # cache.type symlink/hardlink: the file is now the cache object itself (read-only,
            # which does not stop root or a tool that chmods). Keep a private copy instead.
            proc = run_dvc(["unprotect", "--", *linked], root / project, what="--fix")
            if proc.returncode != 0:
                raise ReproHooksError(f"--fix: dvc unprotect failed: {last_error_line(proc)}")
    _check_ignored(git, plan)
    dvc_files: dict[str, str] = {}
    for path in plan.paths:
        # a file inside a directory DVC already tracks (`<dir>.dvc`): dvc add records it there
        dvc_file = _enclosing_dvc_file(root, path, plan.project[path]) or path + ".dvc"
        if not (root / dvc_file).is_file():
            raise ReproHooksError(f"--fix: {path}: dvc add wrote no {dvc_file}")
        dvc_files[path] = dvc_file
    to_stage = list(dict.fromkeys(dvc_files.values())) + [
        name
        for name in dict.fromkeys(gitignore_for(p) for p in plan.paths)
        if (root / name).is_file()
    ]
    git.run(
        "add", "--pathspec-from-file=-", "--pathspec-file-nul", input=_nul(to_stage), env=LITERAL
    )
    return dvc_files


def _write_entries_dvc_gets_wrong(git: Git, plan: _Plan) -> None:
    """Before `dvc add`: the exact `.gitignore` line for each name `dvc add` would write a
    wrong one for (trailing spaces: `/x  ` ignores `x`), unless git already ignores the file or
    DVC tracks its directory. DVC then finds the file ignored and writes none."""
    wanted = [
        p
        for p in plan.paths
        if dvc_writes_wrong_entry(posixpath.basename(p))
        and _enclosing_dvc_file(plan.root, p, plan.project[p]) is None
    ]
    if not wanted:
        return
    ignored = git.ignored_paths([os.fsencode(p) for p in wanted])
    for path in wanted:
        if os.fsencode(path) in ignored:
            continue
        entry = gitignore_entry(posixpath.basename(path))
        assert entry is not None  # refused in _plan
        gitignore = plan.root / gitignore_for(path)
        current = _read(gitignore) or b""
        prefix = b"\n" if current and not current.endswith(b"\n") else b""
        with open(gitignore, "ab") as handle:  # in place: keeps its mode and inode
            handle.write(prefix + entry.encode("utf-8", "surrogateescape") + b"\n")


def _check_ignored(git: Git, plan: _Plan) -> None:
    """After `dvc add`: git itself must ignore every moved file (or the next `git add -A` puts
    it back in git); otherwise fail, and everything is put back."""
    moved = [os.fsencode(p) for p in plan.paths]
    ignored = git.ignored_paths(moved)
    for raw in moved:
        if raw not in ignored:
            raise ReproHooksError(
                f"--fix: {display_path(raw)}: git does not ignore it after dvc add (the "
                ".gitignore line DVC wrote does not name it); rename it (git mv) first"
            )


def _restore(git: Git, plan: _Plan, index_copy: bytes, saved: dict[str, bytes | None]) -> list[str]:
    """Put everything back; returns what could not be put back (empty when all is well)."""
    problems: list[str] = []
    root = plan.root
    try:
        _restore_index(plan.index_file, index_copy)
    except OSError as exc:
        problems.append(f"{plan.index_file}: {exc.strerror or exc}")
    for name, content in saved.items():
        path = root / name
        try:
            if content is None:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
            elif _read(path) != content:
                path.write_bytes(content)  # in place: keeps its mode and inode
        except OSError as exc:
            problems.append(f"{name}: {exc.strerror}")
    for rel in plan.paths:
        mode, sha = plan.staged[rel]
        full = root / rel
        try:
            intact = (
                not full.is_symlink()
                and full.is_file()
                and os.stat(full).st_nlink <= plan.nlinks[rel]
                and _worktree_blobs(git, [rel]).get(rel) == sha
            )
            if not intact:
                data = git.run("cat-file", "blob", sha)
                _replace_bytes(full, data, 0o755 if mode == "100755" else 0o644)
        except (OSError, ReproHooksError) as exc:
            problems.append(f"{rel}: {getattr(exc, 'strerror', None) or exc}")
    return problems


def _restore_index(index: Path, content: bytes) -> None:
    """Put the index file back as git does: take `<index>.lock`, write it, rename it over."""
    if _read(index) == content:
        return
    lock = index.with_name(index.name + ".lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # FileExistsError: held
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(lock, index)
    except BaseException:
        lock.unlink(missing_ok=True)
        raise


def _replace_bytes(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a new file beside `path` and rename it over `path` (atomic; breaks any
    link into the DVC cache instead of writing through it). `mode` as git checks files out."""
    tmp = path.with_name(f".{path.name}.repro-hooks-restore")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)  # the umask applies
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
