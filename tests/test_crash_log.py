"""The crash log: an unexpected error (exit 3) prints one line naming the report, and the report
holds what a bug needs (versions, the command, the traceback, the time). Errors are provoked for
real (internal files our code does not expect, or one of our functions made to raise in this
process); the detached link delivery runs as the real process the post-commit hook starts."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro_hooks import __version__, crash
from repro_hooks.cli import main
from repro_hooks.links.delivery import COMMAND
from repro_hooks.links.queue import Job, LinkQueue
from tests.helpers import cli_here, git, run_cli, write

GIT_VERSION = subprocess.run(
    ["git", "--version"], capture_output=True, text=True, check=True
).stdout.strip()


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_crash_prints_one_line_and_leaves_a_report(repo: Path) -> None:
    """`.git/repro-hooks/queue` is a file, not the queue directory `pending` lists: a real
    unexpected error in a real process."""
    write(repo / "notes.txt", "mine\n")
    write(repo / ".git/repro-hooks/queue", "not a directory\n")
    proc = run_cli(repo, "pending")
    assert proc.returncode == 3
    assert proc.stdout == ""
    log = repo / ".git/repro-hooks/crash.log"
    assert one_line(proc.stderr) == (
        "repro-hooks: internal error: NotADirectoryError: [Errno 20] Not a directory: "
        f"'{repo / '.git/repro-hooks/queue'}'; the crash log is {log} (attach it to a bug report)"
    )
    text = log.read_text()
    assert re.match(r"=== repro-hooks crash report \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(", text)
    assert f"\nrepro-hooks: {__version__}\n" in text
    assert f"\npython: {sys.version.split()[0]} (" in text
    assert "\nplatform: Linux" in text
    assert f"\ngit: {GIT_VERSION}\n" in text
    assert "\ndvc:" not in text and "\nmlflow:" not in text  # not imported by `pending`
    assert "\ncommand: repro-hooks pending\n" in text
    assert f"\ncwd: {repo}\n" in text
    assert "Traceback (most recent call last):" in text
    assert text.rstrip().endswith(
        f"NotADirectoryError: [Errno 20] Not a directory: '{repo / '.git/repro-hooks/queue'}'"
    )
    assert (repo / "notes.txt").read_text() == "mine\n"  # nothing of the user's touched
    assert (repo / ".git/repro-hooks/queue").read_text() == "not a directory\n"


def test_an_unwritable_crash_log_is_said_in_the_same_line(repo: Path) -> None:
    """`.git/repro-hooks` itself is a file: the queue cannot be read (the crash) and the crash
    log cannot be written; still one line, still exit 3."""
    write(repo / ".git/repro-hooks", "not a directory\n")
    proc = run_cli(repo, "pending")
    assert proc.returncode == 3
    line = one_line(proc.stderr)
    assert line.startswith("repro-hooks: internal error: NotADirectoryError: ")
    assert line.endswith(
        f"; no crash log written ({repo / '.git/repro-hooks/crash.log'}: File exists)"
    )
    assert (repo / ".git/repro-hooks").read_text() == "not a directory\n"


def test_a_crash_inside_a_command_in_this_process(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One of our pure functions raises (a bug): a multi-line message becomes its first line;
    the command line is in the report; DVC's version is reported when the process had imported
    DVC (this test process has)."""
    from repro_hooks.large_files import check

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("first line\nsecond line")

    monkeypatch.setattr(check, "check_large_files", broken)
    import dvc

    rc = main(["check-large-files", "--max-size", "1MB"])
    assert rc == 3
    out = capsys.readouterr()
    log = repo / ".git/repro-hooks/crash.log"
    assert one_line(out.err) == (
        "repro-hooks: internal error: ValueError: first line; the crash log is "
        f"{log} (attach it to a bug report)"
    )
    text = log.read_text()
    assert "\ncommand: repro-hooks check-large-files --max-size 1MB\n" in text
    assert f"\ndvc: {dvc.__version__}\n" in text
    assert "ValueError: first line\nsecond line" in text


def test_credentials_in_a_uri_never_reach_the_log(tmp_path: Path) -> None:
    uri = "http://user:s3cret@mlflow.example:5000"
    error = RuntimeError(f"cannot reach {uri}/api")
    path = tmp_path / "crash.log"
    log = crash.write(error, ["repro-hooks", "tag-mlflow", "--tracking-uri", uri], path)
    assert log.error is None
    text = path.read_text()
    assert "s3cret" not in text
    assert "--tracking-uri http://***@mlflow.example:5000\n" in text
    assert "RuntimeError: cannot reach http://***@mlflow.example:5000/api" in text


def test_outside_a_repository_the_log_is_in_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert crash.default_path() == tmp_path / "cache/repro-hooks/crash.log"
    log = crash.write(RuntimeError("x"), ["repro-hooks", "scan"])
    assert log.error is None
    assert log.path == tmp_path / "cache/repro-hooks/crash.log"
    assert "RuntimeError: x" in log.path.read_text()


def test_the_log_keeps_the_newest_entries_within_its_size(tmp_path: Path) -> None:
    path = tmp_path / "crash.log"
    for n in range(crash.KEEP_ENTRIES + 3):
        assert crash.write(RuntimeError(f"crash {n}"), ["repro-hooks", str(n)], path).error is None
    kept = crash.entries(path.read_text())
    assert [e.splitlines()[-1] for e in (k.rstrip() for k in kept)] == [
        f"RuntimeError: crash {n}" for n in range(3, crash.KEEP_ENTRIES + 3)
    ]
    crash.write(RuntimeError("y" * (3 * crash.MAX_BYTES)), ["repro-hooks", "huge"], path)
    assert path.stat().st_size <= crash.MAX_BYTES + 200
    assert "cut to fit" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["crash.log"]  # no temporary file left


def _queued_link(repo: Path, sqlite_store: str, commit: str | None) -> LinkQueue:
    """The clone's queue, holding one link job for `commit` to `sqlite_store`."""
    queue = LinkQueue(repo / ".git")
    queue.put(
        Job(
            id=queue.new_id("link"),
            kind="link",
            root=str(repo),
            tracking_uri=sqlite_store,
            uri_origin="option",
            commit=commit,
            created=time.time(),
        )
    )
    return queue


def _deliver(repo: Path) -> subprocess.CompletedProcess[str]:
    """The detached delivery, as the post-commit hook starts it."""
    return subprocess.run(
        [sys.executable, "-m", "repro_hooks.links.delivery", str(repo / ".git")],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_crashed_delivery_is_pointed_at_by_pending(repo: Path, sqlite_store: str) -> None:
    """The detached delivery (`python -m repro_hooks.links.delivery <git common dir>`, what the
    post-commit hook starts) meets a `locks` file where its lock directory belongs: exit 3, a
    crash log entry, a line in the delivery log, and `pending` points at the report until a
    delivery succeeds."""
    commit_sha = git(repo, "rev-parse", "HEAD").strip()
    queue = _queued_link(repo, sqlite_store, commit_sha)
    write(repo / ".git/repro-hooks/locks", "not a directory\n")

    proc = _deliver(repo)
    assert proc.returncode == 3, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")
    text = queue.crash_log.read_text()
    assert f"\ncommand: {COMMAND} {repo / '.git'}\n" in text
    assert "FileExistsError" in text
    assert crash.last_crash(queue.crash_log, COMMAND) is not None
    assert f"the crash log is {queue.crash_log}" in queue.log_path.read_text()
    listed = cli_here(repo, "pending")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert "not attempted yet" in lines[0]
    assert lines[1].startswith("pending: the link delivery crashed at ")
    assert lines[1].endswith(
        f"the report is in {queue.crash_log}: please attach it to a bug report"
    )
    # the cause goes; the next delivery succeeds (no run to link: the job is done)
    (repo / ".git/repro-hooks/locks").unlink()
    proc = _deliver(repo)
    assert proc.returncode == 0, queue.log_path.read_text()
    assert queue.jobs() == []
    assert cli_here(repo, "pending").stdout == "pending: no queued run link\n"


def test_a_bug_in_one_job_leaves_a_crash_log_and_keeps_the_job(
    repo: Path, sqlite_store: str
) -> None:
    """A job file our code does not expect (a link job whose commit is null) makes the linker
    fail inside repro-hooks, not in the store: the job stays queued with an "internal error"
    naming the crash log, and the report holds the traceback. A store's own failure (here:
    none) would stay a plain last error."""
    queue = _queued_link(repo, sqlite_store, None)
    proc = _deliver(repo)
    assert proc.returncode == 1, proc.stderr  # a failed job, as any: not a crash of the process
    [job] = queue.jobs()
    assert job.attempts == 1
    assert (job.last_error or "").startswith("internal error: ")
    assert (job.last_error or "").endswith(
        f"; the crash log is {queue.crash_log} (attach it to a bug report)"
    )
    text = queue.crash_log.read_text()
    assert f"\ncommand: {COMMAND} {repo / '.git'}\n" in text
    assert "repro_hooks/links/" in text  # where it failed: our code
    assert "\nmlflow: " in text  # the delivery had imported MLflow: its version is reported
    assert (
        cli_here(repo, "pending")
        .stdout.splitlines()[-1]
        .startswith("pending: the link delivery crashed at ")
    )


def test_the_delivery_watchdog_reports_where_it_was_stuck(repo: Path) -> None:
    """Past its hard limit the detached delivery is stopped (exit 3) by its watchdog thread,
    which first writes the main thread's stack to the crash log. Run here as that thread does,
    in a real process whose main thread sits in a function of its own."""
    code = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from repro_hooks.links import delivery\n"
        "from repro_hooks.links.queue import LinkQueue\n"
        "runner = delivery.QueueRunner(LinkQueue(Path(sys.argv[1])), {}, out=print,\n"
        "                              command=['python', '-m', 'repro_hooks.links.delivery'])\n"
        "main = threading.get_ident()\n"
        "def stuck_in_a_store_call():\n"
        "    # the watchdog starts from in here, so this frame is on every stack it can see\n"
        "    threading.Thread(target=delivery._past_hard_deadline, args=(runner, main)).start()\n"
        "    time.sleep(60)\n"
        "stuck_in_a_store_call()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(repo / ".git")],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    text = (repo / ".git/repro-hooks/crash.log").read_text()
    assert "\ncommand: python -m repro_hooks.links.delivery\n" in text
    assert "Stack of the main thread:" in text
    assert "in stuck_in_a_store_call" in text
    assert "TimeoutError: still delivering after the hard limit of 600s" in text
    assert "the crash log is" in (repo / ".git/repro-hooks/delivery.log").read_text()
