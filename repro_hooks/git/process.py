"""The git process: one repository, one `git` process per question (`-z` output, batched).

Paths are bytes (as git stores them) until they must become text for a message. The questions
themselves live beside this module, one module per kind: the index (index.py), objects
(objects.py) and history (history.py); `Git` (repo.py) brings them together.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from repro_hooks.errors import GitError

if TYPE_CHECKING:
    from typing import Self

EMPTY_TREE = {
    "sha1": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "sha256": "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
}


# The ONE place that builds git's environment: every git process repro-hooks starts (this
# package, the post-commit queue, the MLflow stamp) takes it from `git_env`, and
# tests/test_gate_round3.py fails on any `subprocess` call that starts git without it.
#
# Every git process sees the objects a repository really holds: with replace refs
# (`refs/replace/*`) followed, `git log` would show a clean replacement of a commit that adds a
# large blob, and the blob would pass. Grafts (`info/grafts`) are the older spelling of the same
# lie: an empty graft file turns them off.
NO_REPLACE_ENV = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_GRAFT_FILE": os.devnull}
# Paths are taken literally (`data/*.bin` names one file, `:(glob)x` is a name); the other
# global pathspec modes are dropped (git refuses to combine them with literal ones).
LITERAL_PATHSPECS_ENV = {"GIT_LITERAL_PATHSPECS": "1"}
PATHSPEC_MODES = (
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)


def git_env(
    extra: Mapping[str, str] | None = None,
    *,
    literal_pathspecs: bool = True,
    as_others_see: bool = False,
) -> dict[str, str]:
    """The environment for a git process: the caller's, with replace refs and grafts off and
    (unless `literal_pathspecs=False`, for a caller that writes `:(glob)` magic itself) every
    pathspec literal. `as_others_see=True` leaves replace refs and grafts as the caller's
    environment has them: only to learn what another tool (pre-commit) was shown, never to
    judge content."""
    env = {k: v for k, v in os.environ.items() if k not in PATHSPEC_MODES}
    if not as_others_see:
        env.update(NO_REPLACE_ENV)
    if literal_pathspecs:
        env.update(LITERAL_PATHSPECS_ENV)
    env.update(extra or {})
    return env


class GitProcess:
    """Runs git in one repository. `root` is None for a bare repository (server side)."""

    def __init__(
        self,
        git_dir: Path,
        root: Path | None,
        object_format: str = "sha1",
        common_dir: Path | None = None,
    ) -> None:
        self.git_dir = git_dir
        self.root = root
        self.object_format = object_format
        self.common_dir = common_dir or git_dir
        self._index_listing: Callable[[], bytes] | None = None  # see prefetch_index

    @classmethod
    def discover(cls, cwd: Path | str | None = None) -> Self:
        """The repository containing `cwd` (a work tree or a bare repository)."""
        try:
            proc = subprocess.run(
                [
                    "git",
                    "rev-parse",
                    "--absolute-git-dir",
                    "--is-bare-repository",
                    "--show-object-format",
                    "--path-format=absolute",
                    "--git-common-dir",
                    "--show-toplevel",
                ],
                cwd=cwd,
                capture_output=True,
                check=False,
                env=git_env(),
            )
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        # git's lines end at b"\n" only (a path may hold U+2028): never splitlines()
        lines = proc.stdout.decode("utf-8", "surrogateescape").split("\n")[:-1]
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
        full_env = git_env(env)
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.cwd,
                input=input,
                capture_output=True,
                check=False,
                env=full_env,
            )
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
            proc = subprocess.run(
                ["git", *args], cwd=self.cwd, capture_output=True, check=False, env=git_env()
            )
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

    def stream_fields(self, consume: Callable[[list[bytes]], None], *args: str) -> None:
        """Run a `-z` git command and hand its NUL-separated fields to `consume` as they arrive,
        so parsing overlaps git's own work. Raises GitError like `run`."""
        drain_fields(self.start_stream(*args), consume, args)

    def start_stream(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a git command whose output `drain_fields` reads later. Its stdout is a pipe
        made as large as Linux lets a user make one (1 MiB, where 64 KiB is the default), so
        git goes on working while the caller does something else first."""
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=self.cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=git_env(),
            )
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        assert proc.stdout is not None
        widen_pipe(proc.stdout.fileno())
        return proc


def drain_fields(
    proc: subprocess.Popen[bytes], consume: Callable[[list[bytes]], None], args: Sequence[str]
) -> None:
    """Hand the NUL-separated fields of a started git command (`start_stream`) to `consume` as
    they arrive, then wait for it. Raises GitError (naming the command of `args`) like `run`."""
    stdout, stderr = proc.stdout, proc.stderr
    assert isinstance(stdout, io.BufferedReader)
    assert stderr is not None
    rest = b""
    with proc:
        while chunk := stdout.read1(1 << 20):
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


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a started git process whose answer is no longer wanted, and reap it."""
    with contextlib.suppress(OSError):
        proc.kill()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    proc.wait()


def widen_pipe(fd: int, size: int = 1 << 20) -> None:
    """Make a pipe hold `size` bytes where the system allows it (Linux: up to
    /proc/sys/fs/pipe-max-size, 1 MiB by default); elsewhere, or when refused, leave it."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def anonymous_file() -> BinaryIO:
    """A read-write file with no name (memfd on Linux, else an unlinked temporary file)."""
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("repro-hooks", os.MFD_CLOEXEC), "w+b")
    import tempfile

    return tempfile.TemporaryFile()
