"""Delivering queued run links to MLflow, in order, within bounded time.

Run as `python -m repro_hooks.links.delivery <git common dir>` (the detached process a
post-commit hook starts) or in the foreground by `repro-hooks tag-mlflow --sync`.

Bounds: MLflow's HTTP client is told to give up fast (one retry, no backoff, a request timeout
of half the job's deadline), every job runs under a SIGALRM deadline, and the detached process
exits after a hard deadline whatever happens. A failed job keeps its place at the head of the
queue with its last error: later jobs wait for it, so every commit gets its own run, in order.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.links.core import (
    anchored_uri,
    missing_local_store,
    redact,
    secrets_in,
    strip_credentials,
)
from repro_hooks.links.linker import link_commit, relink_commit
from repro_hooks.links.queue import Job, LinkQueue

URI_ENV = "REPRO_HOOKS_MLFLOW_URI"  # the full URI, handed to the detached process only
BACKGROUND_LOCK_WAIT = 120.0
BACKGROUND_HARD_DEADLINE = 600.0


class DeliveryTimeout(BaseException):
    """The job's deadline passed (BaseException: no library may swallow it)."""


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)  # one line per job done
    failed: list[tuple[Job, str]] = field(default_factory=list)
    waiting: int = 0  # jobs left behind a failed one
    lock_busy: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.lock_busy


HTTP_KNOBS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


def set_http_bounds(env: Any, timeout: float) -> None:
    """MLflow reads these on every request: give up fast, the queue retries later."""
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
    env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "0"
    env["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0"
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.floor(timeout / 2)))


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise DeliveryTimeout in the main thread after `seconds` (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise DeliveryTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def full_uri(job: Job, candidates: list[str | None]) -> str:
    """The URI to open for a job: the first known full URI whose stripped form is the job's
    (credentials come from the environment or configuration, never from the queue)."""
    for candidate in candidates:
        if candidate and strip_credentials(candidate) == job.tracking_uri:
            return candidate
    return job.tracking_uri


class Deliverer:
    def __init__(
        self,
        queue: LinkQueue,
        env: Mapping[str, str],
        *,
        uri_option: str | None = None,
        timeout: float | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.queue = queue
        self.env = env
        self.uri_option = uri_option
        self.timeout = timeout
        self.out = out
        self.stores: dict[str, Any] = {}
        self.configs: dict[str, Any] = {}
        self.secrets = secrets_in(uri_option, env) + secrets_in(env.get(URI_ENV), env)

    def safe(self, text: str) -> str:
        return redact(text, self.secrets)

    def _config(self, root: str) -> Any:
        if root not in self.configs:
            from repro_hooks.policy.config import MlflowConfig, load_config

            try:
                self.configs[root] = load_config(Path(root)).mlflow
            except ReproHooksError:
                self.configs[root] = MlflowConfig()
        return self.configs[root]

    def _timeout(self, job: Job) -> float:
        return self.timeout if self.timeout is not None else float(self._config(job.root).timeout)

    def _store(self, job: Job) -> Any:
        configured = self._config(job.root).tracking_uri
        uri = full_uri(
            job,
            [self.uri_option, self.env.get(URI_ENV), self.env.get("MLFLOW_TRACKING_URI"),
             configured],
        )  # fmt: skip
        self.secrets = sorted(
            set(self.secrets) | set(secrets_in(uri, self.env)), key=len, reverse=True
        )
        why_not = missing_local_store(uri, Path(job.root))
        if why_not:
            raise ReproHooksError(why_not)
        uri = anchored_uri(uri, Path(job.root))  # never let MLflow resolve it against our cwd
        if uri not in self.stores:
            from repro_hooks.links.store import MlflowStore

            if uri.startswith("file:") or "://" not in uri:
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self.stores[uri] = MlflowStore(uri)
        return self.stores[uri]

    # ---- one job -------------------------------------------------------------------------------

    def deliver(self, job: Job) -> str:
        git = Git.discover(job.root)
        store = self._store(job)
        if job.kind == "relink":
            return relink_commit(job, git, store)
        return link_commit(job, git, store)

    # ---- the queue -----------------------------------------------------------------------------

    def run(self, lock_wait: float) -> DeliveryReport:
        """Deliver every queued job in order; stop at the first failure (it stays queued).
        MLflow's HTTP knobs are set for the delivery and restored afterwards."""
        saved = {k: os.environ.get(k) for k in HTTP_KNOBS}
        try:
            return self._run(lock_wait)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _run(self, lock_wait: float) -> DeliveryReport:
        report = DeliveryReport()
        with self.queue.locked(lock_wait) as have_lock:
            if not have_lock:
                report.lock_busy = True
                return report
            attempted: set[str] = set()
            while True:
                jobs = [j for j in self.queue.jobs() if j.id not in attempted]
                if not jobs:
                    break
                job = jobs[0]
                attempted.add(job.id)
                timeout = self._timeout(job)
                set_http_bounds(os.environ, timeout)
                try:
                    # a library's deprecation warning must neither fail a delivery (under
                    # -W error) nor reach the user's terminal or the log
                    with deadline(timeout), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        line = self.deliver(job)
                except DeliveryTimeout:
                    error = f"timed out after {timeout:g}s (tracking store not answering)"
                except ReproHooksError as exc:
                    error = str(exc)
                except Exception as exc:
                    error = _one_line(exc)
                else:
                    self.queue.remove(job)
                    line = self.safe(line)
                    report.delivered.append(line)
                    self.out(line)
                    continue
                error = self.safe(error)
                updated = self.queue.record_failure(job, error)
                report.failed.append((updated, error))
                report.waiting = len(jobs) - 1
                self.out(f"{job.describe()}: not delivered (stays queued): {error}")
                break
        return report


# MLflow wraps urllib3's connection errors in one long sentence ("API request to <url> failed
# with exception HTTPConnectionPool(...): Max retries exceeded ... (Caused by NewConnectionError(
# ...: [Errno 111] Connection refused))"): say what happened in a few words instead.
_REQUEST_FAILED = re.compile(r"^API request to (\S+) failed with exception ")
_CAUSES = (
    ("Connection refused", "connection refused (is the tracking server running?)"),
    ("Read timed out", "no answer in time"),
    ("Name or service not known", "unknown host"),
    ("Temporary failure in name resolution", "unknown host"),
    ("No route to host", "no route to host"),
    ("Connection reset", "connection reset by the tracking server"),
    ("RemoteDisconnected", "the tracking server closed the connection"),
)
_NOT_JSON = "response body was not in a valid JSON format"


def _one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = str(message).strip()
    found = _REQUEST_FAILED.match(text)
    if found:
        endpoint = found.group(1).split("?", 1)[0]
        status = re.search(r"too many (\d{3}) error responses", text)
        if status:
            return f"{endpoint}: HTTP {status.group(1)} from the tracking store"
        for needle, cause in _CAUSES:
            if needle in text:
                return f"{endpoint}: {cause}"
    if _NOT_JSON in text:
        return (
            "the tracking store answered with something that is not JSON (a proxy or login page?)"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


def main(argv: list[str]) -> int:
    """The detached delivery process. Writes only to the delivery log."""
    if len(argv) != 1:
        return 2
    queue = LinkQueue(Path(argv[0]))
    watchdog = threading.Timer(BACKGROUND_HARD_DEADLINE, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    deliverer = Deliverer(queue, dict(os.environ), out=lambda line: None)
    deliverer.out = queue.log
    try:
        report = deliverer.run(BACKGROUND_LOCK_WAIT)
    except BaseException as exc:
        queue.log(deliverer.safe(f"delivery stopped: {_one_line(exc)}"))
        return 3
    if report.lock_busy:
        queue.log("another delivery held the lock too long; jobs stay queued")
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover - exercised through the detached process
    sys.exit(main(sys.argv[1:]))
