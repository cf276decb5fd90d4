"""Fix hints as shell commands that run exactly as printed, where they are printed.

Pure and stdlib-only (the commit-stage commands import it): paths in, command lines out. Every
path is quoted for a POSIX shell (`shlex.quote`), comes after `--` (a name starting with `-` is
no option), and git is told to take names literally when one contains glob or pathspec magic
characters (`run[12].bin` would otherwise also match `run1.bin`). `dvc add` takes names
literally unless given `--glob`.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK_SUFFIX = ".ipynb"
_PATHSPEC_MAGIC = ("*", "?", "[", "\\")


def is_notebook(path: str) -> bool:
    """A Jupyter notebook: moving it to DVC hides the code; its outputs are what is large."""
    return path.lower().endswith(NOTEBOOK_SUFFIX)


@dataclass(frozen=True)
class Where:
    """Where a hint is printed: the repository root and the shell's directory (both absolute).
    `root=None` means "unknown": commands are written relative to the repository root."""

    root: Path | None = None
    cwd: Path | None = None

    def prefix(self) -> list[str]:
        """A `cd` to the repository root when the shell is elsewhere (every command path is
        root-relative): the first line of a hint, printed once."""
        if self.root is None or self.cwd is None:
            return []
        try:
            same = os.path.samefile(self.root, self.cwd)
        except OSError:
            same = self.root == self.cwd
        if same:
            return []
        rel = os.path.relpath(self.root, self.cwd)
        return [f"cd {shlex.quote(rel if not rel.startswith('-') else './' + rel)}"]

    def dvc_root(self, path: str) -> str | None:
        """The DVC project holding `path` (root-relative POSIX, "" for the repository root):
        the nearest directory above it with a `.dvc/` directory. None when there is none, or
        "" when the root is unknown (assume the usual layout)."""
        if self.root is None:
            return ""
        parts = path.split("/")[:-1]
        for depth in range(len(parts), -1, -1):
            candidate = "/".join(parts[:depth])
            if (self.root / candidate / ".dvc").is_dir():
                return candidate
        return None

    def enclosing_output(self, path: str) -> str | None:
        """`<dir>.dvc` when `path` lies in a directory DVC already tracks: `dvc add <path>`
        records the file there (and writes no `.gitignore`: the directory is ignored)."""
        if self.root is None:
            return None
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            candidate = "/".join(parts[:depth]) + ".dvc"
            if (self.root / candidate).is_file():
                return candidate
        return None


def _git(paths: Sequence[str]) -> str:
    literal = any(c in p for p in paths for c in _PATHSPEC_MAGIC) or any(
        p.startswith(":") for p in paths
    )
    return "git --literal-pathspecs" if literal else "git"


def _quote(paths: Sequence[str]) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def gitignore_for(path: str) -> str:
    """The `.gitignore` that `dvc add <path>` writes: the one beside the output."""
    return posixpath.join(posixpath.dirname(path), ".gitignore")


def gitignore_entry(name: str) -> str | None:
    """The `.gitignore` line that ignores exactly the file `name` (a base name) beside that
    `.gitignore`: `/` and the name, with git's escapes (a backslash before `\\`, `*`, `?`, `[`;
    a leading `#` or `!` needs none after the `/`; trailing spaces, which git trims, each
    escaped). None when no line can say it: a newline ends the line, and git drops a carriage
    return before it."""
    if "\n" in name or name.endswith("\r"):
        return None
    body = "".join("\\" + c if c in "\\*?[" else c for c in name)
    kept = body.rstrip(" ")
    return "/" + kept + "\\ " * (len(body) - len(kept))


def dvc_writes_wrong_entry(name: str) -> bool:
    """`dvc add` writes `/` and the name with glob characters escaped, but leaves trailing
    spaces as they are (git trims them: `/x  ` ignores `x`, not `x  `) and a newline or final
    carriage return raw (`data⏎big.bin` becomes the lines `/data` and `big.bin`)."""
    return name.endswith((" ", "\r")) or "\n" in name


def dvc_add_commands(paths: Sequence[str], where: Where) -> list[str]:
    """For files in the index: `git rm --cached`, `dvc add`, `git add` of the `.dvc` files and
    the `.gitignore` files DVC writes; `dvc init` first when there is no DVC project. One line
    per command, batched over every path."""
    if not paths:
        return []
    lines: list[str] = []
    # names dvc add would write a wrong .gitignore line for: inexpressible ones are left out
    # (rename them first); trailing spaces get the right line first, so dvc add writes none
    unsayable = [p for p in paths if gitignore_entry(posixpath.basename(p)) is None]
    if unsayable:
        lines.append(  # a comment, the names left out: a newline in one would end it
            f"# {len(unsayable)} name(s) with a newline or a final carriage return: no "
            ".gitignore line can name them; rename them (git mv), then run these again"
        )
        paths = [p for p in paths if p not in unsayable]
        if not paths:
            return lines
    lines.append(f"{_git(paths)} rm --cached -q -- {_quote(paths)}")
    groups: dict[str, list[str]] = {}
    missing = False
    for path in paths:
        dvc_root = where.dvc_root(path)
        if dvc_root is None:
            missing, dvc_root = True, ""
        groups.setdefault(dvc_root, []).append(path)
    if missing:
        lines.append("dvc init")  # it stages .dvc/ and .dvcignore itself
    for path in paths:  # the exact line first: dvc add then finds the file ignored
        name = posixpath.basename(path)
        entry = gitignore_entry(name)
        if entry is not None and dvc_writes_wrong_entry(name) and not where.enclosing_output(path):
            lines.append(
                f"printf '%s\\n' {shlex.quote(entry)} >> {shlex.quote(gitignore_for(path))}"
            )
    for dvc_root, members in groups.items():
        if dvc_root:
            start = len(dvc_root) + 1
            inner = [p[start:] for p in members]
            lines.append(f"dvc --cd {shlex.quote(dvc_root)} add -- {_quote(inner)}")
        else:
            lines.append(f"dvc add -- {_quote(members)}")
    staged: list[str] = []
    for path in paths:
        outer = where.enclosing_output(path)
        if outer:
            staged.append(outer)
        else:
            staged += [path + ".dvc", gitignore_for(path)]
    staged = sorted(dict.fromkeys(staged), key=lambda p: (p.endswith(".gitignore"), p))
    lines.append(f"{_git(staged)} add -- {_quote(staged)}")
    return lines


def stage_outputs(root: Path, paths: Sequence[str]) -> dict[str, str]:
    """For each path that is the output of a `dvc.yaml` stage, or lies inside one, the stage
    (`dvc.yaml:train`). `dvc add` refuses such a path (it overlaps the stage's output): the fix
    is to take it out of the index, and `dvc repro` / `dvc commit` record it in dvc.lock. Reads
    the `dvc.yaml` of every directory from the root down to each path (templating resolved from
    the working tree); a malformed one says nothing (check-dvc reports it)."""
    candidates: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            candidate = posixpath.join("/".join(parts[:depth]), "dvc.yaml")
            if (root / candidate).is_file():
                candidates.add(candidate)
    if not candidates:
        return {}
    # imported only when there is a dvc.yaml to read: they cost the commit-stage hook ~15% of
    # its run when it reports large files
    from repro_hooks.dvc.hashing import DvcIgnore
    from repro_hooks.dvc.worktree import load_dvc_files

    real_root = os.path.realpath(root)

    def inside(rel: str) -> bool:
        full = os.path.realpath(root / rel)
        return os.path.commonpath([real_root, full]) == real_root

    files = load_dvc_files(root, candidates, DvcIgnore({}), inside)
    found: dict[str, str] = {}
    for pipeline in files.pipelines:
        for name, stage in pipeline.stages.items():
            for out in stage.outs:
                for path in paths:
                    if path not in found and (path == out.path or path.startswith(out.path + "/")):
                        found[path] = f"{pipeline.yaml_file}:{name}"
    return found


def untrack_commands(paths: Sequence[str]) -> list[str]:
    """Take stage outputs out of the index (the files stay on disk)."""
    if not paths:
        return []
    return [f"{_git(paths)} rm --cached -q -- {_quote(paths)}"]


def notebook_commands(paths: Sequence[str]) -> list[str]:
    """Strip the outputs of large notebooks (what makes them large) and stage them again."""
    if not paths:
        return []
    shown = ["./" + p if p.startswith("-") else p for p in paths]  # nbconvert has no `--`
    return [
        f"jupyter nbconvert --clear-output --inplace {_quote(shown)}",
        f"{_git(paths)} add -- {_quote(paths)}",
    ]
