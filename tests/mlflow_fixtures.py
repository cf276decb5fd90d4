"""Real MLflow for the tag-mlflow tests: one `mlflow server` per session, sqlite stores copied
from one migrated template, and small servers that misbehave on purpose.

Imported from conftest (`from tests.mlflow_fixtures import *`); self-contained.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
AUTH_USER = "admin"
AUTH_PASSWORD = "tests-only-pw-4711"  # MLflow ships no default admin password any more


# MLflow (and what it imports) warns about its own deprecations and leaves files to the
# collector: the tests that drive it ignore exactly these, nothing else
MLFLOW_WARNINGS = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _migrate(db: Path) -> None:
    code = (
        "import sys; from mlflow.tracking import MlflowClient; "
        "MlflowClient(tracking_uri=sys.argv[1]).search_experiments()"
    )
    # MLflow records the Default experiment's artifact root as <cwd>/mlruns when it creates the
    # database: created beside it, never in the checkout pytest runs from
    subprocess.run(
        [sys.executable, "-c", code, f"sqlite:///{db}"],
        cwd=db.parent,
        check=True,
        capture_output=True,
    )


class MlflowServer:
    """`mlflow server` on 127.0.0.1, stopped by its PID. With `auth`, the basic-auth app
    (`--app-name basic-auth`; its user database and admin password in `workdir`)."""

    def __init__(self, workdir: Path, db: Path, port: int, auth: bool = False) -> None:
        self.workdir = workdir
        self.db = db
        self.port = port
        self.auth = auth
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 120.0) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        app: list[str] = []
        if self.auth:
            ini = self.workdir / "basic_auth.ini"
            ini.write_text(
                "[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{self.workdir / 'auth.db'}\n"
                f"admin_username = {AUTH_USER}\nadmin_password = {AUTH_PASSWORD}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            )
            env.update(
                MLFLOW_AUTH_CONFIG_PATH=str(ini),
                MLFLOW_FLASK_SERVER_SECRET_KEY="repro-hooks-tests-only",
            )
            app = ["--app-name", "basic-auth"]
        log = (self.workdir / f"server-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "server",
                *app,
                "--backend-store-uri",
                f"sqlite:///{self.db}",
                "--default-artifact-root",
                str(self.workdir / "art"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("mlflow server did not become healthy")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and workers
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated MLflow sqlite database per session; tests copy it (~2 s saved each)."""
    db = tmp_path_factory.mktemp("mlflow-template") / "template.db"
    _migrate(db)
    return db


@pytest.fixture
def sqlite_store(tmp_path: Path, mlflow_db_template: Path) -> str:
    """A fresh, migrated sqlite tracking store outside the repository: its URI."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(mlflow_db_template, db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path
) -> Iterator[MlflowServer]:
    workdir = tmp_path_factory.mktemp("mlflow-server")
    db = workdir / "server.db"
    shutil.copyfile(mlflow_db_template, db)
    server = MlflowServer(workdir, db, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path
) -> Iterator[MlflowServer]:
    """`mlflow server --app-name basic-auth`: every request checks the password (~0.6 s)."""
    workdir = tmp_path_factory.mktemp("mlflow-auth-server")
    db = workdir / "server.db"
    shutil.copyfile(mlflow_db_template, db)
    server = MlflowServer(workdir, db, free_port(), auth=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_server(tmp_path: Path, mlflow_db_template: Path) -> Iterator[Callable[[], MlflowServer]]:
    """Short-lived servers on a fixed port (stop/start keeps port and database)."""
    servers: list[MlflowServer] = []

    def make() -> MlflowServer:
        db = tmp_path / f"short-{len(servers)}.db"
        shutil.copyfile(mlflow_db_template, db)
        server = MlflowServer(tmp_path, db, free_port())
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# ---- misbehaving servers ----------------------------------------------------------------------


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 500
    seen: list[str]

    def _answer(self) -> None:
        type(self).seen.append(f"{self.command} {self.path} {self.headers.get('Authorization')}")
        body = b'{"error_code": "INTERNAL_ERROR", "message": "broken on purpose"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def status_server(status: int) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that answers every request with `status`."""
    handler = type("Handler", (_StatusHandler,), {"status": status, "seen": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = sock.accept()
                held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


# ---- the delivery queue's locks -----------------------------------------------------------------


def queue_files(repo: Path) -> list[Path]:
    queue = repo / ".git" / "repro-hooks" / "queue"
    return sorted(queue.glob("*.json")) if queue.is_dir() else []


def wait_delivered(repo: Path) -> None:
    """Wait for the detached deliverers to empty the queue and let go of the stores' locks."""
    from tests.helpers import cli_here, wait_until

    wait_until(lambda: not queue_files(repo), lambda: cli_here(repo, "pending").stdout)
    wait_unlocked(repo)


def lock_files(repo: Path) -> list[Path]:
    locks = repo / ".git" / "repro-hooks" / "locks"
    return sorted(locks.glob("*.lock")) if locks.is_dir() else []


def wait_unlocked(repo: Path) -> None:
    """Wait until no delivery holds any store's lock (take each, then let it go)."""
    for path in lock_files(repo):
        with path.open("rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def store_lock(repo: Path, uri: str) -> Iterator[None]:
    """Hold one store's delivery lock, as a running delivery would."""
    from repro_hooks.links.queue import store_key

    locks = repo / ".git" / "repro-hooks" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{store_key(uri, str(repo))}.lock").open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
