"""Objects: what git stores, sized and read in batches (`cat-file --batch[-check]`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from repro_hooks.git.process import GitProcess

GITLINK_MODE = "160000"
DEFLATE_MAX_RATIO = 1032  # zlib's documented maximum compression factor
SYMLINK_MODE = "120000"


class Blob(NamedTuple):
    """A blob (or gitlink) at a path, as git stores it. `commit` is set for history scans.
    (A NamedTuple: a 100,000-file index builds one per entry, and it is 3x cheaper than a
    frozen dataclass.)"""

    path: bytes
    mode: str
    sha: str
    commit: str | None = None

    @property
    def is_gitlink(self) -> bool:
        return self.mode == GITLINK_MODE


def object_headers(content: bytes) -> dict[bytes, bytes]:
    """The header of a commit or tag object as git reads it: the lines before the first empty
    line, split on b"\\n" only (never `splitlines()`, which also splits on \\x1c, \\x85 and
    U+2028); a header that repeats keeps its *first* value, as git's parsers do (a tag with two
    `object` lines points where git says it points); continuation lines (a leading space, as in
    `gpgsig`) belong to the header before them and are skipped."""
    headers: dict[bytes, bytes] = {}
    for line in content.partition(b"\n\n")[0].split(b"\n"):
        key, sep, value = line.partition(b" ")
        if sep and key and key not in headers:
            headers[key] = value
    return headers


def git_lines(out: bytes) -> list[bytes]:
    """git's line-oriented output, split as git writes it: on b"\\n" only, no empty last line."""
    lines = out.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


class ObjectInfo(NamedTuple):
    """An object's type and size, as `cat-file --batch-check` gives them (a NamedTuple: a
    history scan builds one per blob, and it is 3x cheaper than a frozen dataclass)."""

    type: str
    size: int


def parse_batch_check(out: bytes) -> dict[str, ObjectInfo]:
    """`cat-file --batch-check=%(objectname) %(objecttype) %(objectsize)` output: object id ->
    type and size; a `<id> missing` line (or anything else) is left out."""
    info = {}
    # a history sizes 20,000 objects: decoded at once (ASCII, per byte: the same lines), each
    # built by tuple.__new__, skipping the Python-level __new__ a NamedTuple adds
    new = tuple.__new__
    for line in out.decode("ascii", "replace").split("\n"):
        parts = line.split(" ")
        if len(parts) == 3 and parts[2].isdigit():
            info[parts[0]] = new(ObjectInfo, (parts[1], int(parts[2])))
    return info


class ObjectQueries(GitProcess):
    def tree(
        self, rev: str, *, endings: tuple[bytes, ...] | None = None, commit: str | None = None
    ) -> list[Blob]:
        """Every blob and gitlink of `rev`'s whole tree (a commit or a tree), each as a `Blob`
        with `commit` set to `commit`: one `git ls-tree -r -z --full-tree`. With `endings`,
        only the paths that end so (the rest are not decoded)."""
        blobs = []
        for record in self.run("ls-tree", "-r", "-z", "--full-tree", rev).split(b"\0"):
            meta, tab, path = record.partition(b"\t")
            if not tab or (endings is not None and not path.endswith(endings)):
                continue
            mode, _kind, sha = meta.decode().split(" ")
            blobs.append(Blob(path, mode, sha, commit))
        return blobs

    def object_info(self, shas: Iterable[str]) -> dict[str, ObjectInfo]:
        """Type and size of many objects in one `git cat-file --batch-check`."""
        unique = list(dict.fromkeys(shas))
        if not unique:
            return {}
        # Sizing loose objects is bound by opening each object file: split a large batch over
        # two concurrent cat-file processes (still one process per half, never one per file).
        chunks = [unique] if len(unique) < 4000 else [unique[::2], unique[1::2]]
        outputs = _parallel(
            lambda chunk: self.run(
                "cat-file",
                "--buffer",  # stdio-buffered answers, not a write per object
                "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                input=("\n".join(chunk) + "\n").encode(),
            ),
            chunks,
        )
        return parse_batch_check(b"".join(outputs))

    def loose_size_bounds(self, shas: Iterable[str]) -> dict[str, int]:
        """An upper bound on the size of each *loose* object, from its compressed file's size.

        Deflate cannot compress better than 1032:1, so a loose object file of N bytes holds at
        most 1032 * N bytes. One fstatat per object (no inflating, no git process): the cheap
        proof that most small blobs are under a size limit. Packed or absent objects are left
        out (ask `object_info`)."""
        objects = os.environ.get("GIT_OBJECT_DIRECTORY") or str(self.common_dir / "objects")
        by_fan: dict[str, list[str]] = {}
        for sha in shas:
            by_fan.setdefault(sha[:2], []).append(sha)
        bounds: dict[str, int] = {}
        stat = os.stat
        for fan, group in by_fan.items():
            try:
                fd = os.open(f"{objects}/{fan}", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue  # no loose objects there
            try:
                for sha in group:
                    try:
                        bounds[sha] = stat(sha[2:], dir_fd=fd).st_size * DEFLATE_MAX_RATIO
                    except OSError:
                        continue  # packed, or absent
            finally:
                os.close(fd)
        return bounds

    def small_blob(self, name: str, limit: int) -> tuple[bytes | None, int]:
        """The blob named `name` (a sha or `<rev>:<path>`) when it is at most `limit` bytes:
        (content, size). (None, 0) when no blob has that name; (None, size) when it is larger,
        and then it is never read into memory."""
        found = list(self.object_info([name]).values()) if "\n" not in name else []
        if len(found) != 1 or found[0].type != "blob":
            return None, 0
        if found[0].size > limit:
            return None, found[0].size
        return self.read_objects([name])[0], found[0].size

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """Contents of many objects in one `git cat-file --batch`. Missing objects are left out."""
        unique = list(dict.fromkeys(shas))
        return {
            sha: content
            for sha, content in zip(unique, self.read_objects(unique), strict=True)
            if content is not None
        }

    def read_objects(self, names: Sequence[str]) -> list[bytes | None]:
        """Contents of objects named by sha or `<rev>:<path>`, in order, in one `git cat-file
        --batch`; None for a missing one (or a name cat-file cannot take: it has a newline)."""
        return [None if found is None else found[1] for found in self.read_named_objects(names)]

    def read_named_objects(self, names: Sequence[str]) -> list[tuple[str, bytes] | None]:
        """Like `read_objects`, with each object's sha: (sha, content) or None."""
        asked = [n for n in names if "\n" not in n]
        if not asked:
            return [None] * len(names)
        out = self.run(
            "cat-file",
            "--batch",
            input=("\n".join(asked) + "\n").encode("utf-8", "surrogateescape"),
        )
        found: list[tuple[str, bytes] | None] = []
        pos = 0
        for _ in asked:
            eol = out.index(b"\n", pos)
            header = out[pos:eol]
            pos = eol + 1
            parts = header.split(b" ")
            if (
                len(parts) != 3
                or not parts[2].isdigit()
                or header.endswith((b" missing", b" ambiguous"))
            ):
                found.append(None)
                continue
            size = int(parts[2])
            found.append((parts[0].decode("ascii", "replace"), out[pos : pos + size]))
            pos += size + 1
        answers = iter(found)
        return [next(answers) if "\n" not in n else None for n in names]


def _parallel(fn: Callable[[list[str]], bytes], chunks: list[list[str]]) -> list[bytes]:
    if len(chunks) == 1:
        return [fn(chunks[0])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        return list(pool.map(fn, chunks))
