"""The crash log: what an unexpected error (exit 3) leaves for a bug report.

Like pre-commit's `pre-commit.log`: one entry per crash with the time, the versions (ours,
Python, the platform, git, and DVC or MLflow only when the crashed process had already imported
them: never imported for this), the command line and the traceback. The user sees one line
naming the file. Inside a repository the log is `<git common dir>/repro-hooks/crash.log`, else
`$XDG_CACHE_HOME/repro-hooks/crash.log` (`~/.cache/...`). It keeps the last `KEEP_ENTRIES`
entries within `MAX_BYTES`. Writing it never raises: a log that cannot be written is said in
that one line instead. Imported only when something has already gone wrong."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "crash.log"
KEEP_ENTRIES = 5
MAX_BYTES = 256 * 1024
ENTRY_START = "=== repro-hooks crash report "
ENTRY_LINE = re.compile(r"^=== repro-hooks crash report (\S+) \(([0-9.]+)\) ===$", re.MULTILINE)
# `scheme://user:secret@host`: a tracking URI given on the command line or in an error
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
GIT_TIMEOUT = 5.0


@dataclass(frozen=True)
class CrashLog:
    """Where the log went (`path`), or why it could not be written (`error`)."""

    path: Path
    error: str | None = None

    def line(self) -> str:
        """The half of the user's one line that says where the report is."""
        if self.error is not None:
            return f"no crash log written ({self.path}: {self.error})"
        return f"the crash log is {self.path} (attach it to a bug report)"


def _git(args: Sequence[str], cwd: Path | None = None) -> str | None:
    from repro_hooks.git.process import git_env

    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace").strip() or None


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """The user cache directory (XDG), for crashes outside a repository."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "repro-hooks"


def default_path(cwd: Path | None = None) -> Path:
    """`<git common dir>/repro-hooks/crash.log` inside a repository, else the cache dir's."""
    common = _git(["rev-parse", "--path-format=absolute", "--git-common-dir"], cwd)
    if common:
        return Path(common) / "repro-hooks" / FILE_NAME
    return cache_dir() / FILE_NAME


def without_credentials(text: str) -> str:
    return _CREDENTIALS.sub("***@", text)


def _versions() -> list[tuple[str, str]]:
    from repro_hooks import __version__

    found = [
        ("repro-hooks", __version__),
        ("python", f"{sys.version.split()[0]} ({sys.executable})"),
        ("platform", platform.platform()),
        ("git", _git(["--version"]) or "(not found)"),
    ]
    for module, name in (("dvc", "dvc"), ("mlflow", "mlflow")):
        if module in sys.modules:  # only what the crashed process had imported
            version = getattr(sys.modules[module], "__version__", None)
            found.append((name, str(version or "(imported, version unknown)")))
    return found


def entry(
    exc: BaseException, argv: Sequence[str], now: float | None = None, stack: str | None = None
) -> str:
    """One report: header, versions, command line, working directory, traceback (or `stack`,
    where the process was when it was stopped from another thread)."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    try:
        cwd = os.getcwd()
    except OSError as err:
        cwd = f"(unknown: {err.strerror})"
    lines = [f"{ENTRY_START}{stamp} ({now:.3f}) ==="]
    lines += [f"{name}: {value}" for name, value in _versions()]
    lines.append(f"command: {' '.join(argv)}")
    lines.append(f"cwd: {cwd}")
    lines.append("")
    if stack is not None:
        lines += ["Stack of the main thread:", *stack.rstrip("\n").splitlines()]
    lines += "".join(traceback.format_exception(exc)).rstrip("\n").splitlines()
    return without_credentials("\n".join(lines)) + "\n\n"


def entries(text: str) -> list[str]:
    """The entries of a crash log, oldest first."""
    starts = [m.start() for m in ENTRY_LINE.finditer(text)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def _bounded(kept: list[str], new: str) -> str:
    if len(new.encode()) > MAX_BYTES:  # one huge traceback: keep its head and its end
        half = MAX_BYTES // 2 - 64
        new = f"{new[:half]}\n[... cut to fit {MAX_BYTES} bytes ...]\n{new[-half:]}"
    chosen = [new]
    size = len(new.encode())
    for old in reversed(kept[max(0, len(kept) - KEEP_ENTRIES + 1) :]):
        size += len(old.encode())
        if size > MAX_BYTES:
            break
        chosen.insert(0, old)
    return "".join(chosen)


def write(
    exc: BaseException,
    argv: Sequence[str],
    path: Path | None = None,
    *,
    stack: str | None = None,
    redact: Callable[[str], str] | None = None,
) -> CrashLog:
    """Append a report of `exc` to the crash log (at `path`, else the default place), keeping
    the newest entries; replaced whole (temp file and rename), so a reader never sees half an
    entry. `redact` removes secrets the caller knows of (credentials in URIs always are).
    Never raises."""
    try:
        path = default_path() if path is None else path
    except Exception as err:  # never let the report hide the crash
        return CrashLog(cache_dir() / FILE_NAME, f"{type(err).__name__}: {err}")
    try:
        new = entry(exc, argv, stack=stack)
        if redact is not None:
            new = redact(new)
    except Exception as err:
        new = f"{ENTRY_START}? ({time.time():.3f}) ===\n(report failed: {err!r})\n{exc!r}\n\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 2 * MAX_BYTES))
                old = entries(fh.read().decode("utf-8", "replace"))
        except FileNotFoundError:
            old = []
        fd, tmp = tempfile.mkstemp(prefix=".crash-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(_bounded(old, new))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as err:
        return CrashLog(path, err.strerror or str(err))
    except Exception as err:
        return CrashLog(path, f"{type(err).__name__}: {err}")
    return CrashLog(path)


def last_crash(path: Path, command: str) -> float | None:
    """When the newest entry whose command line starts with `command` was written (None when
    there is none, or no readable log)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    newest = None
    for block in entries(text):
        header = ENTRY_LINE.match(block)
        command_line = next(
            (ln[len("command: ") :] for ln in block.splitlines() if ln.startswith("command: ")), ""
        )
        if header and command_line.startswith(command):
            newest = max(newest or 0.0, float(header.group(2)))
    return newest


def summary(exc: BaseException) -> str:
    """`Type: first line of the message`, short enough for one line."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    first = first if len(first) <= 300 else first[:297] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
