"""Fault matrix, MLflow linking: `tag-mlflow` (queue, detached delivery, `--sync`) and `pending`
against a real `mlflow server` that is slowed, paused (SIGSTOP), stopped (SIGTERM) and
restarted, a proxy in front of it that misbehaves on purpose, killed deliveries, parallel
deliveries and a real full filesystem.

Every command runs as the installed console script (tests/reliability.py: exit code, no
traceback, no user file altered). Every detached delivery process a test starts is waited for
or killed by its PID before the test ends.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import commit, git, wait_until, write
from tests.mlflow_fixtures import (
    MLFLOW_WARNINGS,
    MlflowServer,
    queue_files,
    status_server,
    store_lock,
)
from tests.reliability import REPRO, Outcome, assert_no_crash, cli, unchanged
from tests.stamp_helpers import dvc_file, md5_of, stamped_run

pytestmark = MLFLOW_WARNINGS

DVC_FILE = "outs:\n- md5: {md5}\n  size: 3\n  hash: md5\n  path: {path}\n"


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def new_run(uri: str, experiment: str, source_commit: str) -> str:
    c = client(uri)
    found = c.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else c.create_experiment(experiment)
    run = c.create_run(exp_id, tags={"mlflow.source.git.commit": source_commit})
    c.set_terminated(run.info.run_id)
    time.sleep(0.005)
    return str(run.info.run_id)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def tags(uri: str, run_id: str) -> dict[str, str]:
    return dict(client(uri).get_run(run_id).data.tags)


def inputs(uri: str, run_id: str) -> list[tuple[str, str]]:
    return sorted(
        (i.dataset.name, i.dataset.digest)
        for i in client(uri).get_run(run_id).inputs.dataset_inputs
    )


# ---- our own detached deliverers ----------------------------------------------------------------


def deliverer_pids(repo: Path) -> list[int]:
    """PIDs of the detached delivery processes started for this repository (by their command
    line, which names its git directory)."""
    marker = str(repo / ".git").encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"repro_hooks.links.delivery" in cmdline and marker in cmdline:
                pids.append(int(entry))
    return pids


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not any(Path(f"/proc/{p}").exists() and _alive(p) for p in pids),
        lambda: f"still alive after SIGKILL: {pids}",
        cap=120,
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(autouse=True)
def no_deliverer_left(repo: Path) -> Iterator[None]:
    yield
    kill(deliverer_pids(repo))


def queue_only(repo: Path, *args: str) -> Outcome:
    """What the post-commit hook runs, with its detached deliverer stopped before it could take
    its store's lock: the job waits for the `--sync` under test."""
    uri = args[args.index("--tracking-uri") + 1]
    with store_lock(repo, uri):
        out = cli(repo, "tag-mlflow", *args)
        kill(deliverer_pids(repo))
    return out


def data_md5(n: int) -> str:
    return md5_of(f"data {n}\n".encode())


def commit_with_run(repo: Path, uri: str, experiment: str, n: int) -> tuple[str, str]:
    """Data d<n> under DVC, a run of this clone that saw it (stamped), then the commit."""
    data = f"data {n}\n".encode()
    write(repo / f"d{n}", data)
    write(repo / f"d{n}.dvc", dvc_file(f"d{n}", data))
    with (repo / ".gitignore").open("a") as fh:
        fh.write(f"/d{n}\n")
    run_id = stamped_run(uri, repo, experiment)
    commit(repo, f"commit {n}")
    return head(repo), run_id


def sync(repo: Path, *args: str) -> Outcome:
    with unchanged(repo):
        return cli(repo, "tag-mlflow", "--sync", *args, timeout=900)


def linked_lines(text: str) -> list[str]:
    return re.findall(r"^([0-9a-f]{12}): linked to run (\w+)", text, re.M)


# ---- a proxy in front of the real server that misbehaves on purpose ---------------------------


class Proxy:
    """Forwards to `upstream`; can delay every answer, answer 200 with garbage, call a hook
    after a runs/search answer, forward a matching request and then withhold the answer
    (`hold`), or withhold a matching request itself, never forwarding it (`block`)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.delay = 0.0
        self.garbage = False
        self.after_search: Callable[[], None] | None = None
        self.hold: str | None = None
        self.block: str | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.seen.append(f"{self.command} {self.path}")
                time.sleep(proxy.delay)
                if proxy.block and re.search(proxy.block, self.path):
                    proxy.holding.set()
                    proxy.release.wait(60)
                    with contextlib.suppress(OSError):
                        self.send_error(502)
                    return
                if proxy.garbage:
                    status, data = 200, b'{"run": {"info": [not json'
                else:
                    status, data = proxy.forward(self.command, self.path, body)
                if proxy.after_search is not None and "runs/search" in self.path:
                    hook, proxy.after_search = proxy.after_search, None
                    hook()
                if proxy.hold and re.search(proxy.hold, self.path):
                    proxy.holding.set()
                    proxy.release.wait(60)
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def forward(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.upstream + path,
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError as exc:  # upstream gone: what a real reverse proxy says
            return 502, str(exc).encode()

    def __enter__(self) -> Proxy:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- slow, broken and racing answers ----------------------------------------------------------


def test_slow_answers_within_and_beyond_the_deadline(
    repo: Path, mlflow_server: MlflowServer
) -> None:
    exp = "slow"
    with Proxy(mlflow_server.url) as proxy:
        c1, r1 = commit_with_run(repo, mlflow_server.url, exp, 1)
        assert queue_only(repo, "--tracking-uri", proxy.url, "--experiment", exp).code == 0
        proxy.delay = 0.3  # every answer late, within the (generous, tests') deadline
        out = sync(repo, "--tracking-uri", proxy.url)
        assert out.code == 0, out
        assert linked_lines(out.out) == [(c1[:12], r1)]
        c2, r2 = commit_with_run(repo, mlflow_server.url, exp, 2)
        assert queue_only(repo, "--tracking-uri", proxy.url, "--experiment", exp).code == 0
        proxy.delay = 60.0  # beyond it, whatever the load
        out = sync(repo, "--tracking-uri", proxy.url, "--timeout", "2")
        assert out.code == 1, out
        assert f"link {c2[:12]}: not delivered (stays queued): timed out after 2s" in out.out
        assert "timed out" in cli(repo, "pending").out
        proxy.delay = 0.0
        out = sync(repo, "--tracking-uri", proxy.url)
    assert out.code == 0, out
    assert linked_lines(out.out) == [(c2[:12], r2)]  # once
    assert tags(mlflow_server.url, r1)["git.commit"] == c1
    assert tags(mlflow_server.url, r2)["git.commit"] == c2
    assert inputs(mlflow_server.url, r2) == [("d1", data_md5(1)), ("d2", data_md5(2))]
    assert not queue_files(repo)


def test_malformed_json_in_a_200_answer(repo: Path) -> None:
    with Proxy("http://127.0.0.1:9") as proxy:
        proxy.garbage = True
        write(repo / "x.txt", "x")
        commit(repo, "x")
        assert queue_only(repo, "--tracking-uri", proxy.url).code == 0
        out = sync(repo, "--tracking-uri", proxy.url, "--timeout", "300")
    assert proxy.seen
    assert out.code == 1, out
    line = next(x for x in out.out.splitlines() if "not delivered (stays queued)" in x)
    assert line.endswith("answered with something that is not JSON (a proxy or login page?)")
    assert len(queue_files(repo)) == 1
    assert "last error" in cli(repo, "pending").out


def test_unavailable_503_is_named_in_one_line(repo: Path) -> None:
    with status_server(503) as (url, seen):
        write(repo / "x.txt", "x")
        commit(repo, "x")
        assert queue_only(repo, "--tracking-uri", url).code == 0
        out = sync(repo, "--tracking-uri", url, "--timeout", "300")
    assert seen
    assert out.code == 1, out
    assert out.out == (
        f"link {head(repo)[:12]}: not delivered (stays queued): "
        f"{url}/api/2.0/mlflow/experiments/search: HTTP 503 from the tracking store\n"
    )
    assert len(queue_files(repo)) == 1


def test_run_deleted_between_search_and_write(repo: Path, mlflow_server: MlflowServer) -> None:
    exp = "deleted-midway"
    c1, r1 = commit_with_run(repo, mlflow_server.url, exp, 1)
    with Proxy(mlflow_server.url) as proxy:
        proxy.after_search = lambda: client(mlflow_server.url).delete_run(r1)
        assert queue_only(repo, "--tracking-uri", proxy.url, "--experiment", exp).code == 0
        out = sync(repo, "--tracking-uri", proxy.url)
        assert out.code == 1, out
        assert f"link {c1[:12]}: not delivered (stays queued): " in out.out
        assert "must be in the 'active' state" in out.out
        out = sync(repo, "--tracking-uri", proxy.url)  # the retry: the run is gone
    assert out.code == 0, out
    assert f"{c1[:12]}: nothing linked: no run started before the commit" in out.out
    assert "git.commit" not in tags(mlflow_server.url, r1)
    assert not queue_files(repo)


def test_tag_limits_long_remote_url_and_branch(repo: Path, sqlite_store: str) -> None:
    exp = "limits"
    branch = "b/" + "x" * 240
    git(repo, "checkout", "-q", "-b", branch)
    git(repo, "remote", "add", "origin", "https://example.com/" + "r" * 9000 + ".git")
    c1, r1 = commit_with_run(repo, sqlite_store, exp, 1)
    assert queue_only(repo, "--tracking-uri", sqlite_store, "--experiment", exp).code == 0
    out = sync(repo, "--tracking-uri", sqlite_store)
    assert out.code == 0, out
    got = tags(sqlite_store, r1)
    assert got["git.commit"] == c1
    assert got["git.branch"] == branch
    assert 8000 >= len(got["git.repo_url"]) > 7000


# ---- a real server paused, stopped and restarted -----------------------------------------------


@pytest.mark.e2e
def test_server_paused_stopped_and_restarted(
    repo: Path, make_server: Callable[[], MlflowServer]
) -> None:
    server = make_server()
    server.start()
    assert server.proc is not None
    exp = "outage"
    c1, r1 = commit_with_run(repo, server.url, exp, 1)
    assert queue_only(repo, "--tracking-uri", server.url, "--experiment", exp).code == 0
    os.killpg(server.proc.pid, signal.SIGSTOP)  # paused: connections accepted, never answered
    try:
        out = sync(repo, "--tracking-uri", server.url, "--timeout", "2")
        assert out.code == 1, out
        assert f"link {c1[:12]}: not delivered (stays queued): timed out after 2s" in out.out
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)
    out = sync(repo, "--tracking-uri", server.url)
    assert out.code == 0, out
    assert linked_lines(out.out) == [(c1[:12], r1)]

    # two more commits, then the server is stopped (SIGTERM) for the whole delivery
    c2, r2 = commit_with_run(repo, server.url, exp, 2)
    assert queue_only(repo, "--tracking-uri", server.url, "--experiment", exp).code == 0
    c3, r3 = commit_with_run(repo, server.url, exp, 3)
    assert queue_only(repo, "--tracking-uri", server.url, "--experiment", exp).code == 0
    server.stop()
    out = sync(repo, "--tracking-uri", server.url, "--timeout", "300")
    assert out.code == 1, out
    assert f"link {c2[:12]}: not delivered (stays queued): {server.url}/api/2.0/mlflow/" in out.out
    assert ": connection refused (is the tracking server running?)" in out.out
    assert len(out.out.splitlines()[0]) < 200
    assert "tag-mlflow: 1 later link(s) wait behind it" in out.out
    assert len(queue_files(repo)) == 2  # MLflow down for the whole run: 0 links lost
    server.start()
    out = sync(repo, "--tracking-uri", server.url)
    assert out.code == 0, out
    assert linked_lines(out.out) == [(c2[:12], r2), (c3[:12], r3)]  # in order, once each
    assert [tags(server.url, r)["git.commit"] for r in (r1, r2, r3)] == [c1, c2, c3]
    assert not queue_files(repo)


# ---- concurrency --------------------------------------------------------------------------------


@pytest.mark.e2e
def test_delivery_killed_midway_is_completed_once(repo: Path, mlflow_server: MlflowServer) -> None:
    """The detached deliverer is SIGKILLed after MLflow received its last write but before it
    could drop the job: the retry writes the same link again, without duplicates."""
    exp = "killed"
    c1, r1 = commit_with_run(repo, mlflow_server.url, exp, 1)
    with Proxy(mlflow_server.url) as proxy:
        proxy.hold = r"runs/log-inputs"
        out = cli(repo, "tag-mlflow", "--tracking-uri", proxy.url, "--experiment", exp)
        assert out.code == 0, out
        assert proxy.holding.wait(60), proxy.seen
        pids = deliverer_pids(repo)
        assert len(pids) == 1
        kill(pids)
        proxy.release.set()
        assert inputs(mlflow_server.url, r1) == [("d1", data_md5(1))]  # the write had landed
        assert len(queue_files(repo)) == 1  # and the job is still there
        proxy.hold = None
        out = sync(repo, "--tracking-uri", proxy.url)
    assert out.code == 0, out
    assert linked_lines(out.out) == [(c1[:12], r1)]
    assert tags(mlflow_server.url, r1)["git.commit"] == c1
    assert inputs(mlflow_server.url, r1) == [("d1", data_md5(1))]  # no duplicate
    assert not queue_files(repo)


@pytest.mark.e2e
def test_half_written_link_is_completed_on_retry(repo: Path, mlflow_server: MlflowServer) -> None:
    """The delivery stops before its last write, the `git.commit` marker (its `set-tag`
    request never reaches MLflow; the process is killed there, as a deadline would stop it):
    the run has the dataset input and the dvc.* tags but no `git.commit`, and the job is still
    queued. The retry completes the same link; a half-written link is never the final state."""
    exp = "half-written"
    c1, r1 = commit_with_run(repo, mlflow_server.url, exp, 1)
    d1 = md5_of(b"data 1\n")
    with Proxy(mlflow_server.url) as proxy:
        proxy.block = r"runs/set-tag"
        out = cli(repo, "tag-mlflow", "--tracking-uri", proxy.url, "--experiment", exp)
        assert out.code == 0, out
        assert proxy.holding.wait(120), proxy.seen
        kill(deliverer_pids(repo))
        half = tags(mlflow_server.url, r1)
        assert "git.commit" not in half  # half written: no marker,
        assert half["dvc.d1"] == d1  # the rest of the tags
        assert inputs(mlflow_server.url, r1) == [("d1", d1)]  # and the dataset input
        assert len(queue_files(repo)) == 1  # and the job kept
        assert f"link {c1[:12]}" in cli(repo, "pending").out
        proxy.block = None
        proxy.release.set()
        out = sync(repo, "--tracking-uri", proxy.url)
    assert out.code == 0, out
    assert linked_lines(out.out) == [(c1[:12], r1)]
    assert tags(mlflow_server.url, r1)["git.commit"] == c1
    assert inputs(mlflow_server.url, r1) == [("d1", d1)]
    assert not queue_files(repo)


@pytest.mark.e2e
def test_two_syncs_in_parallel(repo: Path, mlflow_server: MlflowServer) -> None:
    exp = "parallel"
    c1, r1 = commit_with_run(repo, mlflow_server.url, exp, 1)
    assert queue_only(repo, "--tracking-uri", mlflow_server.url, "--experiment", exp).code == 0
    c2, r2 = commit_with_run(repo, mlflow_server.url, exp, 2)
    assert queue_only(repo, "--tracking-uri", mlflow_server.url, "--experiment", exp).code == 0
    procs = [
        subprocess.Popen(
            [REPRO, "tag-mlflow", "--sync", "--tracking-uri", mlflow_server.url],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    for proc, text in zip(procs, outputs, strict=True):
        assert_no_crash(text)
        assert proc.returncode == 0, text
    delivered = [line for text in outputs for line in linked_lines(text)]
    assert sorted(delivered) == sorted([(c1[:12], r1), (c2[:12], r2)]), outputs  # no duplicate
    for text in outputs:  # each sync's own lines in commit order
        mine = linked_lines(text)
        assert mine == sorted(mine, key=[(c1[:12], r1), (c2[:12], r2)].index)
    assert tags(mlflow_server.url, r1)["git.commit"] == c1
    assert tags(mlflow_server.url, r2)["git.commit"] == c2
    assert not queue_files(repo)


# ---- a real full filesystem -------------------------------------------------------------------


@pytest.mark.e2e
def test_full_filesystem_keeps_the_commit(repo: Path, sqlite_store: str) -> None:
    """A 64 KiB tmpfs mounted over the queue's directory and filled up (root only; the
    in-process ENOSPC test in tests/test_tag_mlflow.py covers the same path elsewhere)."""
    base = repo / ".git" / "repro-hooks"
    base.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(base)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        exp = "full"
        c1, r1 = commit_with_run(repo, sqlite_store, exp, 1)  # the run is stamped, then it fills
        filler = base / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        with unchanged(repo):
            out = cli(repo, "tag-mlflow", "--tracking-uri", sqlite_store, "--experiment", exp)
        assert out.code == 1, out
        assert f"tag-mlflow: {c1[:12]}: link NOT queued (No space left on device)" in out.out
        assert "the commit itself is intact" in out.out
        assert head(repo) == c1
        assert git(repo, "status", "--porcelain") == ""
        assert not queue_files(repo)
        filler.unlink()  # space again: queue it as the message says
        assert queue_only(repo, "--tracking-uri", sqlite_store, "--experiment", exp).code == 0
        out = sync(repo, "--tracking-uri", sqlite_store)
        assert out.code == 0, out
        assert linked_lines(out.out) == [(c1[:12], r1)]
    finally:
        kill(deliverer_pids(repo))
        subprocess.run(["umount", "-l", str(base)], check=False)
