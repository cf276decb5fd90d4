"""History: what the commits of a range introduce, streamed from one `git log` process."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Sequence
from typing import NamedTuple

from repro_hooks.errors import GitError
from repro_hooks.git.objects import Blob, ObjectInfo, parse_batch_check
from repro_hooks.git.process import (
    GitProcess,
    anonymous_file,
    drain_fields,
    git_env,
    stop,
    widen_pipe,
)


class HistoryWalk(NamedTuple):
    """What one walk over a range found: the blobs each commit introduces (oldest commit
    first), the tip each commit was reached from (the ref name or revision given to git), and,
    when asked, each commit object's size (a bound on its message's size; empty when not asked)
    and the type and size of every blob found (`object_info`, as `Git.object_info` answers it;
    None when not asked). (Not a dataclass: `import dataclasses` would delay the scan's fast
    path, which imports this module before it starts git log.)"""

    blobs: list[Blob]
    sources: dict[str, str]
    commit_sizes: dict[str, int]
    object_info: dict[str, ObjectInfo] | None


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
# No `--reverse`: with it git walks (and holds) every commit before it prints the first, so
# nothing downstream could start early; `_oldest_commit_first` puts the output in that order.
LOG_ARGS = (
    "log",
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
    _prefetched_walk: _Walk | None = None  # prefetch_walk

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
        not after it). `on_commits(n)` hears of every n more commits read (progress).
        A walk started ahead with the same arguments (`prefetch_walk`) is taken over."""
        walk, self._prefetched_walk = self._prefetched_walk, None
        if walk is not None and walk.asked != (tuple(rev_args), sources, commit_sizes):
            walk.stop()
            walk = None
        if walk is None:
            walk = _Walk(self, rev_args, sources, commit_sizes)
        return walk.finish(on_commits)

    def prefetch_walk(
        self, rev_args: Sequence[str], *, sources: bool = False, commit_sizes: bool = False
    ) -> None:
        """Start `walk_history` now: git walks (and sizes) while Python goes on importing and
        reading configuration; the next `walk_history` with the same arguments reads it. Pair
        with `drop_prefetched_walk` (in a `finally`), which ends it if nothing read it."""
        self.drop_prefetched_walk()
        self._prefetched_walk = _Walk(self, rev_args, sources, commit_sizes)

    def drop_prefetched_walk(self) -> None:
        """End a walk `prefetch_walk` started that no `walk_history` read (no-op otherwise)."""
        walk, self._prefetched_walk = self._prefetched_walk, None
        if walk is not None:
            walk.stop()


class _Walk:
    """One started `git log --raw -z` (and its sizer): `finish` reads it to the end."""

    def __init__(
        self, git: HistoryQueries, rev_args: Sequence[str], sources: bool, commit_sizes: bool
    ) -> None:
        self.git = git
        self.asked = (tuple(rev_args), sources, commit_sizes)
        fmt = "--format=%H %S" if sources else "--format=%H"
        # --diff-filter would drop every commit without such a change from the output (and so
        # from the message check): the parser drops deletions instead.
        only = [] if commit_sizes else ["--diff-filter=AMT"]
        self.args = (
            *LOG_PINS,
            *LOG_ARGS,
            *only,
            *(["--source"] if sources else []),
            fmt,
            *rev_args,
            "--",
        )
        self.proc = git.start_stream(*self.args)
        try:
            self.sizer = _StreamingSizer(git) if commit_sizes else None
        except BaseException:
            stop(self.proc)
            raise

    def finish(self, on_commits: Callable[[int], None] | None = None) -> HistoryWalk:
        parser = RawDiffParser(with_commits=True)
        sizer = self.sizer
        consume = parser.feed if sizer is None else sizer.consumer(parser)
        if on_commits is not None:  # progress: how many more commits each piece brought
            inner = consume

            def consume(fields: list[bytes]) -> None:
                before = len(parser.commits)
                inner(fields)
                on_commits(len(parser.commits) - before)

        try:
            drain_fields(self.proc, consume, self.args)
        except BaseException as exc:
            if sizer is not None:
                sizer.stop()
            if not isinstance(exc, GitError):
                stop(self.proc)
                raise
            rev_args = self.asked[0]
            if self.git.try_run("rev-parse", "--is-shallow-repository") == b"true\n":
                raise GitError(
                    f"{' '.join(rev_args)}: not in this shallow clone ({exc}); fetch the history "
                    "first: git fetch --unshallow (in CI: a full-depth checkout)"
                ) from None
            raise
        # everything in the order `git log --reverse` gives (a dict: by first appearance)
        blobs = _oldest_commit_first([b for b in parser.blobs if b.sha.strip("0")])
        sources = dict(reversed(parser.sources.items()))
        if sizer is None:
            return HistoryWalk(blobs, sources, {}, None)
        sizes, info = sizer.close()  # (info: looked up, never listed; its order is git's)
        return HistoryWalk(blobs, sources, dict(reversed(sizes.items())), info)

    def stop(self) -> None:
        stop(self.proc)
        if self.sizer is not None:
            self.sizer.stop()


class _StreamingSizer:
    """`git cat-file --batch-check` fed commit and blob ids while `git log` still runs (in
    batches, through a pipe made large enough that the walk rarely waits), its output in an
    anonymous file (so neither side can block the other). `--buffer`: a write per 8 KiB of
    answers, not one per object (20,000 objects, 20,000 writes). What it has answered is
    parsed at each batch, while the walk runs: only the last batch's answers are left for the
    end."""

    BATCH = 512  # commit ids per write (what is left after the walk: at most one batch)

    FORMAT = "--batch-check=%(objectname) %(objecttype) %(objectsize)"

    def __init__(self, git: GitProcess) -> None:
        self._git = git
        self._out = anonymous_file()
        self._proc = subprocess.Popen(
            ["git", "cat-file", "--buffer", self.FORMAT],
            cwd=git.cwd,
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )
        stdin = self._proc.stdin
        assert stdin is not None
        self._stdin = stdin
        widen_pipe(stdin.fileno())  # 1 MiB holds ~25,000 commit ids
        self._commits: list[str] = []
        self._blobs: list[Blob] = []
        self._sent = 0
        self._sent_blobs = 0
        self._blob_ids: dict[str, None] = {}  # every blob id sent, once each
        self._info: dict[str, ObjectInfo] = {}  # the answers parsed so far
        self._parsed = 0  # up to this offset of the output

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
        self._parse_answers()

    def _parse_answers(self) -> None:
        """Parse the whole lines cat-file has written since the last call. (`pread`: the file
        offset is cat-file's, shared with this process, and must not move.)"""
        fd = self._out.fileno()
        answered = os.pread(fd, os.fstat(fd).st_size - self._parsed, self._parsed)
        end = answered.rfind(b"\n") + 1
        if end:
            self._info.update(parse_batch_check(answered[:end]))
            self._parsed += end

    def close(self) -> tuple[dict[str, int], dict[str, ObjectInfo]]:
        """(commit id -> size, blob id -> type and size); an object git lacks is left out."""
        self._send()
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()
        self._proc.wait()
        self._parse_answers()
        self._out.close()
        info = self._info
        if len(info) < len(self._blob_ids) + len(set(self._commits)):
            # the streaming process failed (or an object is missing): ask again
            missing = [i for i in (*self._commits, *self._blob_ids) if i not in info]
            answer = self._git.run(
                "cat-file", self.FORMAT, input=("\n".join(missing) + "\n").encode()
            )
            info.update(parse_batch_check(answer))
        sizes = {c: o.size for c in self._commits if (o := info.get(c)) is not None}
        return sizes, {i: o for i in self._blob_ids if (o := info.get(i)) is not None}

    def stop(self) -> None:
        """End the sizer when the walk failed (its answers are not wanted)."""
        stop(self._proc)
        self._out.close()


def _oldest_commit_first(blobs: list[Blob]) -> list[Blob]:
    """The blobs of `git log --raw` (newest commit first) in `git log --reverse` order: each
    commit's run of records (a merge's diffs against each parent are one run) keeps its order,
    the runs are reversed."""
    ordered: list[Blob] = []
    end = len(blobs)
    while end:
        start, commit = end - 1, blobs[end - 1].commit
        while start and blobs[start - 1].commit == commit:
            start -= 1
        ordered += blobs[start:end]
        end = start
    return ordered


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
        # a history has tens of thousands of fields: the state lives in locals meanwhile, and
        # tuple.__new__ builds each Blob without the Python-level __new__ a NamedTuple adds
        append, commits, sources = self.blobs.append, self.commits, self.sources
        header, skip, commit = self._header, self._skip, self._commit
        new = tuple.__new__
        for field in fields:
            if header is not None:
                if skip:
                    skip -= 1
                    continue
                if header[4][:1] != "D":  # a deletion introduces nothing
                    append(new(Blob, (field, header[1], header[3], commit)))
                header = None
                continue
            if field[:1] == b"\n":  # `git log -z` puts a newline between a commit and its diff
                field = field[1:]
            if field[:1] == b":":
                header = field[1:].decode().split(" ")
                # with renames on, two paths follow; the second is the new one
                skip = 1 if header[4][:1] in ("R", "C") else 0
            elif self.with_commits and field:
                commit, _, source = field.decode("utf-8", "backslashreplace").partition(" ")
                commits.append(commit)
                if source:
                    sources[commit] = source
        self._header, self._skip, self._commit = header, skip, commit
