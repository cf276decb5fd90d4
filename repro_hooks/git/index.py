"""Questions about the index and the work tree: staged blobs, ignore rules, attributes."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Collection, Sequence

from repro_hooks.errors import GitError
from repro_hooks.git.history import parse_raw_diff
from repro_hooks.git.objects import Blob
from repro_hooks.git.process import GitProcess, anonymous_file, git_env

_LS_FILES_RE = re.compile(rb"([0-7]{6}) ([0-9a-f]+) 0\t([^\0]*)\0")


class IndexQueries(GitProcess):
    _staged_listing: Callable[[], bytes | None] | None = None  # prefetch_staged_paths

    def prefetch_index(self) -> None:
        """Start `git ls-files -s -z` now, in a thread, for a later `index_blobs`: git reads the
        index while Python goes on importing and reading configuration. A plain thread (joined
        at exit, like an executor's): concurrent.futures would cost the hook a tenth of its
        imports."""
        import threading

        answer: list[bytes | BaseException] = []

        def listing() -> None:
            try:
                answer.append(self.run("ls-files", "-s", "-z"))
            except BaseException as exc:  # handed to the caller, as a future would
                answer.append(exc)

        thread = threading.Thread(target=listing, name="repro-hooks ls-files")
        thread.start()

        def result() -> bytes:
            thread.join()
            if isinstance(answer[0], BaseException):
                raise answer[0]
            return answer[0]

        self._index_listing = result

    def index_blobs(self, only: Collection[bytes] | None = None) -> list[Blob]:
        """Every stage-0 entry of the index (`git ls-files -s -z`), or those at `only` paths."""
        listing, self._index_listing = self._index_listing, None
        out = listing() if listing is not None else self.run("ls-files", "-s", "-z")
        entries = _LS_FILES_RE.findall(out)
        return [
            Blob(path, mode.decode(), sha.decode())
            for mode, sha, path in entries
            if only is None or path in only
        ]

    # ---- staged paths, for the commit stage under pre-commit -------------------------
    _STAGED_ARGS = (
        "diff-index",
        "--cached",
        "-z",
        "--name-only",
        "--no-renames",
        "--diff-filter=AMT",
    )

    def prefetch_staged_paths(self) -> None:
        """Start `staged_paths` now: git works in its own process, its output in an anonymous
        file (no Python thread pumping a pipe competes with the caller for the interpreter)."""
        self._staged_listing = self._start(*self._STAGED_ARGS, "HEAD")

    def staged_paths(self) -> set[bytes] | None:
        """Paths whose index entry differs from HEAD: added, modified, type-changed, renames as
        added; one `git diff-index --name-only -z`. None when there is no HEAD to compare with
        (before the first commit; or git refused): then every index entry counts as staged."""
        started, self._staged_listing = self._staged_listing, None
        out = started() if started is not None else self.try_run(*self._STAGED_ARGS, "HEAD")
        return None if out is None else {p for p in out.split(b"\0") if p}

    def start_paths_pre_commit_sees(self) -> Callable[[], set[bytes] | None] | None:
        """When git here follows replace refs (a `refs/replace/*` ref exists), start asking which
        staged paths pre-commit sees: it runs git with replace refs followed, so `git replace
        HEAD <a commit whose tree has model.pt>` hides a staged model.pt from it (and from every
        hook it runs). Call the result for those paths; None here: no replace ref, pre-commit
        sees what `staged_paths` says."""
        if not self._has_replace_refs():
            return None
        started = self._start(*self._STAGED_ARGS, "HEAD", as_others_see=True)

        def result() -> set[bytes] | None:
            out = started()
            return None if out is None else {p for p in out.split(b"\0") if p}

        return result

    def _has_replace_refs(self) -> bool:
        """Whether a replace ref may exist (loose or packed; or a custom GIT_REPLACE_REF_BASE),
        read from the ref files: no git process in the common case."""
        if os.environ.get("GIT_REPLACE_REF_BASE"):
            return True
        try:
            if any((self.common_dir / "refs" / "replace").iterdir()):
                return True
        except OSError:
            pass
        try:
            packed = (self.common_dir / "packed-refs").read_bytes()
        except OSError:
            return False
        return b" refs/replace/" in packed

    def _start(self, *args: str, as_others_see: bool = False) -> Callable[[], bytes | None]:
        """Start `git <args>` with its output in an anonymous file; call the result to wait:
        its stdout, or None when git exits non-zero."""
        stdout = anonymous_file()
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
                env=git_env(as_others_see=as_others_see),
            )
        except FileNotFoundError:
            stdout.close()
            raise GitError("git: command not found") from None

        def result() -> bytes | None:
            with stdout:
                proc.wait()
                stdout.seek(0)
                return stdout.read() if proc.returncode == 0 else None

        return result

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
        # check-ignore refuses the literal pathspec mode, and would read a leading `:` as magic:
        # such a name goes as `./<name>` (the same path) and is mapped back
        asked = [b"./" + p if p[:1] == b":" else p for p in paths]
        try:
            proc = subprocess.run(
                ["git", "check-ignore", "-z", "--stdin", "--no-index"],
                cwd=self.cwd,
                input=b"\0".join(asked) + b"\0",
                capture_output=True,
                check=False,
                env=git_env(literal_pathspecs=False),
            )
        except FileNotFoundError:
            raise GitError("git: command not found") from None
        if proc.returncode not in (0, 1):
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git check-ignore: {msg[-1] if msg else proc.returncode}")
        return {p[2:] if p[:3] == b"./:" else p for p in proc.stdout.split(b"\0") if p}

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
        files = [anonymous_file() for _ in range(3)]
        stdin, stdout, stderr = files
        stdin.write(b"\0".join(paths) + b"\0")
        stdin.seek(0)
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=self.cwd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=git_env(),
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


def _parse_check_attr(out: bytes) -> dict[bytes, dict[str, str]]:
    fields = out.split(b"\0")
    if set(fields[2::3]) <= {b"unspecified"}:
        return {}  # every answer `unspecified` (the common case): nothing to decode
    result: dict[bytes, dict[str, str]] = {}
    for i in range(0, len(fields) - 2, 3):
        path, attr, value = fields[i], fields[i + 1].decode(), fields[i + 2].decode()
        if value not in ("unspecified", "unset"):
            result.setdefault(path, {})[attr] = value
    return result
