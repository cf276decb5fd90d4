"""The durable queue of run links under `<git common dir>/repro-hooks/queue/`.

A post-commit hook writes one small JSON job (temp file, fsync, rename: a job is either whole or
absent) and starts a detached delivery process. The queue is one queue per tracking store (its
`store_key`): each store's jobs are delivered strictly in order under that store's own exclusive
`fcntl.flock` (`locks/<key>.lock`), so two deliverers never race on a store, an earlier commit
always gets its run before a later one, and a store that never answers holds back only its own
jobs. A job that fails stays queued with its last error.

Jobs hold no credentials: the tracking URI is stored stripped; delivery re-resolves the full URI
and tokens from the environment and configuration.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from repro_hooks.tracking.mlflow import anchored_uri

JOB_VERSION = 1
LOG_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Job:
    """One link to deliver. kind "link": link `commit` to its run; kind "relink": move links
    from each rewritten commit to its new commit (`pairs`)."""

    id: str
    kind: str
    root: str  # the work tree the commit was made in
    tracking_uri: str  # credentials stripped
    uri_origin: str
    commit: str | None = None
    branch: str | None = None
    before_ms: int = 0  # runs must have started before this (the commit's creation)
    experiments: tuple[str, ...] = ()
    run_id: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    created: float = 0.0
    attempts: int = 0
    last_error: str | None = None
    version: int = JOB_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "relink":
            moved = ", ".join(f"{o[:12]}->{n[:12]}" for o, n in self.pairs)
            return f"relink {moved}"
        return f"link {(self.commit or '')[:12]}"

    @property
    def store_key(self) -> str:
        """Which store's queue the job is in: the stripped URI, a relative local store anchored
        at the work tree it was committed in."""
        return store_key(self.tracking_uri, self.root)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Job:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("version") != JOB_VERSION:
            raise ValueError("unknown job format")
        raw["experiments"] = tuple(raw.get("experiments") or ())
        raw["pairs"] = tuple(tuple(p) for p in raw.get("pairs") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


def store_key(tracking_uri: str, root: str) -> str:
    """A short stable name for one tracking store (credentials are never part of it)."""
    anchored = anchored_uri(tracking_uri, Path(root))
    return hashlib.sha256(anchored.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class QueueFullError(OSError):
    """The job could not be written (disk full, read-only git dir...)."""


class LinkQueue:
    def __init__(self, common_dir: Path) -> None:
        self.base = common_dir / "repro-hooks"
        self.dir = self.base / "queue"
        self.locks = self.base / "locks"
        self.log_path = self.base / "delivery.log"
        self.crash_log = self.base / "crash.log"  # repro_hooks/crash.py writes it
        self.delivered_mark = self.base / "last-delivery"  # its mtime: the last job delivered

    # ---- writing -------------------------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        return f"{time.time_ns():020d}-{os.getpid()}-{kind}"

    def put(self, job: Job) -> Path:
        """Write a job atomically: temp file in the same directory, fsync, rename, fsync dir."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(job.to_json())
                    fh.flush()
                    os.fsync(fh.fileno())
                target = self.dir / f"{job.id}.json"
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise QueueFullError(exc.errno, exc.strerror or str(exc)) from None
        return target

    def remove(self, job: Job) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / f"{job.id}.json").unlink()

    def mark_delivered(self) -> None:
        """Note that a job was delivered now (a crash log older than that is history)."""
        with contextlib.suppress(OSError):
            self.delivered_mark.touch()

    def last_delivered(self) -> float | None:
        try:
            return self.delivered_mark.stat().st_mtime
        except OSError:
            return None

    def record_failure(self, job: Job, error: str) -> Job:
        updated = replace(job, attempts=job.attempts + 1, last_error=error)
        if (self.dir / f"{job.id}.json").exists():  # not dropped meanwhile
            with contextlib.suppress(OSError):  # a full disk keeps the previous record
                self.put(updated)
        return updated

    # ---- reading -------------------------------------------------------------------------------

    def jobs(self, store: str | None = None) -> list[Job]:
        """Queued jobs, oldest first (only `store`'s when given). Unreadable files are skipped
        (and left alone)."""
        try:
            names = sorted(p for p in os.listdir(self.dir) if p.endswith(".json"))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                job = Job.from_json((self.dir / name).read_bytes())
            except (OSError, ValueError, TypeError):
                continue
            if store is None or job.store_key == store:
                out.append(job)
        return out

    def stores(self) -> list[str]:
        """The stores with queued jobs, the one with the oldest job first."""
        keys: dict[str, None] = {}
        for job in self.jobs():
            keys.setdefault(job.store_key, None)
        return list(keys)

    def stuck(self, now: float, attempts: int, hours: float) -> list[Job]:
        """Jobs that look stuck: failed `attempts` times (each commit retries), or queued more
        than `hours` ago whatever happened to them."""
        return [
            j
            for j in self.jobs()
            if (j.last_error and j.attempts >= attempts) or now - j.created >= hours * 3600
        ]

    # ---- delivery ------------------------------------------------------------------------------

    def lock_path(self, store: str) -> Path:
        return self.locks / f"{store}.lock"

    @contextlib.contextmanager
    def locked(self, store: str, wait: float) -> Iterator[bool]:
        """Hold one store's delivery lock; yields False if it could not be had within `wait`
        seconds. Other stores' deliveries are not held up by it."""
        self.locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path(store), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.05)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def log(self, line: str) -> None:
        """Append one (already redacted) line to the delivery log; trims it past 1 MiB."""
        with contextlib.suppress(OSError):
            if self.log_path.exists() and self.log_path.stat().st_size > LOG_LIMIT:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def spawn_deliverer(self, cwd: Path, env: Mapping[str, str], store: str | None = None) -> None:
        """Start a detached delivery process per store (`store`, else each store with queued
        jobs), so a store that never answers delays no other: its own session, no terminal, no
        inherited pipes (pre-commit waits for its pipes to close; this process must not hold
        them)."""
        for key in [store] if store is not None else self.stores():
            subprocess.Popen(
                [sys.executable, "-m", "repro_hooks.links.delivery", str(self.base.parent), key],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
