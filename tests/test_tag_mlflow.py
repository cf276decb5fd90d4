"""tag-mlflow against real MLflow: a real server, real sqlite stores, real git + pre-commit."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.links.queue import Job
from repro_hooks.links.record import dvc_tag_key
from tests.helpers import cli_here, commit, git, install_local_hooks, run_cli, wait_until, write
from tests.mlflow_fixtures import (
    MLFLOW_WARNINGS,
    MlflowServer,
    queue_files,
    silent_server,
    status_server,
    wait_delivered,
    wait_unlocked,
)
from tests.stamp_helpers import dvc_file, md5_of, stamped_run, train_env

pytestmark = MLFLOW_WARNINGS

TRAIN = """\
import mlflow
with mlflow.start_run() as run:
    mlflow.log_param("lr", 0.1)
print(run.info.run_id)
"""
DVC_FILE = "outs:\n- md5: {md5}\n  size: 3\n  hash: md5\n  path: {path}\n"
HOOKS = ["mlflow-tag-commit", "mlflow-relink-rewritten"]
HOOK_TYPES = ["post-commit", "post-rewrite"]
# the detached deliveries' deadline on a loaded shared machine (importing mlflow can take 10 s)
PATIENT = "[tool.repro-hooks.mlflow]\ntimeout = 120\n"


def md5(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def new_run(uri: str, source_commit: str | None = None, experiment: str | None = None) -> str:
    """A run of this clone (the current directory), stamped by the real stamp code; with a
    `source_commit` instead, an unstamped run as MLflow's fluent API records it elsewhere."""
    if source_commit is None:
        return stamped_run(uri, Path.cwd(), experiment)
    c = client(uri)
    exp_id = "0"
    if experiment is not None:
        found = c.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else c.create_experiment(experiment)
    tags = {"mlflow.source.git.commit": source_commit} if source_commit else {}
    run = c.create_run(exp_id, tags=tags)
    c.set_terminated(run.info.run_id)
    time.sleep(0.005)  # distinct start times
    return str(run.info.run_id)


def train(repo: Path, uri: str, plugin: Path) -> str:
    """The user's training script: `mlflow.start_run()` from the repository, with repro-hooks
    (its run stamp plugin) installed in the training environment."""
    write(repo / "train.py", TRAIN)
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env=train_env(uri, plugin),
    )
    return proc.stdout.strip().splitlines()[-1]


def real_data(repo: Path, path: str, data: bytes) -> str:
    """A DVC-tracked file that exists, its .dvc file and its .gitignore entry; its md5."""
    write(repo / path, data)
    write(repo / f"{path}.dvc", dvc_file(path.rsplit("/", 1)[-1], data))
    with (repo / ".gitignore").open("a") as fh:
        fh.write(f"/{path}\n")
    return md5_of(data)


def tags(uri: str, run_id: str) -> dict[str, str]:
    return dict(client(uri).get_run(run_id).data.tags)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def hook_commit(repo: Path, message: str, *paths: str) -> subprocess.CompletedProcess[str]:
    proc = commit(repo, message, *paths, verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def sync(repo: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["tag-mlflow", "--sync", *args])


def log_text(repo: Path) -> str:
    path = repo / ".git" / "repro-hooks" / "delivery.log"
    return path.read_text() if path.exists() else ""


# ---- end to end: sqlite store, server ---------------------------------------------------------


@pytest.mark.e2e
def test_commit_links_the_run_it_produced_sqlite(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch, stamp_plugin: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    git(repo, "remote", "add", "origin", "https://user:secret@example.com/team/proj.git")
    data_md5 = real_data(repo, "data", b"the data\n")
    model = b"the model"
    write(repo / "models" / "m.pt", model)
    write(repo / "models" / ".gitignore", "/m.pt\n")
    write(repo / "models" / "dvc.yaml", "stages:\n  train:\n    cmd: x\n    outs: [m.pt]\n")
    write(
        repo / "models" / "dvc.lock",
        "schema: '2.0'\nstages:\n  train:\n    cmd: x\n    outs:\n"
        f"    - path: m.pt\n      hash: md5\n      md5: {md5_of(model)}\n      size: 9\n",
    )
    run_id = train(repo, sqlite_store, stamp_plugin)
    hook_commit(repo, "train")
    wait_delivered(repo)
    got = tags(sqlite_store, run_id)
    assert got["git.commit"] == head(repo)
    assert got["git.branch"] == "main"
    assert got["git.repo_url"] == "https://example.com/team/proj.git"
    assert got["dvc.data"] == data_md5
    assert got["dvc.models/m.pt"] == md5_of(model)
    assert len(got["dvc.fingerprint"]) == 64
    assert got["mlflow.source.git.commit"] != head(repo)  # MLflow's own tags untouched
    found = client(sqlite_store).search_runs(["0"], filter_string=f"datasets.digest = '{data_md5}'")
    assert [r.info.run_id for r in found] == [run_id]
    inputs = client(sqlite_store).get_run(run_id).inputs.dataset_inputs
    assert sorted((i.dataset.name, i.dataset.source_type) for i in inputs) == [
        ("data", "dvc"),
        ("models/m.pt", "dvc"),
    ]

    # a second commit without a new run relinks nothing
    first = head(repo)
    write(repo / "notes.txt", "more")
    hook_commit(repo, "notes")
    wait_delivered(repo)
    assert tags(sqlite_store, run_id)["git.commit"] == first
    assert "no qualifying run since" in log_text(repo)
    assert "secret" not in log_text(repo)


@pytest.mark.e2e
def test_server_link_and_sync(
    repo: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, stamp_plugin: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "server-e2e")
    client(mlflow_server.url).create_experiment("server-e2e")
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    data_md5 = real_data(repo, "data", b"c data\n")
    run_id = train(repo, mlflow_server.url, stamp_plugin)
    hook_commit(repo, "train")
    result = sync(repo)
    assert result.exit_code == 0, result.output
    assert f"{head(repo)[:12]}: linked to run {run_id}" in result.output
    wait_delivered(repo)
    assert tags(mlflow_server.url, run_id)["git.commit"] == head(repo)
    assert tags(mlflow_server.url, run_id)["dvc.data"] == data_md5


@pytest.mark.e2e
def test_two_quick_commits_each_get_their_run(
    repo: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "quick")
    client(mlflow_server.url).create_experiment("quick")
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    write(repo / "a.txt", "a")
    r1 = new_run(mlflow_server.url, None, "quick")
    hook_commit(repo, "one")
    c1 = head(repo)
    write(repo / "b.txt", "b")
    r2 = new_run(mlflow_server.url, None, "quick")
    hook_commit(repo, "two")
    wait_delivered(repo)
    assert tags(mlflow_server.url, r1)["git.commit"] == c1
    assert tags(mlflow_server.url, r2)["git.commit"] == head(repo)


@pytest.mark.e2e
def test_amend_and_rebase_move_links(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite moves a link only when the new commit records the code and data the run saw."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    write(repo / "pyproject.toml", PATIENT)
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    git(repo, "checkout", "-q", "-b", "feature")
    first = real_data(repo, "data", b"d data\n")
    run_id = new_run(sqlite_store)
    hook_commit(repo, "feature work")
    wait_delivered(repo)
    original = head(repo)
    assert tags(sqlite_store, run_id)["git.commit"] == original

    # an amend of the message only: same code and data, the link moves
    git(repo, "commit", "--amend", "-m", "feature work, reworded")
    wait_delivered(repo)
    amended = head(repo)
    got = tags(sqlite_store, run_id)
    assert got["git.commit"] == amended
    assert got["dvc.data"] == first
    assert got["git.branch"] == "feature"

    # an amend that changes the data after the run: the run keeps its link
    write(repo / "data", b"e data\n")
    write(repo / "data.dvc", dvc_file("data", b"e data\n"))
    git(repo, "add", "-A")
    git(repo, "commit", "--amend", "-m", "feature work, new data")
    wait_delivered(repo)
    assert tags(sqlite_store, run_id)["git.commit"] == amended
    assert "keeps its link: data: changed after the run ended" in log_text(repo)

    # a rebase onto code the run never ran: not moved; a newer run is not grabbed either
    git(repo, "checkout", "-q", "main")
    write(repo / "main.txt", "main moves on")
    commit(repo, "main work")  # post-commit still runs (--no-verify skips only pre-commit)
    wait_delivered(repo)
    git(repo, "checkout", "-q", "feature")
    newer = new_run(sqlite_store, head(repo))  # unstamped, from this commit
    proc = subprocess.run(
        ["git", "rebase", "main"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_delivered(repo)
    assert tags(sqlite_store, run_id)["git.commit"] == amended
    assert "git.commit" not in tags(sqlite_store, newer)


# ---- which run --------------------------------------------------------------------------------


def test_deleted_run_and_foreign_runs_are_passed_over(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    write(repo / "x.txt", "x")
    good = new_run(sqlite_store)
    deleted = new_run(sqlite_store)
    client(sqlite_store).delete_run(deleted)
    foreign = new_run(sqlite_store, "f" * 40)  # started from a commit this repository lacks
    commit(repo, "x")
    assert run_cli(repo, "tag-mlflow").returncode == 0
    result = sync(repo)
    assert result.exit_code == 0, result.output
    assert f"linked to run {good}" in result.output
    assert tags(sqlite_store, good)["git.commit"] == head(repo)
    assert "git.commit" not in tags(sqlite_store, foreign)

    # an explicit run id that is deleted links nothing
    write(repo / "y.txt", "y")
    commit(repo, "y")
    refused = cli_here(repo, "tag-mlflow", "--run-id", deleted)
    assert refused.returncode == 1
    assert refused.stdout == f"{head(repo)[:12]}: nothing linked: run {deleted} is deleted\n"


def test_no_run_changes_nothing(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    assert run_cli(repo, "tag-mlflow").returncode == 0
    result = sync(repo)
    assert result.exit_code == 0
    assert "nothing linked: no run started before the commit" in result.output
    assert result.output.count("\n") == 1
    assert sync(repo).output == "tag-mlflow: nothing queued\n"


def test_missing_experiment_is_never_created(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "does-not-exist")
    new_run(sqlite_store, head(repo))
    assert run_cli(repo, "tag-mlflow").returncode == 0
    result = sync(repo)
    assert "experiment 'does-not-exist' not found" in result.output
    assert client(sqlite_store).get_experiment_by_name("does-not-exist") is None


def test_no_tracking_store_creates_nothing(repo: Path) -> None:
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    before = sorted(p.name for p in repo.iterdir())
    write(repo / "x.txt", "x")
    hook_commit(repo, "x")
    proc = run_cli(repo, "tag-mlflow")
    assert proc.returncode == 0
    assert proc.stdout.startswith("tag-mlflow: no MLflow tracking store")
    assert proc.stdout.count("\n") == 1
    time.sleep(0.5)
    assert sorted(p.name for p in repo.iterdir()) == sorted([*before, "x.txt"])
    assert not queue_files(repo)


def test_150_outputs_and_odd_paths(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    run_id = new_run(sqlite_store, head(repo))  # the outputs are fake: linked by --force
    for i in range(150):
        write(repo / "d" / f"o{i:03d}.dvc", DVC_FILE.format(md5=md5(i), path=f"o{i:03d}"))
    odd = ["we:ird+name@v1", "a..b", "sp ace/ü", "x" * 300]
    for n, name in enumerate(odd):
        write(repo / f"odd{n}.dvc", DVC_FILE.format(md5=md5(n + 1000), path=f'"{name}"'))
    commit(repo, "many outputs")
    result = cli_here(repo, "tag-mlflow", "--run-id", run_id, "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "154 DVC output(s)" in result.stdout
    got = tags(sqlite_store, run_id)
    assert got["dvc.d/o149"] == md5(149)
    for n, name in enumerate(odd):
        assert got[dvc_tag_key(name)] == md5(n + 1000)
    assert got["dvc.we:3Aird:2Bname:40v1"] == md5(1000)
    assert "dvc.a.:2Eb" in got
    inputs = client(sqlite_store).get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 154
    # redelivery is idempotent: same tags, no duplicate inputs
    assert cli_here(repo, "tag-mlflow", "--run-id", run_id, "--force").returncode == 0
    assert len(client(sqlite_store).get_run(run_id).inputs.dataset_inputs) == 154


# ---- failures: the job stays queued -----------------------------------------------------------


@pytest.mark.e2e
def test_server_down_at_commit_then_back(
    repo: Path, make_server: Callable[[], MlflowServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    server.start()
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    write(repo / "x.txt", "x")
    run_id = new_run(server.url)
    server.stop()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    hook_commit(repo, "while the server is down")
    wait_until(lambda: "last error" in cli_here(repo, "pending").stdout, lambda: log_text(repo))
    pending = cli_here(repo, "pending")
    assert pending.returncode == 0
    assert "link " + head(repo)[:12] in pending.stdout
    result = sync(repo)
    assert result.exit_code == 1
    assert "not delivered (stays queued)" in result.output
    server.start()
    result = sync(repo)
    assert result.exit_code == 0, result.output
    assert tags(server.url, run_id)["git.commit"] == head(repo)
    assert not queue_files(repo)


def wait_attempted(repo: Path) -> None:
    """Wait until a delivery has tried every queued job once and let go of the store's lock."""
    wait_until(
        lambda: all(Job.from_json(p.read_bytes()).attempts for p in queue_files(repo)),
        lambda: log_text(repo),
    )
    wait_unlocked(repo)


def test_server_that_never_answers_is_bounded(repo: Path) -> None:
    # The hook's detached delivery is bounded too (2 s here, not the tests' long deadline), and
    # it goes first: a sync started beside it could find the store's lock held by it (seen with
    # a second suite running beside this one).
    with silent_server() as url:
        proc = run_cli(
            repo, "tag-mlflow", "--tracking-uri", url, env={"REPRO_HOOKS_MLFLOW_TIMEOUT": "2"}
        )
        assert proc.returncode == 0
        wait_attempted(repo)
        assert "timed out after 2s" in log_text(repo)
        result = sync(repo, "--tracking-uri", url, "--timeout", "2")
    assert result.exit_code == 1
    assert "timed out after 2s" in result.output
    assert "timed out" in cli_here(repo, "pending").stdout


@pytest.mark.parametrize("status", [500, 503, 401, 403])
def test_http_errors_keep_the_job_and_hide_credentials(
    repo: Path, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "envtoken-777")
    with status_server(status) as (url, seen):
        secret_url = url.replace("http://", "http://alice:pw-hunter2@") + "/?token=qtok-999"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", secret_url)
        assert run_cli(repo, "tag-mlflow").returncode == 0
        result = sync(repo, "--timeout", "300")
        wait_delivered_or_failed(repo)
    assert seen  # the client really talked to it
    assert result.exit_code == 1
    assert "not delivered (stays queued)" in result.output
    pending = cli_here(repo, "pending").stdout
    assert "last error" in pending
    written = [p.read_text() for p in (repo / ".git" / "repro-hooks").rglob("*") if p.is_file()]
    for text in [result.output, pending, *written]:
        for secret in ("pw-hunter2", "qtok-999", "envtoken-777", "alice"):
            assert secret not in text


def wait_delivered_or_failed(repo: Path) -> None:
    wait_unlocked(repo)


def test_full_disk_says_the_link_was_not_queued(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    result = CliRunner().invoke(cli, ["tag-mlflow"])
    assert result.exit_code == 1
    assert "link NOT queued (No space left on device)" in result.output
    assert "the commit itself is intact" in result.output
    assert not queue_files(repo)
    assert not list((repo / ".git" / "repro-hooks" / "queue").iterdir())


def test_pending_lists_and_drops(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli_here(repo, "pending").stdout == "pending: no queued run link\n"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with silent_server() as url:  # keeps the detached deliverer busy: the job stays queued
        proc = run_cli(repo, "tag-mlflow", "--tracking-uri", url)
        assert proc.returncode == 0
        job_id = queue_files(repo)[0].stem
        listed = cli_here(repo, "pending")
        assert listed.returncode == 0
        assert listed.stdout.startswith(f"{job_id}: link {head(repo)[:12]} -> {url}")
        assert cli_here(repo, "pending", "--drop", job_id).returncode == 0
        assert not queue_files(repo)
        assert cli_here(repo, "pending", "--drop", "nope").returncode == 2


@pytest.mark.e2e
def test_commit_never_waits_for_the_delivery(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through pre-commit, with a server that never answers: the detached deliverer holds no
    pipe of pre-commit's, so the commit returns while delivery is still hanging (the tests'
    deadline is 300 s: had the commit waited for it, the job would show its failure)."""
    install_local_hooks(repo, HOOKS, HOOK_TYPES)
    with silent_server() as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        write(repo / "x.txt", "x")
        hook_commit(repo, "x")
        pending = cli_here(repo, "pending").stdout
        assert "not attempted yet" in pending
        assert head(repo)[:12] in pending


def test_experiment_selection_by_name_and_id(
    repo: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    exp_id = client(sqlite_store).create_experiment("wanted")
    for selector in ("wanted", exp_id):
        write(repo / f"{selector}.txt", selector)
    wanted = new_run(sqlite_store, None, "wanted")
    other = new_run(sqlite_store, None, "other")  # newer, but not selected
    for selector in ("wanted", exp_id):
        commit(repo, selector, f"{selector}.txt")
        assert run_cli(repo, "tag-mlflow", "--experiment", selector).returncode == 0
        result = sync(repo)
        assert result.exit_code == 0, result.output
        assert "git.commit" not in tags(sqlite_store, other)
    # the first commit took the run; the second found no new run since
    assert tags(sqlite_store, wanted)["git.commit"] == git(repo, "rev-parse", "HEAD~1").strip()
    assert "no qualifying run since" in result.output


# ---- --run-id judges the run; --force marks the link ------------------------


@pytest.mark.e2e
def test_run_id_applies_the_evidence_rules_and_force_marks_the_link(
    repo: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, stamp_plugin: Path
) -> None:
    """A run trained from an uncommitted tree with other params: `--run-id` refuses it for a
    commit that records other params (exit 1, the reason, nothing written); `--force` links it
    and the link says so; a run the rules accept is linked by `--run-id` in the foreground."""
    uri = mlflow_server.url
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "run-id-rules")
    if client(uri).get_experiment_by_name("run-id-rules") is None:
        client(uri).create_experiment("run-id-rules")
    write(repo / "params.yaml", "lr: 0.1\n")
    commit(repo, "params")
    write(repo / "params.yaml", "lr: 0.5\n")  # trained with other params, never committed
    dirty_run = train(repo, uri, stamp_plugin)
    write(repo / "params.yaml", "lr: 0.2\n")
    commit(repo, "params and train.py", "params.yaml", "train.py")

    refused = cli_here(repo, "tag-mlflow", "--run-id", dirty_run)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stdout.startswith(f"{head(repo)[:12]}: run {dirty_run} not linked: ")
    assert "--force links it anyway" in refused.stdout
    assert refused.stdout.count("\n") == 1
    assert "git.commit" not in tags(uri, dirty_run)
    assert not queue_files(repo)  # judged in the foreground: nothing queued behind it

    forced = cli_here(repo, "tag-mlflow", "--run-id", dirty_run, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"FORCED link to run {dirty_run}" in forced.stdout
    got = tags(uri, dirty_run)
    assert got["git.commit"] == head(repo)
    assert got["repro_hooks.link"] == "forced"
    assert got["repro_hooks.link.forced_by"] == "Test Committer <committer@example.com>"
    assert got["repro_hooks.link.forced_reason"] in refused.stdout

    # a run of the committed tree: --run-id accepts it, and says by which evidence
    clean_run = train(repo, uri, stamp_plugin)
    accepted = cli_here(repo, "tag-mlflow", "--run-id", clean_run)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"linked to run {clean_run}" in accepted.stdout
    assert tags(uri, clean_run)["repro_hooks.link"] in ("stamp", "stage")
    assert tags(uri, clean_run)["git.commit"] == head(repo)

    # usage: --force alone, and --run-id with --sync
    alone = run_cli(repo, "tag-mlflow", "--force")
    assert alone.returncode == 2
    assert "--force goes with --run-id" in alone.stdout + alone.stderr
