"""What a templated `dvc.yaml` in a commit reads, read from that same commit: its vars files and
its DVC project's config. Feeds `parse_dvc_yaml(content, file, load, parsing)` wherever DVC files
are read from commits (history scans, the deployment gate, run links).

Reads are batched (one `git cat-file --batch-check` and one `--batch` per batch, whatever the
number of files), memoised by (commit, path), and bounded: a blob over MAX_DVC_FILE_SIZE is sized,
never read. A `dvc.yaml` that does not template reads nothing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from repro_hooks.dvc.files import MAX_DVC_FILE_SIZE, DvcFileError, load_yaml, repo_path
from repro_hooks.dvc.params import config_sections, vars_file
from repro_hooks.git import Git

# A dvc.yaml that may template: a cheap byte test before any vars file is fetched ahead
_TEMPLATING_HINTS = (b"${", b"foreach", b"matrix", b"vars")

Sources = Callable[[str | None, str], tuple[Callable[[str], Any], Any]]


def may_template(content: bytes) -> bool:
    return any(hint in content for hint in _TEMPLATING_HINTS)


class CommitFiles:
    """Files as commits hold them, asked of git in batches and memoised."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self._info: dict[tuple[str, str], tuple[str, int] | None] = {}  # -> (type, size)
        self._content: dict[tuple[str, str], bytes | None] = {}
        self._parsed: dict[tuple[str, str], Any] = {}

    def fetch(self, names: Iterable[tuple[str, str]]) -> None:
        """Size every (commit, path) not asked yet, and read the blobs small enough."""
        wanted = [k for k in dict.fromkeys(names) if k not in self._info and "\n" not in k[1]]
        if not wanted:
            return
        spec = "\n".join(f"{commit}:{path}" for commit, path in wanted) + "\n"
        out = self.git.run(
            "cat-file",
            "--batch-check=%(objecttype) %(objectsize)",
            input=spec.encode("utf-8", "surrogateescape"),
        )
        lines = out.split(b"\n")
        readable = []
        for key, line in zip(wanted, lines, strict=False):
            parts = line.decode("ascii", "replace").split(" ")
            if len(parts) == 2 and parts[1].isdigit():
                self._info[key] = (parts[0], int(parts[1]))
                if parts[0] == "blob" and int(parts[1]) <= MAX_DVC_FILE_SIZE:
                    readable.append(key)
            else:
                self._info[key] = None  # missing (or ambiguous)
        found = self.git.read_objects([f"{c}:{p}" for c, p in readable])
        self._content.update(zip(readable, found, strict=True))

    def prefetch(self, yamls: Iterable[tuple[str | None, str, bytes]]) -> None:
        """For (commit, dvc.yaml path, its content), what resolving them reads, in one batch: the
        default vars file (params.yaml beside it), the files its top-level `vars` name, and the
        `.dvc/` directory and config of every directory above it (which DVC project it belongs
        to). Anything else (a stage's own `vars`) is read when asked for."""
        names: list[tuple[str, str]] = []
        for commit, path, content in yamls:
            if commit is None:
                continue
            base = posixpath.dirname(path)
            names.append((commit, posixpath.join(base, "params.yaml")))
            for named in _top_level_vars(content, path):
                joined = posixpath.normpath(posixpath.join(base, named))
                if joined != ".." and not joined.startswith(("../", "/")):
                    names.append((commit, joined))
            for parent in _parents(base):
                names.append((commit, posixpath.join(parent, ".dvc")))
                names.append((commit, posixpath.join(parent, ".dvc", "config")))
        self.fetch(names)

    def loader(self, commit: str | None) -> Callable[[str], Any]:
        """`load` for the templating resolver: a vars file of `commit`, parsed as DVC reads it;
        None when the commit has no such file."""

        def load(rel: str) -> Any:
            if commit is None:
                return None
            rel = repo_path("", rel, rel, "vars file")
            key = (commit, rel)
            if key not in self._parsed:
                self.fetch([key])
                info = self._info.get(key)
                if info is None:
                    self._parsed[key] = None
                elif info[0] != "blob":
                    raise DvcFileError(rel, f"a {info[0]}, not a vars file")
                elif info[1] > MAX_DVC_FILE_SIZE:
                    raise DvcFileError(rel, f"too large for a params file ({info[1]} bytes)")
                else:
                    self._parsed[key] = vars_file(self._content.get(key), rel)
            return self._parsed[key]

        return load

    def parsing(self, commit: str | None, file: str) -> Callable[[], Mapping[str, str] | None]:
        """The `[parsing]` section of the committed `.dvc/config` of `file`'s DVC project (the
        nearest directory above it holding `.dvc/`), when asked for."""

        def section() -> Mapping[str, str] | None:
            if commit is None:
                return None
            parents = _parents(posixpath.dirname(file))
            self.fetch((commit, posixpath.join(p, ".dvc")) for p in parents)
            for parent in parents:
                info = self._info.get((commit, posixpath.join(parent, ".dvc")))
                if info is not None and info[0] == "tree":
                    key = (commit, posixpath.join(parent, ".dvc", "config"))
                    self.fetch([key])
                    raw = self._content.get(key)
                    text = raw.decode("utf-8", "replace") if raw else ""
                    return config_sections([text]).get("parsing")
            return None

        return section

    def sources(self, commit: str | None, file: str) -> tuple[Callable[[str], Any], Any]:
        """(load, parsing) for a dvc.yaml of a commit."""
        return self.loader(commit), self.parsing(commit, file)


def _top_level_vars(content: bytes, path: str) -> list[str]:
    """The files a dvc.yaml's top-level `vars` name (`file` or `file:keys`); none when it does
    not parse (the parser says why, later)."""
    try:
        data = load_yaml(content, path)
    except DvcFileError:
        return []
    items = data.get("vars") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return []
    return [i.partition(":")[0] for i in items if isinstance(i, str) and i.partition(":")[0]]


def _parents(directory: str) -> list[str]:
    """A repository-relative directory and every one above it, nearest first ("" the root)."""
    out = [directory]
    while directory:
        directory = posixpath.dirname(directory)
        out.append(directory)
    return out
