"""Delivering queued run links to MLflow, in order, within bounded time.

Run as `python -m repro_hooks.links.delivery <git common dir>` (the detached process a
post-commit hook starts) or in the foreground by `repro-hooks tag-mlflow --sync`.

Three parts, one responsibility each:
- `StoreOpener`: which store a job goes to (full URI and credentials from the option, the
  environment or the configuration, never from the queue), opened once per process. Opening
  imports mlflow: it happens before the job's deadline starts, so the deadline counts the store's
  answers, not the import.
- `Deliverer`: writing the link for one job (choose the run, write tags and dataset inputs).
- `QueueRunner`: one store's queue at a time under that store's lock, each job under its
  deadline; a failed job keeps its place at the head of its store's queue with its last error
  (later jobs of that store wait for it, so every commit gets its own run, in order), and the
  next store is delivered all the same.

Bounds: MLflow's HTTP client is told to give up fast (one retry, no backoff, a request timeout
of half the job's deadline), every job runs under a SIGALRM deadline, and the detached process
exits after a hard deadline whatever happens. A job leaves the queue only when its whole write
returned: a write cut short (tags written, dataset inputs not) is redone by the next delivery.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.links.linker import link_commit, relink_commit
from repro_hooks.links.queue import Job, LinkQueue
from repro_hooks.tracking.credentials import redact, secrets_in, strip_credentials
from repro_hooks.tracking.mlflow import anchored_uri, missing_local_store

if TYPE_CHECKING:
    from repro_hooks.policy.config import MlflowConfig
    from repro_hooks.tracking.port import Tracker

URI_ENV = "REPRO_HOOKS_MLFLOW_URI"  # the full URI, handed to the detached process only
TIMEOUT_ENV = "REPRO_HOOKS_MLFLOW_TIMEOUT"  # the deadline per job, over the configuration
BACKGROUND_LOCK_WAIT = 120.0
BACKGROUND_HARD_DEADLINE = 600.0
# Opening a store (importing mlflow; for a database, its schema check) is not the store's
# answering time and does not count in the job's deadline; it has this bound of its own.
OPEN_DEADLINE = 120.0


class DeliveryTimeout(BaseException):
    """The job's deadline passed (BaseException: no library may swallow it)."""


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)  # one line per job done
    failed: list[tuple[Job, str]] = field(default_factory=list)
    waiting: int = 0  # jobs left behind a failed one (in its store's queue)
    lock_busy: bool = False  # some store's lock could not be had in time

    @property
    def ok(self) -> bool:
        return not self.failed and not self.lock_busy


HTTP_KNOBS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


def set_http_bounds(env: MutableMapping[str, str], timeout: float) -> None:
    """MLflow reads these on every request: give up fast, the queue retries later."""
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
    env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "0"
    env["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0"
    env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.floor(timeout / 2)))


@contextmanager
def deadline(seconds: float, error: type[BaseException] = DeliveryTimeout) -> Iterator[None]:
    """Raise `error` in the main thread after `seconds` (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise error()

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


def timeout_from_env(env: Mapping[str, str]) -> float | None:
    """REPRO_HOOKS_MLFLOW_TIMEOUT as seconds (None when unset); ReproHooksError when invalid."""
    raw = env.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= 3600:
        raise ReproHooksError(f"{TIMEOUT_ENV}={raw}: expected a number of seconds (0-3600]")
    return value


class StoreOpener:
    """The store each job goes to, opened once per process (the import of mlflow included)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        uri_option: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.env = env
        self.uri_option = uri_option
        self.timeout_option = timeout
        self.stores: dict[str, Tracker] = {}
        self.configs: dict[str, MlflowConfig] = {}
        self.secrets = secrets_in(uri_option, env) + secrets_in(env.get(URI_ENV), env)

    def safe(self, text: str) -> str:
        return redact(text, self.secrets)

    def config(self, root: str) -> MlflowConfig:
        if root not in self.configs:
            from repro_hooks.policy.config import MlflowConfig, load_config

            try:
                self.configs[root] = load_config(Path(root)).mlflow
            except ReproHooksError:
                self.configs[root] = MlflowConfig()
        return self.configs[root]

    def timeout(self, job: Job) -> float:
        """The job's deadline: --timeout, else REPRO_HOOKS_MLFLOW_TIMEOUT, else config."""
        if self.timeout_option is not None:
            return self.timeout_option
        from_env = timeout_from_env(self.env)
        if from_env is not None:
            return from_env
        return float(self.config(job.root).timeout)

    def open(self, job: Job) -> Tracker:
        configured = self.config(job.root).tracking_uri
        uri = full_uri(
            job,
            [
                self.uri_option,
                self.env.get(URI_ENV),
                self.env.get("MLFLOW_TRACKING_URI"),
                configured,
            ],
        )
        self.secrets = sorted(
            set(self.secrets) | set(secrets_in(uri, self.env)), key=len, reverse=True
        )
        why_not = missing_local_store(uri, Path(job.root))
        if why_not:
            raise ReproHooksError(why_not)
        uri = anchored_uri(uri, Path(job.root))  # never let MLflow resolve it against our cwd
        if uri not in self.stores:
            from repro_hooks.tracking.adapters import open_tracker

            self.stores[uri] = open_tracker(uri)
        return self.stores[uri]


class Deliverer:
    """Writes the link for one job (its store comes from the opener, already open)."""

    def __init__(self, opener: StoreOpener) -> None:
        self.opener = opener

    def _store(self, job: Job) -> Tracker:
        return self.opener.open(job)

    # ---- one job -------------------------------------------------------------------------------

    def deliver(self, job: Job) -> str:
        git = Git.discover(job.root)
        store = self._store(job)
        if job.kind == "relink":
            return relink_commit(job, git, store)
        return link_commit(job, git, store)


class QueueRunner:
    """Delivers the queue one store at a time, each store's jobs in order under its own lock."""

    def __init__(
        self,
        queue: LinkQueue,
        env: Mapping[str, str],
        *,
        uri_option: str | None = None,
        timeout: float | None = None,
        out: Callable[[str], None] = print,
        command: list[str] | None = None,
    ) -> None:
        self.queue = queue
        self.opener = StoreOpener(env, uri_option=uri_option, timeout=timeout)
        self.deliverer = Deliverer(self.opener)
        self.out = out
        self.command = command or ["repro-hooks", *sys.argv[1:]]  # for the crash log

    def safe(self, text: str) -> str:
        return self.opener.safe(text)

    def run(self, lock_wait: float, store: str | None = None) -> DeliveryReport:
        """Deliver every queued job (only `store`'s when given), each store's in order; a
        failure stops its own store only (the job stays queued). MLflow's HTTP knobs are set
        for the delivery and restored afterwards."""
        from repro_hooks.environ import restored

        report = DeliveryReport()
        with restored(os.environ, HTTP_KNOBS):
            for key in [store] if store is not None else self.queue.stores():
                self._run_store(key, lock_wait, report)
        return report

    def _run_store(self, store: str, lock_wait: float, report: DeliveryReport) -> None:
        with self.queue.locked(store, lock_wait) as have_lock:
            if not have_lock:
                report.lock_busy = True
                return
            attempted: set[str] = set()
            while True:
                jobs = [j for j in self.queue.jobs(store) if j.id not in attempted]
                if not jobs:
                    break
                job = jobs[0]
                attempted.add(job.id)
                error = self._attempt(job, report)
                if error is None:
                    continue
                updated = self.queue.record_failure(job, error)
                report.failed.append((updated, error))
                report.waiting += len(jobs) - 1
                self.out(f"{job.describe()}: not delivered (stays queued): {error}")
                break

    def _attempt(self, job: Job, report: DeliveryReport) -> str | None:
        """Deliver one job: None when done (and removed from the queue), else the error."""
        try:
            # a library's deprecation warning must neither fail a delivery (under -W error)
            # nor reach the user's terminal or the log
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                timeout = self.opener.timeout(job)
                try:
                    with deadline(OPEN_DEADLINE):  # the import of mlflow: not in the deadline
                        self.opener.open(job)
                except DeliveryTimeout:
                    return f"opening the tracking store took over {OPEN_DEADLINE:g}s"
                set_http_bounds(os.environ, timeout)
                try:
                    with deadline(timeout):
                        line = self.deliverer.deliver(job)
                except DeliveryTimeout:
                    return self.safe(f"timed out after {timeout:g}s (tracking store not answering)")
        except ReproHooksError as exc:
            return self.safe(str(exc))
        except Exception as exc:
            if not _a_bug(exc):
                return self.safe(_one_line(exc))
            from repro_hooks import crash

            log = crash.write(exc, self.command, self.queue.crash_log, redact=self.safe)
            return self.safe(f"internal error: {crash.summary(exc)}; {log.line()}")
        # the whole write returned: only now does the job leave the queue
        self.queue.remove(job)
        self.queue.mark_delivered()
        line = self.safe(line)
        report.delivered.append(line)
        self.out(line)
        return None


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
NOT_JSON = "response body was not in a valid JSON format"


def error_text(exc: BaseException) -> str:
    """The text of an MLflow client error (its `message`, else its str, else its type)."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).strip()


def request_failure(text: str, store: str = "tracking store") -> tuple[str, str] | None:
    """(endpoint, cause in a few words) of MLflow's one long "API request to <url> failed"
    sentence; None for any other text."""
    found = _REQUEST_FAILED.match(text)
    if not found:
        return None
    endpoint = found.group(1).split("?", 1)[0]
    status = re.search(r"too many (\d{3}) error responses", text)
    if status:
        return endpoint, f"HTTP {status.group(1)} from the {store}"
    for needle, cause in _CAUSES:
        if needle in text:
            return endpoint, cause
    return None


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _a_bug(exc: BaseException) -> bool:
    """Whether a failed job is our bug rather than the store's or the machine's answer: an
    untyped error (KeyError, TypeError...; not OSError, not one of our own error classes)
    raised by repro-hooks' own code. It stays queued like any failure, and leaves a crash log."""
    if isinstance(exc, OSError) or type(exc).__module__.startswith("repro_hooks."):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep)


def _one_line(exc: BaseException) -> str:
    text = error_text(exc)
    failed = request_failure(text)
    if failed:
        return f"{failed[0]}: {failed[1]}"
    if NOT_JSON in text:
        return (
            "the tracking store answered with something that is not JSON (a proxy or login page?)"
        )
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


COMMAND = "python -m repro_hooks.links.delivery"  # how its crash log entries name it


def _crashed(runner: QueueRunner, exc: BaseException, stack: str | None = None) -> None:
    """An unexpected end (exit 3): a crash log entry (`<git common dir>/repro-hooks/crash.log`,
    what `repro-hooks pending` points at; secrets redacted) and one line in the delivery log."""
    from repro_hooks import crash

    queue = runner.queue
    log = crash.write(exc, runner.command, queue.crash_log, stack=stack, redact=runner.safe)
    queue.log(runner.safe(f"delivery stopped: {_one_line(exc)}; {log.line()}"))


def _past_hard_deadline(runner: QueueRunner, main_thread: int) -> None:
    """The watchdog: where the process was, in the crash log, then exit 3 whatever happens."""
    try:
        import traceback

        frame = sys._current_frames().get(main_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else None
        limit = f"still delivering after the hard limit of {BACKGROUND_HARD_DEADLINE:g}s"
        _crashed(runner, TimeoutError(limit), stack)
    finally:
        os._exit(3)


def main(argv: list[str]) -> int:
    """The detached delivery process: `<git common dir> [<store key>]` (every store when no
    key is given). Writes only to the delivery log, and to the crash log when it ends with an
    unexpected error or past its hard limit (exit 3)."""
    if len(argv) not in (1, 2):
        return 2
    queue = LinkQueue(Path(argv[0]))
    runner = QueueRunner(queue, dict(os.environ), out=queue.log, command=[*COMMAND.split(), *argv])
    watchdog = threading.Timer(
        BACKGROUND_HARD_DEADLINE, _past_hard_deadline, (runner, threading.get_ident())
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        report = runner.run(BACKGROUND_LOCK_WAIT, argv[1] if len(argv) == 2 else None)
    except BaseException as exc:
        _crashed(runner, exc)
        return 3
    if report.lock_busy:
        queue.log("another delivery held the lock too long; jobs stay queued")
    return 0 if report.ok else 1


if __name__ == "__main__":  # pragma: no cover - exercised through the detached process
    sys.exit(main(sys.argv[1:]))
