"""History: what the commits of a range introduce, streamed from one `git log` process."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from repro_hooks.errors import GitError
from repro_hooks.git.objects import Blob, ObjectInfo, parse_batch_check
from repro_hooks.git.process import GitProcess, anonymous_file, git_env


@dataclass
class HistoryWalk:
    """What one walk over a range found: the blobs each commit introduces (oldest commit
    first), the tip each commit was reached from (the ref name or revision given to git), and,
    when asked, each commit object's size (a bound on its message's size) and the type and size
    of every blob found (`object_info`, as `Git.object_info` answers it; None when not asked)."""

    blobs: list[Blob]
    sources: dict[str, str] = dataclass_field(default_factory=dict)
    commit_sizes: dict[str, int] = dataclass_field(default_factory=dict)
    object_info: dict[str, ObjectInfo] | None = None


# Every setting user configuration could use to change what `git log --raw` reports, pinned.
LOG_PINS = (
    "-c",
    "log.showRoot=true",
    "-c",
    "log.showSignature=false",
    "-c",
    "log.diffMerges=separate",
    "-c",
    "diff.renames=false",
    "-c",
    "diff.relative=false",
    "-c",
    "core.quotePath=true",
    "-c",
    "i18n.logOutputEncoding=UTF-8",  # UTF-16 output would put NULs inside every record
)
LOG_ARGS = (
    "log",
    "--reverse",
    "-z",
    "--raw",
    "--no-abbrev",
    "--diff-merges=separate",
    "--no-renames",
    "--no-relative",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-mailmap",
    "--no-notes",
)


class HistoryQueries(GitProcess):
    def introduced_blobs(self, rev_args: Sequence[str]) -> list[Blob]:
        """Every blob each commit selected by `git rev-list <rev_args>` introduces (added,
        modified or type-changed against each parent; root commits against the empty tree),
        oldest commit first."""
        return self.walk_history(rev_args).blobs

    def walk_history(
        self,
        rev_args: Sequence[str],
        *,
        sources: bool = False,
        commit_sizes: bool = False,
        on_commits: Callable[[int], None] | None = None,
    ) -> HistoryWalk:
        """One `git log --raw -z` process for the whole range (see `introduced_blobs`).

        It is porcelain, so every option that user configuration could change is pinned on the
        command line: how merges are diffed (`log.diffMerges=off|combined|dense-combined|
        first-parent` would hide or reshape what a merge adds; `-m` alone follows that
        setting), renames, relative paths, root diffs, signatures, external diff drivers,
        colour, the output encoding (docs/RELIABILITY.md lists each setting tried). `sources` adds `--source`;
        `commit_sizes` streams the commit and blob ids, as they arrive, into a `cat-file
        --batch-check` running beside the walk (the blobs are sized by the time the walk ends,
        not after it). `on_commits(n)` hears of every n more commits read (progress)."""
        parser = RawDiffParser(with_commits=True)
        fmt = "--format=%H %S" if sources else "--format=%H"
        # --diff-filter would drop every commit without such a change from the output (and so
        # from the message check): the parser drops deletions instead.
        only = [] if commit_sizes else ["--diff-filter=AMT"]
        sizer = _StreamingSizer(self) if commit_sizes else None
        consume = parser.feed if sizer is None else sizer.consumer(parser)
        if on_commits is not None:  # progress: how many more commits each piece brought
            inner = consume

            def consume(fields: list[bytes]) -> None:
                before = len(parser.commits)
                inner(fields)
                on_commits(len(parser.commits) - before)

        try:
            self.stream_fields(
                consume,
                *LOG_PINS,
                *LOG_ARGS,
                *only,
                *(["--source"] if sources else []),
                fmt,
                *rev_args,
                "--",
            )
        except GitError as exc:
            if sizer is not None:
                sizer.close()
            if self.try_run("rev-parse", "--is-shallow-repository") == b"true\n":
                raise GitError(
                    f"{' '.join(rev_args)}: not in this shallow clone ({exc}); fetch the history "
                    "first: git fetch --unshallow (in CI: a full-depth checkout)"
                ) from None
            raise
        blobs = [b for b in parser.blobs if b.sha.strip("0")]
        if sizer is None:
            return HistoryWalk(blobs, parser.sources)
        sizes, info = sizer.close()
        return HistoryWalk(blobs, parser.sources, sizes, info)


class _StreamingSizer:
    """`git cat-file --batch-check` fed commit and blob ids while `git log` still runs (in
    batches, through a pipe made large enough that the walk rarely waits), its output in an
    anonymous file (so neither side can block the other)."""

    BATCH = 2048  # commit ids per write

    FORMAT = "--batch-check=%(objectname) %(objecttype) %(objectsize)"

    def __init__(self, git: GitProcess) -> None:
        self._git = git
        self._out = anonymous_file()
        self._proc = subprocess.Popen(
            ["git", "cat-file", self.FORMAT],
            cwd=git.cwd,
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )
        stdin = self._proc.stdin
        assert stdin is not None
        self._stdin = stdin
        if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux: 1 MiB holds ~25,000 commit ids
            with contextlib.suppress(OSError):
                fcntl.fcntl(stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        self._commits: list[str] = []
        self._blobs: list[Blob] = []
        self._sent = 0
        self._sent_blobs = 0
        self._blob_ids: dict[str, None] = {}  # every blob id sent, once each

    def consumer(self, parser: RawDiffParser) -> Callable[[list[bytes]], None]:
        self._commits = parser.commits
        self._blobs = parser.blobs

        def consume(fields: list[bytes]) -> None:
            parser.feed(fields)
            if len(self._commits) - self._sent >= self.BATCH:
                self._send()

        return consume

    def _send(self) -> None:
        commits, blobs, sent = self._commits, self._blobs, self._blob_ids
        new_blobs = [
            sha
            for b in blobs[self._sent_blobs :]
            if (sha := b.sha) not in sent and not b.is_gitlink and sha.strip("0")
        ]
        sent.update(dict.fromkeys(new_blobs))
        self._sent_blobs = len(blobs)
        ids = [*commits[self._sent :], *new_blobs]
        if ids:
            with contextlib.suppress(BrokenPipeError):  # sized again in close()
                self._stdin.write(("\n".join(ids) + "\n").encode())
        self._sent = len(commits)

    def close(self) -> tuple[dict[str, int], dict[str, ObjectInfo]]:
        """(commit id -> size, blob id -> type and size); an object git lacks is left out."""
        self._send()
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()
        self._proc.wait()
        self._out.seek(0)
        info = parse_batch_check(self._out.read())
        self._out.close()
        missing = [i for i in (*self._commits, *self._blob_ids) if i not in info]
        if missing:  # the streaming process failed (or an object is missing): ask again
            answer = self._git.run(
                "cat-file", self.FORMAT, input=("\n".join(missing) + "\n").encode()
            )
            info.update(parse_batch_check(answer))
        sizes = {c: o.size for c in self._commits if (o := info.get(c)) is not None}
        return sizes, {i: o for i in self._blob_ids if (o := info.get(i)) is not None}


def parse_raw_diff(raw: bytes, with_commits: bool = False) -> list[Blob]:
    """Parse `--raw -z` output (`:m1 m2 s1 s2 X\\0path\\0`), optionally led by commit ids.
    A deletion record introduces nothing and is left out."""
    parser = RawDiffParser(with_commits)
    parser.feed(raw.split(b"\0"))
    return parser.blobs


class RawDiffParser:
    """Incremental parser of `--raw -z` fields, which may arrive in any number of pieces."""

    def __init__(self, with_commits: bool = False) -> None:
        self.with_commits = with_commits
        self.blobs: list[Blob] = []
        self.commits: list[str] = []  # every commit record, in order
        self.sources: dict[str, str] = {}  # commit -> the tip it was reached from (--source)
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
                if parts[4][:1] != "D":  # a deletion introduces nothing
                    blobs.append(Blob(field, parts[1], parts[3], self._commit))
                continue
            if field[:1] == b"\n":  # `git log -z` puts a newline between a commit and its diff
                field = field[1:]
            if field[:1] == b":":
                self._header = field[1:].decode().split(" ")
                # with renames on, two paths follow; the second is the new one
                self._skip = 1 if self._header[4][:1] in ("R", "C") else 0
            elif self.with_commits and field:
                commit, _, source = field.decode("utf-8", "backslashreplace").partition(" ")
                self._commit = commit
                self.commits.append(commit)
                if source:
                    self.sources[commit] = source
