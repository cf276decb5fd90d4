"""The git adapter: every question is one `git` process with `-z` output, never one per file.

Paths are bytes (as git stores them) until they must become text for a message.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from repro_hooks.errors import GitError

if TYPE_CHECKING:
    from concurrent.futures import Future

_LS_FILES_RE = re.compile(rb"([0-7]{6}) ([0-9a-f]+) 0\t([^\0]*)\0")
GITLINK_MODE = "160000"
DEFLATE_MAX_RATIO = 1032  # zlib's documented maximum compression factor
SYMLINK_MODE = "120000"
EMPTY_TREE = {
    "sha1": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "sha256": "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}


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


@dataclass(frozen=True)
class ObjectInfo:
    type: str
    size: int


class Git:
    """One repository. `root` is None for a bare repository (server side)."""

    def __init__(
        self, git_dir: Path, root: Path | None, object_format: str = "sha1",
        common_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.git_dir = git_dir
        self.root = root
        self.object_format = object_format
        self.common_dir = common_dir or git_dir
        self._index_listing: Future[bytes] | None = None  # see prefetch_index

    @classmethod
    def discover(cls, cwd: Path | str | None = None) -> Git:
        """The repository containing `cwd` (a work tree or a bare repository)."""
        try:
            proc = subprocess.run(
                ["git", "rev-parse", "--absolute-git-dir", "--is-bare-repository",
                 "--show-object-format", "--path-format=absolute", "--git-common-dir",
                 "--show-toplevel"],
                cwd=cwd, capture_output=True, check=False,
            )  # fmt: skip
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        if len(lines) < 4:
            reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"{cwd or '.'}: not a git repository ({reason[-1] if reason else ''})")
        git_dir, bare, fmt, common = lines[:4]
        root = Path(lines[4]) if len(lines) > 4 and bare != "true" else None
        return cls(Path(git_dir), root, fmt, Path(common))

    @property
    def cwd(self) -> Path:
        return self.root if self.root is not None else self.git_dir

    @property
    def empty_tree(self) -> str:
        return EMPTY_TREE.get(self.object_format, EMPTY_TREE["sha1"])

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> bytes:
        """Run one git command in the repository and return its stdout."""
        full_env = None if env is None else {**os.environ, **env}
        try:
            proc = subprocess.run(
                ["git", *args], cwd=self.cwd, input=input, capture_output=True,
                check=False, env=full_env,
            )  # fmt: skip
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        if check and proc.returncode != 0:
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            name = next(
                (a for i, a in enumerate(args) if a != "-c" and (i == 0 or args[i - 1] != "-c")), ""
            )
            raise GitError(f"git {name}: {msg[-1] if msg else f'exit {proc.returncode}'}")
        return proc.stdout

    def try_run(self, *args: str) -> bytes | None:
        """Like run, but None when git exits non-zero (e.g. an unknown revision)."""
        try:
            proc = subprocess.run(["git", *args], cwd=self.cwd, capture_output=True, check=False)
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        return proc.stdout if proc.returncode == 0 else None

    def config_value(self, key: str) -> str | None:
        """`git config --get <key>` in this repository, or None when unset."""
        out = self.try_run("config", "--get", key)
        return out.decode("utf-8", "surrogateescape").strip() if out else None

    def hooks_dir(self) -> Path:
        """Where git looks for hooks: honours core.hooksPath and linked worktrees."""
        out = self.run("rev-parse", "--git-path", "hooks").decode("utf-8", "surrogateescape")
        return (self.cwd / out.strip()).resolve()

    # ---- the index --------------------------------------------------------------------------

    def prefetch_index(self) -> None:
        """Start `git ls-files -s -z` now, in a thread, for a later `index_blobs`: git reads the
        index while Python goes on importing and reading configuration."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1)
        self._index_listing = pool.submit(self.run, "ls-files", "-s", "-z")
        pool.shutdown(wait=False)

    def index_blobs(self, only: Collection[bytes] | None = None) -> list[Blob]:
        """Every stage-0 entry of the index (`git ls-files -s -z`), or those at `only` paths."""
        listing, self._index_listing = self._index_listing, None
        out = listing.result() if listing is not None else self.run("ls-files", "-s", "-z")
        entries = _LS_FILES_RE.findall(out)
        return [
            Blob(path, mode.decode(), sha.decode())
            for mode, sha, path in entries
            if only is None or path in only
        ]

    def head_commit(self) -> str | None:
        out = self.try_run("rev-parse", "--verify", "-q", "HEAD^{commit}")
        return out.decode().strip() if out else None

    def staged_blobs(self) -> list[Blob]:
        """Index entries that differ from HEAD: added, modified, type-changed; renames count as
        added (`--no-renames`). On an initial commit, everything in the index."""
        base = self.head_commit() or self.empty_tree
        raw = self.run("diff-index", "--cached", "-z", "--no-renames", "--diff-filter=AMT", base)
        return [b for b in parse_raw_diff(raw) if b.sha.strip("0")]

    def ls_files(self, *args: str) -> list[bytes]:
        """`git ls-files -z <args>`: the names, as bytes."""
        return [p for p in self.run("ls-files", "-z", *args).split(b"\0") if p]

    def ignored_paths(self, paths: Sequence[bytes]) -> set[bytes]:
        """Which paths git's ignore rules match, tracked or not (`check-ignore --no-index`),
        in one `git check-ignore -z --stdin` process."""
        if not paths:
            return set()
        try:
            proc = subprocess.run(
                ["git", "check-ignore", "-z", "--stdin", "--no-index"],
                cwd=self.cwd, input=b"\0".join(paths) + b"\0", capture_output=True, check=False,
            )  # fmt: skip
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        if proc.returncode not in (0, 1):
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git check-ignore: {msg[-1] if msg else proc.returncode}")
        return {p for p in proc.stdout.split(b"\0") if p}

    # ---- objects ----------------------------------------------------------------------------

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
                "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                input=("\n".join(chunk) + "\n").encode(),
            ),
            chunks,
        )
        info = {}
        for line in b"".join(outputs).decode().splitlines():
            parts = line.split(" ")
            if len(parts) == 3:
                info[parts[0]] = ObjectInfo(parts[1], int(parts[2]))
        return info

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
        asked = [n for n in names if "\n" not in n]
        if not asked:
            return [None] * len(names)
        out = self.run(
            "cat-file",
            "--batch",
            input=("\n".join(asked) + "\n").encode("utf-8", "surrogateescape"),
        )
        found: list[bytes | None] = []
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
            found.append(out[pos : pos + size])
            pos += size + 1
        answers = iter(found)
        return [next(answers) if "\n" not in n else None for n in names]

    def attributes(
        self, paths: Sequence[bytes], names: Sequence[str]
    ) -> dict[bytes, dict[str, str]]:
        """`git check-attr -z --stdin` for many paths: {path: {attr: value}} (unset ones left out)."""
        return self.start_attributes(paths, names)()

    def start_attributes(
        self, paths: Sequence[bytes], names: Sequence[str]
    ) -> Callable[[], dict[bytes, dict[str, str]]]:
        """Start `attributes`; call the result to wait for it. git works in its own process with
        its input and output in anonymous files, so no Python thread competes with the caller's
        own work for the interpreter while git runs on the other core."""
        if not paths:
            return dict
        args = ["check-attr", "-z", "--stdin", *names]
        files = [_anonymous_file() for _ in range(3)]
        stdin, stdout, stderr = files
        stdin.write(b"\0".join(paths) + b"\0")
        stdin.seek(0)
        try:
            proc = subprocess.Popen(
                ["git", *args], cwd=self.cwd, stdin=stdin, stdout=stdout, stderr=stderr
            )
        except FileNotFoundError:
            raise GitError("git: command not found") from None

        def result() -> dict[bytes, dict[str, str]]:
            try:
                proc.wait()
                stdout.seek(0)
                stderr.seek(0)
                if proc.returncode != 0:
                    msg = stderr.read().decode("utf-8", "replace").strip().splitlines()
                    raise GitError(f"git check-attr: {msg[-1] if msg else proc.returncode}")
                return _parse_check_attr(stdout.read())
            finally:
                for f in files:
                    f.close()

        return result

    # ---- history ----------------------------------------------------------------------------

    def introduced_blobs(self, rev_args: Sequence[str]) -> list[Blob]:
        """Every blob each commit selected by `git rev-list <rev_args>` introduces (added,
        modified or type-changed against each parent; root commits against the empty tree),
        oldest commit first.

        One `git log --raw -z` process for the whole range. It is porcelain, so every option
        that user configuration could change (renames, relative paths, root diffs, signatures,
        external diff drivers) is pinned on the command line."""
        parser = RawDiffParser(with_commits=True)
        try:
            self.stream_fields(
                parser.feed,
                "-c", "log.showRoot=true", "-c", "log.showSignature=false",
                "log", "--reverse", "-z", "--raw", "--no-abbrev", "-m", "--no-renames",
                "--no-relative", "--no-ext-diff", "--no-textconv", "--no-color",
                "--diff-filter=AMT", "--format=%H", *rev_args, "--",
            )  # fmt: skip
        except GitError as exc:
            if self.try_run("rev-parse", "--is-shallow-repository") == b"true\n":
                raise GitError(
                    f"{' '.join(rev_args)}: not in this shallow clone ({exc}); fetch the history "
                    "first: git fetch --unshallow (in CI: a full-depth checkout)"
                ) from None
            raise
        return [b for b in parser.blobs if b.sha.strip("0")]

    def stream_fields(self, consume: Callable[[list[bytes]], None], *args: str) -> None:
        """Run a `-z` git command and hand its NUL-separated fields to `consume` as they arrive,
        so parsing overlaps git's own work. Raises GitError like `run`."""
        try:
            proc = subprocess.Popen(
                ["git", *args], cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        stdout, stderr = proc.stdout, proc.stderr
        assert isinstance(stdout, io.BufferedReader)
        assert stderr is not None
        rest = b""
        with proc:
            while chunk := stdout.read1(1 << 16):
                fields = (rest + chunk).split(b"\0")
                rest = fields.pop()
                consume(fields)
            if rest:
                consume([rest])
            err = stderr.read()
        if proc.returncode != 0:
            msg = err.decode("utf-8", "replace").strip().splitlines()
            name = next(
                (a for i, a in enumerate(args) if a != "-c" and (i == 0 or args[i - 1] != "-c")), ""
            )
            raise GitError(f"git {name}: {msg[-1] if msg else f'exit {proc.returncode}'}")


def _anonymous_file() -> BinaryIO:
    """A read-write file with no name (memfd on Linux, else an unlinked temporary file)."""
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("repro-hooks", os.MFD_CLOEXEC), "w+b")
    import tempfile

    return tempfile.TemporaryFile()


def _parse_check_attr(out: bytes) -> dict[bytes, dict[str, str]]:
    fields = out.split(b"\0")
    result: dict[bytes, dict[str, str]] = {}
    for i in range(0, len(fields) - 2, 3):
        path, attr, value = fields[i], fields[i + 1].decode(), fields[i + 2].decode()
        if value not in ("unspecified", "unset"):
            result.setdefault(path, {})[attr] = value
    return result


def _parallel(fn: Callable[[list[str]], bytes], chunks: list[list[str]]) -> list[bytes]:
    if len(chunks) == 1:
        return [fn(chunks[0])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        return list(pool.map(fn, chunks))


def parse_raw_diff(raw: bytes, with_commits: bool = False) -> list[Blob]:
    """Parse `--raw -z` output (`:m1 m2 s1 s2 X\\0path\\0`), optionally led by commit ids."""
    parser = RawDiffParser(with_commits)
    parser.feed(raw.split(b"\0"))
    return parser.blobs


class RawDiffParser:
    """Incremental parser of `--raw -z` fields, which may arrive in any number of pieces."""

    def __init__(self, with_commits: bool = False) -> None:
        self.with_commits = with_commits
        self.blobs: list[Blob] = []
        self._commit: str | None = None
        self._header: list[str] | None = None  # a `:...` record waiting for its path(s)
        self._skip = 0  # paths to pass over first (the old path of a rename or copy)

    def feed(self, fields: list[bytes]) -> None:
        blobs = self.blobs
        for field in fields:
            if self._header is not None:
                if self._skip:
                    self._skip -= 1
                    continue
                parts, self._header = self._header, None
                blobs.append(Blob(field, parts[1], parts[3], self._commit))
                continue
            if field[:1] == b"\n":  # `git log -z` puts a newline between a commit and its diff
                field = field[1:]
            if field[:1] == b":":
                self._header = field[1:].decode().split(" ")
                # with renames on, two paths follow; the second is the new one
                self._skip = 1 if self._header[4][:1] in ("R", "C") else 0
            elif self.with_commits and field:
                self._commit = field.decode()
