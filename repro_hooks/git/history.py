"""History: what the commits of a range introduce, streamed from one `git log` process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from repro_hooks.errors import GitError
from repro_hooks.git.objects import Blob
from repro_hooks.git.process import GitProcess


class HistoryQueries(GitProcess):
    def introduced_blobs(
        self, rev_args: Sequence[str], on_commits: Callable[[int], None] | None = None
    ) -> list[Blob]:
        """Every blob each commit selected by `git rev-list <rev_args>` introduces (added,
        modified or type-changed against each parent; root commits against the empty tree),
        oldest commit first.

        One `git log --raw -z` process for the whole range. It is porcelain, so every option
        that user configuration could change (renames, relative paths, root diffs, signatures,
        external diff drivers) is pinned on the command line."""
        parser = RawDiffParser(with_commits=True)
        feed = parser.feed
        if on_commits is not None:  # progress: how many more commits each piece brought

            def feed(fields: list[bytes]) -> None:
                before = parser.commits
                parser.feed(fields)
                on_commits(parser.commits - before)

        try:
            self.stream_fields(
                feed,
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
        self.commits = 0  # commit ids seen so far
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
                self.commits += 1
