"""Delivery of run links: one queue per tracking store, a deadline that counts the store's
answers (not the import of mlflow), a basic-auth server, and stuck links made visible through
real pre-commit and a real `git commit`.

Real components only: `mlflow server` (plain and `--app-name basic-auth`), a store that never
answers (a listening socket that never replies), git, pre-commit and the installed console
script. Tests wait on conditions; the only deadlines are those under test.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli as cli_main
from repro_hooks.links import delivery
from repro_hooks.links.delivery import OPEN_DEADLINE, QueueRunner
from repro_hooks.links.queue import Job, LinkQueue, store_key
from tests.helpers import CAP, commit, git, install_local_hooks, wait_until, write
from tests.mlflow_fixtures import (
    AUTH_PASSWORD,
    AUTH_USER,
    MLFLOW_WARNINGS,
    MlflowServer,
    queue_files,
    silent_server,
    store_lock,
    wait_unlocked,
)
from tests.reliability import cli
from tests.stamp_helpers import dvc_file, md5_of, stamped_run
from tests.test_reliability_mlflow import (
    deliverer_pids,
    head,
    inputs,
    kill,
    linked_lines,
    tags,
)

pytestmark = MLFLOW_WARNINGS

DVC_FILE = "outs:\n- md5: {md5}\n  size: 3\n  hash: md5\n  path: {path}\n"
HOOKS = ["mlflow-tag-commit"]
HOOK_TYPES = ["post-commit"]


@pytest.fixture(autouse=True)
def no_deliverer_left(repo: Path) -> Iterator[None]:
    yield
    kill(deliverer_pids(repo))


def wait_for(what: str, condition: Any) -> None:
    wait_until(condition, lambda: f"never happened: {what}")


def jobs(repo: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in queue_files(repo)]


def failed(repo: Path, uri: str) -> bool:
    """Whether a job for `uri` failed (then waiting on for its success is pointless)."""
    return any(j["last_error"] and j["tracking_uri"] == uri for j in jobs(repo))


def wait_unlocked_store(repo: Path, uri: str) -> None:
    with store_lock(repo, uri):
        pass


def queue_hold(repo: Path, uri: str, *args: str) -> None:
    """The post-commit step for `uri`, its detached deliverer stopped before it could start."""
    with store_lock(repo, uri):
        out = cli(repo, "tag-mlflow", "--tracking-uri", uri, *args)
        assert out.code == 0, out
        kill(deliverer_pids(repo))


def data(n: int) -> bytes:
    return f"data {n}\n".encode()


def write_data(repo: Path, n: int) -> None:
    """Data d<n> on disk, ignored by git (what `dvc add` leaves), once."""
    if not (repo / f"d{n}").exists():
        write(repo / f"d{n}", data(n))
        with (repo / ".gitignore").open("a") as fh:
            fh.write(f"/d{n}\n")


def data_run(repo: Path, uri: str, experiment: str, n: int) -> str:
    """A run of this clone (stamped, as the plugin stamps it) that saw data d<n>."""
    write_data(repo, n)
    return stamped_run(uri, repo, experiment)


def dvc_commit(repo: Path, n: int, verify: bool = False) -> str:
    write_data(repo, n)
    write(repo / f"d{n}.dvc", dvc_file(f"d{n}", data(n)))
    proc = commit(repo, f"commit {n}", verify=verify)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return head(repo)


# ---- one queue per store ----------------------------------------------------------------------


@pytest.mark.e2e
def test_dead_store_never_holds_back_a_live_one_through_pre_commit(
    repo: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commit 1 goes to a store that never answers; commit 2, later, to a working server.
    Through real pre-commit: commit 2 is linked while commit 1's delivery still hangs."""
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    with silent_server() as dead:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
        c1 = dvc_commit(repo, 1, verify=True)
        wait_for("the dead store's deliverer is running", lambda: deliverer_pids(repo))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        r2 = data_run(repo, mlflow_server.url, "live-beside-dead", 2)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "live-beside-dead")
        c2 = dvc_commit(repo, 2, verify=True)
        wait_for(
            "commit 2 linked (or failed)",
            lambda: failed(repo, mlflow_server.url) or len(queue_files(repo)) == 1,
        )
        wait_unlocked_store(repo, mlflow_server.url)
        assert tags(mlflow_server.url, r2)["git.commit"] == c2, cli(repo, "pending").out
        assert inputs(mlflow_server.url, r2) == [("d1", md5_of(data(1))), ("d2", md5_of(data(2)))]
        left = jobs(repo)
        assert [(j["commit"], j["tracking_uri"]) for j in left] == [(c1, dead)]
        assert left[0]["attempts"] == 0  # still hanging on the dead store: not a failure yet


def test_dead_store_fails_alone_and_keeps_its_order_in_sync(
    repo: Path, mlflow_server: MlflowServer
) -> None:
    """Queued in this order: dead 1, live 2, dead 3, live 4. `--sync` delivers both live links
    in order, and keeps both dead ones, in order, behind the first."""
    exp = "mixed-stores"
    with silent_server() as dead:
        commits: dict[int, str] = {}
        runs: dict[int, str] = {}
        for n in (1, 2, 3, 4):
            if n % 2 == 0:
                runs[n] = data_run(repo, mlflow_server.url, exp, n)
            commits[n] = dvc_commit(repo, n)
            uri = dead if n % 2 else mlflow_server.url
            queue_hold(repo, uri, "--experiment", exp)
        # one deadline for every job: the live ones' writes must fit in it on a loaded machine
        # (a second suite beside this one), and the dead store's one attempt waits it out
        out = cli(repo, "tag-mlflow", "--sync", "--timeout", "10", timeout=900)
    assert out.code == 1, out
    assert linked_lines(out.out) == [(commits[2][:12], runs[2]), (commits[4][:12], runs[4])]
    # the deadline or MLflow's own request timeout (half the deadline, once retried) ends it
    assert f"link {commits[1][:12]}: not delivered (stays queued): " in out.out
    assert "tag-mlflow: 1 later link(s) wait behind it" in out.out
    assert tags(mlflow_server.url, runs[2])["git.commit"] == commits[2]
    assert tags(mlflow_server.url, runs[4])["git.commit"] == commits[4]
    left = jobs(repo)
    assert [j["commit"] for j in left] == [commits[1], commits[3]]  # order kept in the store
    assert [j["attempts"] for j in left] == [1, 0]
    pending = cli(repo, "pending").out.splitlines()
    assert [line.split(": ")[1].split(" (")[0] for line in pending] == [
        f"link {commits[1][:12]} -> {dead}",
        f"link {commits[3][:12]} -> {dead}",
    ]


def test_each_store_has_its_own_lock_and_deliverer(repo: Path, tmp_path: Path) -> None:
    """Stores are told apart by their URI without credentials; a relative sqlite path by the
    work tree it is relative to. Two stores queue two deliverers."""
    a = store_key("http://127.0.0.1:5000", str(repo))
    assert a == store_key("http://127.0.0.1:5000", str(tmp_path))
    assert a != store_key("http://127.0.0.1:5001", str(repo))
    assert store_key("sqlite:///m.db", str(repo)) != store_key("sqlite:///m.db", str(tmp_path))
    queue = LinkQueue(repo / ".git")
    for n, uri in enumerate(["http://a.invalid", "http://b.invalid", "http://a.invalid"]):
        queue.put(
            Job(
                id=f"{n:020d}-1-link",
                kind="link",
                root=str(repo),
                tracking_uri=uri,
                uri_origin="option",
                commit="0" * 40,
            )
        )
    assert queue.stores() == [
        store_key("http://a.invalid", str(repo)),
        store_key("http://b.invalid", str(repo)),
    ]
    assert [j.id[:20] for j in queue.jobs(queue.stores()[0])] == ["0" * 20, f"{2:020d}"]


# ---- the deadline -----------------------------------------------------------------------------


def test_deadline_starts_after_the_store_is_opened(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the store (the import of mlflow, a database's schema check) runs under its own
    bound; the job's deadline is armed afresh when the writing starts. Read from the real
    interval timer at both moments, against a real sqlite store."""
    seen: dict[str, float] = {}
    runner = QueueRunner(LinkQueue(repo / ".git"), {}, uri_option=sqlite_store, timeout=7)
    real_open, real_deliver = runner.opener.open, runner.deliverer.deliver

    def open_store(job: Job) -> Any:
        seen.setdefault("open", signal.getitimer(signal.ITIMER_REAL)[0])
        return real_open(job)

    def deliver(job: Job) -> str:
        seen["deliver"] = signal.getitimer(signal.ITIMER_REAL)[0]
        return real_deliver(job)

    monkeypatch.setattr(runner.opener, "open", open_store)
    monkeypatch.setattr(runner.deliverer, "deliver", deliver)
    run_id = data_run(repo, sqlite_store, "deadline", 1)
    c1 = dvc_commit(repo, 1)
    queue_hold(repo, sqlite_store, "--experiment", "deadline")
    report = runner.run(lock_wait=CAP)
    assert report.ok, report
    assert tags(sqlite_store, run_id)["git.commit"] == c1
    assert 7 < seen["open"] <= OPEN_DEADLINE  # the open's own bound, not the job's 7 s
    assert 6 < seen["deliver"] <= 7  # the job's deadline, armed after the open


def test_timeout_from_the_environment_and_config(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = Job(
        id="1", kind="link", root=str(repo), tracking_uri="http://x.invalid", uri_origin="option"
    )
    write(repo / "pyproject.toml", "[tool.repro-hooks.mlflow]\ntimeout = 45\n")
    assert delivery.StoreOpener({}).timeout(job) == 45
    env = {delivery.TIMEOUT_ENV: "12.5"}
    assert delivery.StoreOpener(env).timeout(job) == 12.5
    assert delivery.StoreOpener(env, timeout=3).timeout(job) == 3
    (repo / "pyproject.toml").unlink()
    assert delivery.StoreOpener({}).timeout(job) == 30  # the default
    # an invalid value: --sync says so in one line (exit 2); a detached delivery keeps the job
    monkeypatch.setenv(delivery.TIMEOUT_ENV, "soon")
    LinkQueue(repo / ".git").put(job)
    result = CliRunner().invoke(cli_main, ["tag-mlflow", "--sync"])
    assert result.exit_code == 2, result.output
    assert "REPRO_HOOKS_MLFLOW_TIMEOUT=soon: expected a number of seconds" in result.output
    assert len(queue_files(repo)) == 1
    report = QueueRunner(LinkQueue(repo / ".git"), {delivery.TIMEOUT_ENV: "soon"}, out=str).run(
        lock_wait=CAP
    )
    assert "REPRO_HOOKS_MLFLOW_TIMEOUT=soon" in report.failed[0][1]
    assert len(queue_files(repo)) == 1


# ---- a basic-auth server --------------------------------------------------------------------


@pytest.mark.e2e
def test_basic_auth_server_gets_the_whole_link(
    repo: Path, auth_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow server --app-name basic-auth` (every request checks the password): credentials
    from MLFLOW_TRACKING_USERNAME/PASSWORD, the commit through real pre-commit, the detached
    delivery writes tags and dataset inputs; the password is written nowhere."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", AUTH_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", AUTH_PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "auth")
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    run_id = data_run(repo, auth_server.url, "auth", 1)
    c1 = dvc_commit(repo, 1, verify=True)
    wait_for(
        "the link delivered (or failed)",
        lambda: not queue_files(repo) or failed(repo, auth_server.url),
    )
    wait_unlocked(repo)
    assert not queue_files(repo), cli(repo, "pending").out
    got = tags(auth_server.url, run_id)
    assert got["git.commit"] == c1
    assert got["dvc.d1"] == md5_of(data(1))
    assert inputs(auth_server.url, run_id) == [("d1", md5_of(data(1)))]
    written = [p.read_bytes() for p in (repo / ".git" / "repro-hooks").rglob("*") if p.is_file()]
    assert any(b"linked to run" in blob for blob in written)
    assert not any(AUTH_PASSWORD.encode() in blob for blob in written)  # the hash cache too


# ---- stuck links are visible without `repro-hooks pending` ------------------------------------


def attempts(repo: Path) -> list[int]:
    return [int(j["attempts"]) for j in jobs(repo)]


@pytest.mark.e2e
def test_stuck_links_are_shown_by_pre_commit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that refuses every connection. Through real pre-commit and real `git commit`:
    while the first link has failed fewer than `warn-after-attempts` times the hook passes
    silently; from then on each commit still succeeds, and pre-commit shows one line."""
    write(repo / "pyproject.toml", "[tool.repro-hooks.mlflow]\nwarn-after-attempts = 2\n")
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard: refused
    outputs = []
    for n in (1, 2, 3):
        write(repo / f"f{n}.txt", str(n))
        before = head(repo)
        proc = commit(repo, f"commit {n}", verify=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr  # the commit is never blocked
        assert git(repo, "rev-parse", "HEAD~1").strip() == before
        outputs.append(proc.stdout + proc.stderr)
        wait_for(f"the delivery after commit {n} failed", lambda n=n: attempts(repo)[0] >= n)
        wait_unlocked(repo)
    for text in outputs[:2]:
        assert "stuck" not in text, text
    line = next(x for x in outputs[2].splitlines() if "stuck" in x)
    assert line.startswith("tag-mlflow: 1 run link(s) stuck, the oldest (link ")
    assert "2 failed attempt(s); last error: http://127.0.0.1:9/api/2.0/mlflow/" in line
    assert "connection refused" in line
    assert line.endswith(
        "`repro-hooks pending` lists them, `repro-hooks tag-mlflow --sync` retries"
    )
    assert "Failed" in outputs[2]  # pre-commit shows the output of a failing hook only


def test_stuck_after_hours_whatever_happened(repo: Path) -> None:
    queue = LinkQueue(repo / ".git")
    now = time.time()
    base = dict(kind="link", root=str(repo), tracking_uri="http://x.invalid", uri_origin="o")
    queue.put(Job(id="1", created=now - 25 * 3600, **base))  # never attempted, a day old
    queue.put(Job(id="2", created=now, attempts=1, last_error="boom", **base))
    queue.put(Job(id="3", created=now, attempts=3, last_error="boom", **base))
    queue.put(Job(id="4", created=now - 3600, **base))
    assert [j.id for j in queue.stuck(now, attempts=3, hours=24)] == ["1", "3"]
    assert [j.id for j in queue.stuck(now, attempts=1, hours=0.5)] == ["1", "2", "3", "4"]
