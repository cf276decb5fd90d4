"""DVC's hashes, computed the way DVC 3 computes them, without importing DVC.

- `md5`: plain md5 of the bytes (DVC 3 entries, `hash: md5`).
- `md5-dos2unix`: legacy DVC 2 entries (no `hash:` key). The file is read in 1 MiB chunks; a chunk
  whose first 512 bytes look like text has CRLF turned into LF before hashing (dvc-data's
  `Dos2UnixHashStreamFile`, chunk by chunk, so a CRLF split across chunks stays as it is).
- Directory outputs: `<md5 of the JSON listing>.dir`, the listing being
  `[{"md5": <file hash>, "relpath": <posix path>}]` sorted by relpath, `json.dumps(sort_keys=True)`
  (dvc-data's `Tree.as_bytes`). Files under `.dvcignore` patterns are left out.

`HashCache` keeps file hashes between runs, keyed by (path, inode, mtime_ns, ctime_ns, size,
algorithm), in one compact file under `<git-dir>/repro-hooks/`: unchanged data is never hashed
twice. ctime is part of the key because mtime can be set back (`touch -d`, `cp -p`, an archive
extraction): a same-size rewrite with its old mtime restored still changes ctime.
"""

from __future__ import annotations

import errno
import hashlib
import json
import marshal
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 1 << 20  # dvc-data's fobj_md5 chunk size: the dos2unix decision is per chunk
TEXT_PROBE = 512  # dvc-data's istextfile DEFAULT_CHUNK_SIZE
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"
ALGORITHMS = ("md5", "md5-dos2unix")
PARALLEL_MIN_SIZE = 1 << 20  # files at least this large are hashed on worker threads
PROGRESS_MIN_BYTES = 64 << 20  # a progress bar (on a terminal) when at least this much to hash
RACY_WINDOW_NS = 2_000_000_000  # a file changed (mtime or ctime) this recently is not cached


def is_text_block(block: bytes) -> bool:
    """dvc-data's `istextblock`: no NUL, at most 30% bytes outside printable ASCII and \\n\\r\\t\\f\\b."""
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30


class NotARegularFile(OSError):
    """A FIFO, socket or device where a file was expected: never read (a FIFO would block)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.EINVAL, "not a regular file", os.fspath(path))


def open_regular(path: str | os.PathLike[str]) -> int:
    """A file descriptor for reading a regular file. Opened non-blocking and checked with fstat
    before any read, so a FIFO (or a device) is refused at once instead of hanging the hook."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotARegularFile(path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file; NotARegularFile for anything else (see open_regular)."""
    with os.fdopen(open_regular(path), "rb") as fh:
        return fh.read()


def md5_file(path: str | os.PathLike[str], algorithm: str = "md5") -> str:
    """The hash DVC records for one file (`md5` or `md5-dos2unix`)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported hash algorithm {algorithm!r}")
    hasher = hashlib.md5(usedforsecurity=False)
    with os.fdopen(open_regular(path), "rb", buffering=0) as fh:
        if algorithm == "md5":
            buf = bytearray(CHUNK_SIZE * 4)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                hasher.update(view[:n])
        else:
            while chunk := _read_full(fh, CHUNK_SIZE):
                if is_text_block(chunk[:TEXT_PROBE]):
                    chunk = chunk.replace(b"\r\n", b"\n")
                hasher.update(chunk)
    return hasher.hexdigest()


def _read_full(fh: object, size: int) -> bytes:
    """Exactly `size` bytes unless at the end (a raw read may return fewer)."""
    read = fh.read  # type: ignore[attr-defined]
    parts = []
    remaining = size
    while remaining:
        part = read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def dir_hash(entries: Iterable[tuple[str, str]]) -> str:
    """DVC's `.dir` hash of a directory listing of (posix relpath, file md5) pairs."""
    listing = sorted(
        ({"md5": md5, "relpath": rel} for rel, md5 in entries), key=lambda e: e["relpath"]
    )
    data = json.dumps(listing, sort_keys=True).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir"


# ---- the hash cache -------------------------------------------------------------------------

_CACHE_MAGIC = "repro-hooks-hash-cache"
_CACHE_VERSION = 2  # 2: ctime_ns in the key
_CACHE_MAX_ENTRIES = 2_000_000

CacheKey = tuple[str, str]  # (absolute path, algorithm)
CacheValue = tuple[int, int, int, int, str]  # (inode, mtime_ns, ctime_ns, size, hash)


class HashCache:
    """File hashes keyed by path and algorithm, valid while inode, mtime_ns, ctime_ns and size
    match.

    Stored with `marshal` in one file, replaced atomically (write a temporary file, then
    `os.replace`). Anything unreadable is discarded silently: the cache is only ever a shortcut.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[CacheKey, CacheValue] = {}
        self.dirty = False
        self.hits = 0
        self.misses = 0
        if path is not None:
            self.entries = _load_cache(path)

    def get(self, path: str, st: os.stat_result, algorithm: str) -> str | None:
        hit = self.entries.get((path, algorithm))
        if (
            isinstance(hit, tuple)
            and len(hit) == 5
            and hit[:4] == (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        ):
            self.hits += 1
            return hit[4]
        self.misses += 1
        return None

    def put(self, path: str, st: os.stat_result, algorithm: str, value: str) -> None:
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_WINDOW_NS:
            return  # racily clean: a same-size rewrite within the timestamp granularity could hide
        key = (path, algorithm)
        new = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size, value)
        if self.entries.get(key) != new:
            self.entries[key] = new
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        entries = self.entries
        if len(entries) > _CACHE_MAX_ENTRIES:
            entries = dict(list(entries.items())[-_CACHE_MAX_ENTRIES:])
        data = marshal.dumps((_CACHE_MAGIC, _CACHE_VERSION, entries))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".hashes.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return  # a read-only git dir only costs speed
        self.dirty = False


def _load_cache(path: Path) -> dict[CacheKey, CacheValue]:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if (
        isinstance(data, tuple)
        and len(data) == 3
        and data[0] == _CACHE_MAGIC
        and data[1] == _CACHE_VERSION
        and isinstance(data[2], dict)
    ):
        return data[2]
    return {}


# ---- hashing many files ---------------------------------------------------------------------


@dataclass(frozen=True)
class FileToHash:
    path: str  # absolute
    st: os.stat_result
    algorithm: str


def hash_files(
    files: Sequence[FileToHash], cache: HashCache, *, jobs: int | None = None
) -> dict[tuple[str, str], str]:
    """Hashes of many files, from the cache where valid; large files on worker threads
    (hashlib releases the GIL on big buffers). Returns {(path, algorithm): hash}; a file that
    vanished or cannot be read is left out."""
    out: dict[tuple[str, str], str] = {}
    small: list[FileToHash] = []
    large: list[FileToHash] = []
    for f in files:
        key = (f.path, f.algorithm)
        if key in out:
            continue
        cached = cache.get(f.path, f.st, f.algorithm)
        if cached is not None:
            out[key] = cached
        elif f.st.st_size >= PARALLEL_MIN_SIZE:
            large.append(f)
        else:
            small.append(f)

    def one(f: FileToHash) -> tuple[FileToHash, str | None]:
        try:
            return f, md5_file(f.path, f.algorithm)
        except OSError:
            return f, None

    from repro_hooks.progress import progress_bar

    results: Iterable[tuple[FileToHash, str | None]]
    workers = min(len(large), jobs or os.cpu_count() or 1)
    total = sum(f.st.st_size for f in (*large, *small))
    # cold hashing of gigabytes: a bar on a terminal (stderr only; nothing anywhere else)
    with progress_bar("hashing data", total, min_total=PROGRESS_MIN_BYTES, unit="bytes") as bar:

        def timed(f: FileToHash) -> tuple[FileToHash, str | None]:
            result = one(f)
            bar.advance(f.st.st_size)
            return result

        if workers > 1 and not sys.is_finalizing() and not _at_exit():
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                # results in order; the bar advances as each file is done (main thread)
                futures = [pool.submit(one, f) for f in large]
                results = []
                for f, future in zip(large, futures, strict=True):
                    results.append(future.result())
                    bar.advance(f.st.st_size)
                results += [timed(f) for f in small]
        else:
            results = [timed(f) for f in (*large, *small)]
    for f, value in results:
        if value is not None:
            out[(f.path, f.algorithm)] = value
            cache.put(f.path, f.st, f.algorithm, value)
    return out


def _at_exit() -> bool:
    """Whether the interpreter is running its exit handlers (the run stamp's end state is taken
    there): no new threads then, so hash in this one."""
    import threading

    return not threading.main_thread().is_alive()


# ---- .dvcignore -----------------------------------------------------------------------------


def _pattern_to_regex() -> Callable[[str], tuple[str | None, bool | None]]:
    """pathspec's gitignore pattern compiler, found the way DVC finds it (pathspec 1.x or 0.x)."""
    try:
        from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern
    except ImportError:  # pragma: no cover - pathspec<1
        from pathspec.patterns import (  # type: ignore[attr-defined]
            GitWildMatchPattern as GitIgnoreSpecPattern,
        )
    fn: Callable[[str], tuple[str | None, bool | None]] = GitIgnoreSpecPattern.pattern_to_regex
    return fn


class DvcIgnore:
    """DVC's `.dvcignore` rules: gitignore syntax, one file per directory, patterns relative to
    their directory, last match wins, and nothing below an ignored directory comes back.
    Built on `pathspec` (a DVC dependency), imported only when a `.dvcignore` file exists.
    Always ignores `.git`, `.hg` and `.dvc/` as DVC does."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        # files: repository-relative .dvcignore path -> content
        self._rules: list[tuple[str, list[tuple[re.Pattern[str], bool, bool]]]] = []
        if not files:
            return
        lines_by_file: list[tuple[str, list[str]]] = []
        for name in sorted(files, key=lambda n: (n.count("/"), n)):
            base = name.rsplit("/", 1)[0] if "/" in name else ""
            lines = [
                line
                for raw in files[name].decode("utf-8", "replace").splitlines()
                if (line := raw.strip()) and not line.startswith("#")
            ]
            if lines:
                lines_by_file.append((base, lines))
        if not lines_by_file:
            return  # `dvc init` writes a .dvcignore of comments only: no need for pathspec
        to_regex = _pattern_to_regex()
        for base, lines in lines_by_file:
            compiled = []
            for line in lines:
                regex, include = to_regex(line)
                if regex is None or include is None:
                    continue
                compiled.append((re.compile(regex), bool(include), line.endswith("/")))
            if compiled:
                self._rules.append((base, compiled))

    def __bool__(self) -> bool:
        return bool(self._rules)

    def _match(self, path: str, is_dir: bool) -> bool:
        result = False
        for base, patterns in self._rules:
            if base:
                if not path.startswith(base + "/"):
                    continue
                rel = path[len(base) + 1 :]
            else:
                rel = path
            candidates = [rel, rel + "/"] if is_dir else [rel]
            for pattern, include, dir_only in patterns:
                if dir_only and not is_dir:
                    continue
                if any(pattern.match(c) for c in candidates):
                    result = include
        return result

    def is_ignored(self, path: str, is_dir: bool = False) -> bool:
        """Whether a repository-relative POSIX path is ignored (itself or a parent directory)."""
        parts = path.split("/")
        if parts[0] in (".git", ".hg", ".dvc") or ".git" in parts[:-1] or ".hg" in parts[:-1]:
            return True
        if parts[-1] in (".git",) or not self._rules:
            return False
        for i in range(1, len(parts) + 1):
            if self._match("/".join(parts[:i]), is_dir or i < len(parts)):
                return True
        return False


# ---- walking an output ----------------------------------------------------------------------


class OutsideRepository(Exception):
    """A symlink in an output leads outside the repository."""


@dataclass(frozen=True)
class WalkedFile:
    relpath: str  # POSIX, relative to the walked directory
    path: str  # absolute
    st: os.stat_result


def walk_output(
    root: Path, rel_dir: str, ignore: DvcIgnore, is_inside: Callable[[str], bool]
) -> list[WalkedFile]:
    """Files of a directory output as DVC's build collects them: `os.walk` without following
    directory symlinks, file symlinks followed (their target's content is hashed) but only when
    they stay inside the repository, `.dvcignore`d entries left out."""
    top = os.path.join(root, rel_dir)
    out: list[WalkedFile] = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel_root = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if ignore:
            dirnames[:] = [d for d in dirnames if not ignore.is_ignored(f"{rel_root}/{d}", True)]
            filenames = [f for f in filenames if not ignore.is_ignored(f"{rel_root}/{f}")]
        else:
            dirnames[:] = [d for d in dirnames if d not in (".git", ".hg")]
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full, follow_symlinks=False)
                if os.path.islink(full):
                    if not is_inside(os.path.realpath(full)):
                        raise OutsideRepository(full)
                    st = os.stat(full)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise NotARegularFile(full)
            rel = f"{rel_root}/{name}"[len(rel_dir) + 1 :]
            out.append(WalkedFile(rel, full, st))
    return out
