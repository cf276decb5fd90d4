"""DVC, the tests' oracle, without paying its import on every call.

`dvc status` costs 0.75 s as a process, 0.6 s of it importing DVC, and the suite runs it hundreds of
times. This server imports DVC once (plus every module a warm-up of the commands the tests use
imports), then forks per call; the child runs DVC's own entry point, `dvc.cli.main` (what the
`dvc` console script runs), in the caller's directory and environment, with the caller's files as
its stdin, stdout and stderr. Each call starts from the same untouched interpreter, so no state
carries from one call to the next: only the import is shared.

One server per test process (xdist worker), started on first use and stopped at exit. The protocol
over a Unix socket: the request (JSON: argv, cwd, env) with three file descriptors; the answer, the
exit code as 4 bytes, written by the child just before it exits.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("!I")
_CODE = struct.Struct("!i")
_WARM_UP = [
    ["init", "-q"],
    ["config", "core.autostage", "false"],
    ["add", "-q", "data"],
    ["status", "-q"],
    ["status", "--json"],
    [
        "stage",
        "add",
        "-q",
        "-n",
        "s",
        "-d",
        "data",
        "-p",
        "seed",
        "-o",
        "out.txt",
        "echo done > out.txt",
    ],
    ["repro", "-q"],
    ["status", "-q"],
    ["commit", "-f", "-q"],
    ["remote", "add", "-d", "r", "../remote"],
    ["push", "-q"],
    ["status", "-c", "-q"],
]


# ---- the server (a process of its own) -------------------------------------------------------


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Run one DVC command; never returns."""
    code = 255
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # DVC waits for its own children
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["dvc", *request["argv"]]
        from dvc.cli import main

        try:
            code = main(request["argv"])
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            conn.sendall(_CODE.pack(code))
        finally:
            os._exit(code & 0xFF)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise EOFError("short request")
        data += chunk
    (size,) = _HEADER.unpack_from(data)
    return json.loads(data[_HEADER.size : _HEADER.size + size]), list(fds)


def _warm_up() -> None:
    """Run the commands the tests use once, in a child, and import what they imported."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        (repo / "data").mkdir(parents=True)
        (repo / "data" / "a.csv").write_text("a\n")
        (repo / "params.yaml").write_text("seed: 1\n")
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            null = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(null, target)
            os.chdir(repo)
            from dvc.cli import main

            for argv in _WARM_UP:
                try:
                    main(argv)
                except BaseException:
                    pass
            os.write(write, json.dumps(sorted(sys.modules)).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            names = json.loads(pipe.read() or b"[]")
        os.waitpid(pid, 0)
    for name in names:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:
                continue


def serve(path: str) -> None:
    import dvc.cli  # noqa: F401

    _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(2.0)
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the test process is gone: so is the need for us
                return
            continue
        conn.settimeout(None)
        try:
            request, fds = _receive(conn)
        except (EOFError, ValueError, OSError):
            conn.close()
            continue
        if os.fork() == 0:
            listener.close()
            _child(conn, request, fds)
        for fd in fds:
            os.close(fd)
        conn.close()


# ---- the client (in the test process) --------------------------------------------------------

_lock = threading.Lock()
_servers: dict[int, tuple[subprocess.Popen[bytes], str]] = {}  # by pid: a fork starts its own


def _stop(proc: subprocess.Popen[bytes], path: str) -> None:
    proc.kill()
    proc.wait()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def _start() -> str:
    with _lock:
        running = _servers.get(os.getpid())
        if running is not None and running[0].poll() is None:
            return running[1]
        path = os.path.join(tempfile.mkdtemp(prefix="dvc-server-"), "sock")
        env = {k: v for k, v in os.environ.items() if k != "REPRO_HOOKS_TEST_COVERAGE"}
        proc = subprocess.Popen(
            [sys.executable, __file__, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            proc.kill()
            raise RuntimeError("the DVC server did not start")
        atexit.register(_stop, proc, path)
        _servers[os.getpid()] = (proc, path)
        return path


def run(argv: list[str], cwd: Path | str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """`dvc *argv` in cwd with this process's environment, as the console script would run it."""
    path = _start()
    with (
        tempfile.TemporaryFile() as inp,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn,
    ):
        inp.write(stdin)
        inp.seek(0)
        body = json.dumps(
            {"argv": list(argv), "cwd": str(Path(cwd).resolve()), "env": dict(os.environ)}
        ).encode()
        conn.connect(path)
        message = _HEADER.pack(len(body)) + body
        sent = socket.send_fds(conn, [message], [inp.fileno(), out.fileno(), err.fileno()])
        conn.sendall(message[sent:])
        answer = b""
        while len(answer) < _CODE.size:
            chunk = conn.recv(_CODE.size - len(answer))
            if not chunk:
                break
            answer += chunk
        # a child that died before answering (killed, crashed in C) reads as killed
        code = _CODE.unpack(answer)[0] & 0xFF if len(answer) == _CODE.size else -9
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            ["dvc", *argv],
            code,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


if __name__ == "__main__":
    serve(sys.argv[1])
