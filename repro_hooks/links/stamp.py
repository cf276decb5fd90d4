"""The run stamp: an MLflow run-context provider that records, at `mlflow.start_run()`, which
clone a run ran in, its code and the state of its DVC-described data.

Registered as the entry point `mlflow.run_context_provider` (pyproject.toml), so MLflow loads
this module whenever it is imported in an environment where repro-hooks is installed: the module
imports only `os` at top level, and `RunStamp()` only installs the audit hook that notes which
repository files the process reads and writes. `tags()` never raises into the
user's training: any failure returns {} (the run is then simply not stamped).

A stamp is two things:
- run tags under `repro_hooks.` (never `mlflow.*`): the clone id, a stamp id, HEAD, a digest of
  the DVC outputs' hashes at the start, `evidence` ("stage" or "tree"), and `stage` (the stage
  `dvc repro` ran it as) or `clean` (whether the tracked code was clean);
- a local record `<git common dir>/repro-hooks/runs/<stamp id>.json` with what the tags cannot
  hold: the hash of every DVC output at the start, the blob of every changed code file, a stage
  run's stage (cmd, deps' hashes and params' values at the start, outs), and, added when the
  training process exits, the hash of every DVC output (and of every file written since the
  start) at the end, and the repository files the process wrote (`written`) and read (`read`);
  and `run`, the id of the run the stamp was taken for, once the process knows it (at its next
  stamp, or at exit). The linker reads it on the same machine, in the same clone: a run it links
  is always one this clone stamped (a `dvc exp run --temp` copy records into its parent clone),
  and never another run carrying a copy of the stamp's tags.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from repro_hooks.dvc.files import Stage
    from repro_hooks.tracking.port import Tracker

CLONE_TAG = "repro_hooks.clone"
STAMP_TAG = "repro_hooks.stamp"
HEAD_TAG = "repro_hooks.head"
CLEAN_TAG = "repro_hooks.clean"
DATA_TAG = "repro_hooks.data"
STAGE_TAG = "repro_hooks.stage"  # a stage run: its address from the git root (`train`, `sub/dvc.yaml:train`)
KIND_TAG = "repro_hooks.evidence"  # what will justify the run's link: "stage" or "tree"
NOTEBOOK_PREFIX = "nb:"  # a notebook's code digest (outputs, counts and metadata left out)
EXPS_DIR = "/.dvc/tmp/exps/"  # where `dvc exp run --temp/--queue` copies the repository
MAX_WRITES = 100_000  # paths the audit hook remembers per process
DISABLE_ENV = "REPRO_HOOKS_STAMP"  # "0": no stamp
RECORD_VERSION = 1
MAX_CODE_FILE = 1 << 20  # changed code files larger than this are recorded as unhashed ("?")
MAX_CODE_FILES = 500
START_HASH_BUDGET = 64 << 20  # bytes hashed at start_run when the hash cache is cold
DEFER = "defer:"

_STAMPED: list[tuple[str, str, str, float]] = []  # (runs dir, stamp id, root, start) this process
_WRITES: dict[str, float] = {}  # absolute path -> when this process last opened it for writing
_READS: dict[str, float] = {}  # absolute path -> when this process first opened it for reading
_EARLY: list[bool] = [True]  # emptied when the hook was installed only at the first stamp
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class RunStamp:
    """The `mlflow.run_context_provider` plugin (see the module docstring). MLflow makes one
    when it is imported: it installs the audit hook then, so that the files a script reads
    before `mlflow.start_run()` (its data, usually) are known too.

    Only the first one made in a process stamps: the entry point can be registered twice (an
    editable install beside a wheel, a plugin path added by a test harness), and MLflow then
    makes two providers, each of which would take the whole stamp again (the second one's tags
    overwriting the first's) at twice the cost to `start_run`."""

    _first: RunStamp | None = None

    def __init__(self) -> None:
        if RunStamp._first is None:
            RunStamp._first = self
        if os.environ.get(DISABLE_ENV, "1") != "0":
            _install_audit_hook()

    def in_context(self) -> bool:
        if RunStamp._first is not self or _asker() in _NOT_RUNS:
            return False
        try:
            return os.environ.get(DISABLE_ENV, "1") != "0" and _start_dir() is not None
        except Exception:
            return False

    def tags(self) -> dict[str, str]:
        _PAUSED[0] += 1  # the stamp's own reads (hashing the data) are not the run's
        try:
            start = _start_dir()
            if start is None:
                return {}
            tags = take_stamp(start)
            if tags.get(STAMP_TAG):
                _note_tracking_uri(tags[STAMP_TAG])
            return tags
        except Exception:
            return {}
        finally:
            _PAUSED[0] -= 1


_CONTEXT_DIR = os.path.join("mlflow", "tracking", "context", "")


def _asker() -> str:
    """The name of the MLflow function asking the run context for tags: the first frame
    outside this module and MLflow's context registry (`start_run` for a run,
    `_create_logged_model` for an MLflow 3 logged model, `resolve_env_metadata` for a trace's
    metadata, an autologging helper for its child runs); '' when none is near."""
    import sys
    from types import FrameType

    frame: FrameType | None = sys._getframe(1)
    for _ in range(20):
        if frame is None:
            return ""
        where = frame.f_code.co_filename
        if where != __file__ and _CONTEXT_DIR not in where:
            return frame.f_code.co_name
        frame = frame.f_back
    return ""


# MLflow asks the run context for things that are not runs: a logged model (it names its run as
# source_run_id) and a trace's environment; a stamp there costs a whole stamp and proves nothing
_NOT_RUNS = ("_create_logged_model", "resolve_env_metadata")


def _start_dir() -> str | None:
    """Where the run's code lives, or None (no stamp): the program's directory when the
    program (`sys.argv[0]`, else `__main__.__file__`) is a file inside a git work tree (a
    script, `python -m` of the repository's module, a DVC stage's command, a `dvc exp run`
    copy); the current directory when the program is an installed launcher (ipykernel,
    papermill, pytest: the code they run is the current directory's) or no file at all
    (`python -c`, an interactive session); None for a script outside every work tree, even
    started from inside one (its code is not this clone's)."""
    import sys

    main = _program_file(sys)
    if main is not None and not _installed(main, sys):  # a launcher: even in a repo's .venv
        where = os.path.dirname(os.path.abspath(main))
        # a script elsewhere: the clone it was started from never held it
        return where if _in_work_tree(where) else None
    cwd = os.getcwd()
    return cwd if _in_work_tree(cwd) else None


def _program_file(sys: Any) -> str | None:
    """The program's file: `sys.argv[0]` (what MLflow's own git context reads; `python -m`
    sets it to the module's file), else `__main__.__file__`; None for `-c` and sessions."""
    for main in (
        sys.argv[0] if sys.argv else None,
        getattr(sys.modules.get("__main__"), "__file__", None),
    ):
        if isinstance(main, str) and main not in ("", "-c", "-m") and os.path.isfile(main):
            return main
    return None


def _installed(path: str, sys: Any) -> bool:
    """Whether a program file is installed code (a launcher, a tool) rather than a script."""
    if "-packages" in path:
        return True
    full = os.path.realpath(path)
    homes = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.expanduser("~/.local")}
    return any(full.startswith(os.path.realpath(h) + os.sep) for h in homes if h)


def _in_work_tree(path: str) -> bool:
    probe = path
    while True:
        if os.path.exists(os.path.join(probe, ".git")):
            return True
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent


# ---- which run a stamp was taken for ----------------------------------------------------------

# stamps taken by `mlflow.start_run()` whose run is not known yet: (runs dir, stamp id, the
# length of MLflow's active-run stack when the stamp was taken, the last ended run then)
_PENDING: list[tuple[str, str, int, str | None]] = []


def _fluent() -> Any:
    import sys

    return sys.modules.get("mlflow.tracking.fluent")


def _note_pending(runs: str, stamp: str) -> None:
    """Remember a stamp MLflow is about to create a run for: the run will be pushed on the
    active-run stack at its current length."""
    fluent = _fluent()
    if fluent is None or _asker() != "start_run":
        return
    stack = fluent._active_run_stack.get()
    _PENDING.append((runs, stamp, len(stack), fluent._last_active_run_id.get()))


def _resolve_pending() -> None:
    """Write the run id into the local record of each pending stamp whose run can be told
    for sure: the run at the stamp's place on the active-run stack, or, when exactly that run
    was ended since, MLflow's last ended run. Called at the next stamp and at exit; between
    two calls MLflow creates at most one stamped run. Unsure: the record names no run."""
    import json

    fluent = _fluent()
    pending = list(_PENDING)
    _PENDING.clear()
    if fluent is None:
        return
    stack = fluent._active_run_stack.get()
    last = fluent._last_active_run_id.get()
    for runs, stamp, depth, last_before in pending:
        run_id = None
        if len(stack) > depth:
            run_id = stack[depth].info.run_id
        elif len(stack) == depth and last and last != last_before:
            run_id = last
        if not run_id:
            continue
        path = os.path.join(runs, f"{stamp}.json")
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
            if isinstance(record, dict) and not record.get("run"):
                record["run"] = str(run_id)
                _write_json(path, json.dumps(record, sort_keys=True, default=repr))
        except (OSError, ValueError):
            continue


# ---- taking a stamp ---------------------------------------------------------------------------


def take_stamp(cwd: str, *, at_exit: bool = True) -> dict[str, str]:
    """Stamp a run that starts now in the work tree containing `cwd`: write the local record
    and return the run tags. Registers (once) the exit handler that records the end state, and
    the audit hook that notes which files the process opens for writing."""
    import json
    import time
    import uuid

    started = time.time()
    facts = _git_facts(cwd)
    if facts is None:
        return {}
    root, git_dir, common_dir, head = facts
    home = _parent_clone(root)  # a `dvc exp run --temp/--queue` copy: its parent clone
    record_root, record_common = (home[0], home[2]) if home else (root, common_dir)
    clone = clone_id(record_common)
    code, untracked, data = _code_and_data(root, git_dir)
    from repro_hooks.links.record import fingerprint

    stamp = uuid.uuid4().hex
    runs = os.path.join(record_common, "repro-hooks", "runs")
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "stamp": stamp,
        "clone": clone,
        "root": record_root,
        "head": head,
        "started": started,
        "pid": os.getpid(),
        "code": code,
        "untracked": untracked,
        "start": _store_state(runs, data),
    }
    if home:
        record["workspace"] = root
        record["experiment"] = os.environ.get("DVC_EXP_NAME") or None
    stage = _stage_at_start(root, git_dir, os.environ, home[0] if home else None)
    if stage is not None:
        record["stage"] = stage
    os.makedirs(runs, exist_ok=True)
    _write_json(
        os.path.join(runs, f"{stamp}.json"), json.dumps(record, sort_keys=True, default=repr)
    )
    if at_exit:
        with contextlib.suppress(Exception):
            _resolve_pending()  # the previous stamp's run exists by now
            _note_pending(runs, stamp)
        if not _STAMPED:
            import atexit

            atexit.register(_record_end_at_exit)
            if not _HOOK:
                _EARLY.clear()  # installed only now: reads before this run are unknown
            _install_audit_hook()
        _STAMPED.append((runs, stamp, root, started))
    tags = {
        CLONE_TAG: clone,
        STAMP_TAG: stamp,
        HEAD_TAG: head or "",
        DATA_TAG: fingerprint((p, h) for p, h in data.items() if h),
    }
    if stage is not None:
        # a stage run is justified by its stage (dvc.lock), not by a clean tree: `dvc repro`
        # after a params change always runs from a tree that differs from HEAD
        tags[STAGE_TAG] = stage["address"]
        tags[KIND_TAG] = "stage"
    else:
        tags[CLEAN_TAG] = "true" if set(code) <= set(untracked) else "false"
        tags[KIND_TAG] = "tree"
    return tags


def _parent_clone(root: str) -> tuple[str, str, str, str | None] | None:
    """The git facts of the clone a DVC experiment copy (`<clone>/.dvc/tmp/exps/<tmp>`) was made
    from, or None when `root` is no such copy."""
    if EXPS_DIR not in root + "/":
        return None
    parent = (root + "/").split(EXPS_DIR, 1)[0]
    return _git_facts(parent) if parent else None


# ---- the audit hook: which files the training process wrote ---------------------------------


_HOOK: list[str] = []  # "installed" once the audit hook is
_PAUSED: list[int] = [0]  # > 0 while the stamp itself reads and writes (not the run's doing)


def _install_audit_hook() -> None:
    import sys

    if _HOOK:
        return
    with contextlib.suppress(Exception):
        sys.addaudithook(_audit)
        _HOOK.append("installed")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Note a path opened for writing (`open` with write flags) or renamed into place. Every
    other event returns at the first comparison: Python calls this for every audited event."""
    if event == "open":
        if len(args) < 3 or isinstance(args[0], int) or _PAUSED[0]:
            return
        if not (args[2] & _WRITE_FLAGS):
            _note_read(args[0])
            return
        path = args[0]
    elif event == "os.rename":
        if len(args) < 2 or isinstance(args[1], int) or _PAUSED[0]:
            return
        path = args[1]
    else:
        return
    try:
        if len(_WRITES) < MAX_WRITES:
            import time

            name = os.fsdecode(path)
            _WRITES[name if os.path.isabs(name) else os.path.join(os.getcwd(), name)] = time.time()
    except Exception:
        pass


def _note_read(path: Any) -> None:
    try:
        if len(_READS) < MAX_WRITES:
            name = os.fsdecode(path)
            full = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
            if full not in _READS:
                import time

                _READS[full] = time.time()
    except Exception:
        pass


def read_paths(root: str) -> list[str]:
    """Repository-relative paths under `root` this process opened for reading (at any time:
    a script commonly loads its data before `mlflow.start_run()`)."""
    return _relative(root, _READS)


def _reads_any(read: list[str], outputs: set[str]) -> bool:
    """Whether any read path is a DVC output or a file inside one."""
    for path in read:
        probe = path
        while True:
            if probe in outputs:
                return True
            if "/" not in probe:
                break
            probe = probe.rsplit("/", 1)[0]
    return False


def written_since(root: str, since: float) -> list[str]:
    """Repository-relative paths under `root` this process opened for writing since `since`."""
    return _relative(root, {p: w for p, w in list(_WRITES.items()) if w >= since})


def _relative(root: str, paths: dict[str, float]) -> list[str]:
    real_root = os.path.realpath(root)
    prefixes = (os.path.abspath(root) + os.sep, real_root + os.sep)
    found = set()
    for path in paths:
        if not path.startswith(prefixes):  # most reads are imports from outside: no realpath
            continue
        real = os.path.realpath(path)
        if real.startswith(real_root + os.sep):
            rel = real[len(real_root) + 1 :].replace(os.sep, "/")
            if not rel.startswith((".git/", ".dvc/")):  # git's and DVC's own (our records too)
                found.add(rel)
    return sorted(found)


# ---- stage runs: the stage DVC ran, as the working tree defines it at the start ----------------


def _stage_at_start(
    root: str, git_dir: str, env: Any, parent_root: str | None
) -> dict[str, Any] | None:
    """For a command `dvc repro`/`dvc exp run` runs (DVC_STAGE set): the stage, resolved from
    the working tree's dvc.yaml, with its deps' hashes and params' values now and its cmd."""
    address = env.get("DVC_STAGE")
    if not address:
        return None
    try:
        return _resolve_stage(root, git_dir, address, env.get("DVC_ROOT") or "", parent_root)
    except Exception:
        return None


def _candidate_files(root: str, address: str, dvc_root: str, parent_root: str | None) -> list[str]:
    """Repository-relative dvc.yaml paths the address may name: DVC writes it relative to the
    directory `dvc` ran in, which the command does not know (DVC_ROOT, the command's working
    directory and its parents are tried)."""
    import posixpath

    file_part, colon, _ = address.rpartition(":")
    file_part = file_part.replace(os.sep, "/") if colon else "dvc.yaml"
    bases: list[str] = []
    for place, base_root in ((dvc_root, parent_root or root), (os.getcwd(), root)):
        if not place:
            continue
        real = os.path.realpath(place)
        top = os.path.realpath(base_root)
        if real == top or real.startswith(top + os.sep):
            rel = os.path.relpath(real, top).replace(os.sep, "/")
            while True:
                bases.append("" if rel == "." else rel)
                if rel in ("", "."):
                    break
                rel = posixpath.dirname(rel) or "."
    found: list[str] = []
    for base in [*bases, ""]:
        path = posixpath.normpath(posixpath.join(base, file_part))
        if not path.startswith("../") and path not in found:
            found.append(path)
    return found


def _resolve_stage(
    root: str, git_dir: str, address: str, dvc_root: str, parent_root: str | None
) -> dict[str, Any] | None:
    from pathlib import Path

    from repro_hooks.dvc.files import is_url
    from repro_hooks.dvc.params import param_value

    name = address.rpartition(":")[2]
    cwd = os.path.relpath(os.path.realpath(os.getcwd()), os.path.realpath(root))
    cwd = "." if cwd == "." else cwd.replace(os.sep, "/")
    chosen = None
    for yaml_rel in _candidate_files(root, address, dvc_root, parent_root):
        if not os.path.isfile(os.path.join(root, yaml_rel)):
            continue
        stages, _ = _worktree_stages(root, yaml_rel)
        stage = stages.get(name)
        if stage is None:
            continue
        if chosen is None or stage.wdir == cwd:
            chosen = (yaml_rel, stage)
        if stage.wdir == cwd:
            break
    if chosen is None:
        return None
    yaml_rel, stage = chosen
    deps = [d for d in stage.deps if not is_url(d)]
    # the .dvcignore files that can filter the deps: the root's and their directories' own
    dirs = {""}
    for dep in deps:
        parent = dep
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            dirs.add(parent)
    ignores = sorted(
        name
        for name in (f"{d}/.dvcignore" if d else ".dvcignore" for d in dirs)
        if os.path.isfile(os.path.join(root, name))
    )
    hashes = _measure(root, git_dir, {(d, "md5") for d in deps}, ignores, START_HASH_BUDGET)
    from repro_hooks.dvc.hashing import DvcIgnore, HashCache
    from repro_hooks.dvc.worktree import Measurer

    loaded = Measurer(Path(root), DvcIgnore({}), HashCache(None)).measure(
        set(), set(), set(stage.params)
    )
    params: dict[str, Any] = {}
    for pfile, keys in stage.params.items():
        config = loaded.params.get(pfile)
        if config is None:
            params[pfile] = None  # missing or unreadable
            continue
        if keys:
            values = {}
            for key in keys:
                ok, value = param_value(config, key)
                if ok:
                    values[key] = value
            params[pfile] = values
        else:
            params[pfile] = dict(config) if isinstance(config, dict) else {}
    short = name if yaml_rel == "dvc.yaml" else f"{yaml_rel}:{name}"
    return {
        "address": short,
        "dvc_stage": address,
        "file": yaml_rel,
        "name": name,
        "cmd": stage.cmd,
        "wdir": stage.wdir,
        "deps": {d: hashes.get(d, "") for d in deps},
        "params": params,
        "outs": [o.path for o in stage.outs],
    }


def notebook_digest(data: bytes) -> str:
    """A notebook's code, without what running it changes: outputs, execution counts and
    metadata (papermill writes timings there) are left out; `nb:` + SHA-256 of the cells' types
    and sources. Bytes that are no notebook JSON digest as they are."""
    import hashlib
    import json

    try:
        nb = json.loads(data)
        cells = [
            [
                c.get("cell_type", ""),
                "".join(s) if isinstance(s := c.get("source", ""), list) else s,
            ]
            for c in nb.get("cells", [])
        ]
        text = json.dumps(cells, sort_keys=True).encode("utf-8", "surrogatepass")
    except Exception:
        text = b"raw\0" + data
    return NOTEBOOK_PREFIX + hashlib.sha256(text).hexdigest()


def _git(cwd: str, *args: str) -> bytes | None:
    import subprocess

    from repro_hooks.git.process import git_env

    env = git_env(literal_pathspecs=False)  # `:(glob)` pathspecs below
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git_parallel(cwd: str, *commands: tuple[str, ...]) -> list[bytes | None]:
    """Several git commands at once (each its own process), their outputs in order."""
    import subprocess

    from repro_hooks.git.process import git_env

    env = git_env(literal_pathspecs=False)  # `:(glob)` pathspecs below
    procs: list[subprocess.Popen[bytes] | None] = []
    for args in commands:
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            procs.append(proc)
        except OSError:
            procs.append(None)
    outs: list[bytes | None] = []
    for started in procs:
        if started is None:
            outs.append(None)
            continue
        out, _ = started.communicate()
        outs.append(out if started.returncode == 0 else None)
    return outs


def _git_facts(cwd: str) -> tuple[str, str, str, str | None] | None:
    args = (
        "rev-parse",
        "--path-format=absolute",
        "--show-toplevel",
        "--absolute-git-dir",
        "--git-common-dir",
    )
    out = _git(cwd, *args, "HEAD")
    head: str | None = None
    if out is None:  # no commit yet
        out = _git(cwd, *args)
        if out is None:
            return None
    # git's lines end at b"\n" only (a path may hold U+2028): never splitlines()
    lines = out.decode("utf-8", "surrogateescape").split("\n")[:-1]
    if len(lines) < 3:
        return None
    if len(lines) > 3:
        head = lines[3].strip()
    return lines[0], lines[1], lines[2], head


def clone_id(common_dir: str) -> str:
    """This clone's id: random, created once in <git common dir>/repro-hooks/clone-id. The file
    appears whole or not at all (written aside, then hard-linked into place: the first writer
    wins, a concurrent stamp reads the winner's id)."""
    import uuid

    existing = read_clone_id(common_dir)
    if existing:
        return existing
    path = os.path.join(common_dir, "repro-hooks", "clone-id")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    new = uuid.uuid4().hex
    tmp = f"{path}.{os.getpid()}.{new}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(new + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_clone_id(common_dir) or new
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return new


def read_clone_id(common_dir: str) -> str | None:
    """The clone id if this clone ever stamped a run (never creates one)."""
    try:
        with open(os.path.join(common_dir, "repro-hooks", "clone-id"), encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _write_json(path: str, text: str) -> None:
    """Write a file whole or not at all (a unique temporary name, then rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---- code: what differs from HEAD -------------------------------------------------------------


def is_code_path(path: str) -> bool:
    """Paths that are code for the link's code rule: everything git tracks except DVC's own
    records and ignore files (`dvc add` rewrites those; the data rule covers what they say)."""
    name = path.rsplit("/", 1)[-1]
    return not (name.endswith(".dvc") or name in ("dvc.lock", ".gitignore", ".dvcignore"))


def _code_and_data(
    root: str, git_dir: str
) -> tuple[dict[str, str | None], list[str], dict[str, str]]:
    """(changed code files: {path: blob}, which of them git does not track, the data state)."""
    import marshal

    # the tracked DVC files change only with the index: their list is kept, keyed by its stat
    index_key = _stat_key(os.path.join(git_dir, "index"))
    list_cache = os.path.join(git_dir, _LIST_CACHE)
    tracked_out: bytes | None = None
    cached_outs: dict[str, str] | None = None
    try:
        with open(list_cache, "rb") as fh:
            cached = marshal.load(fh)
        if isinstance(cached, tuple) and index_key is not None and cached[0] == index_key:
            tracked_out, cached_outs = cached[1], cached[2]
    except (OSError, EOFError, ValueError, TypeError, IndexError):
        pass
    commands: list[tuple[str, ...]] = [("status", "--porcelain=v1", "-z", "-uall", "--no-renames")]
    if tracked_out is None:
        commands.append(
            (
                "ls-files",
                "-z",
                "--cached",
                "--",
                ":(glob)**/*.dvc",
                ":(glob)**/dvc.lock",
                ":(glob)**/dvc.yaml",
                ":(glob)**/.dvcignore",
            )
        )
    outs = _git_parallel(root, *commands)
    status_out = outs[0]
    if tracked_out is None:
        tracked_out = outs[1]
    changed: dict[str, str | None] = {}
    untracked: list[str] = []
    untracked_dvc: list[str] = []
    dvc_dirty = status_out is None
    for entry in (status_out or b"").split(b"\0"):
        if len(entry) < 4:
            continue
        xy, path = entry[:2], entry[3:].decode("utf-8", "surrogateescape")
        if _is_dvc_record(path):
            dvc_dirty = True
            if xy == b"??":
                untracked_dvc.append(path)
        if is_code_path(path):
            changed[path] = None
            if xy == b"??":
                untracked.append(path)
    dvc_paths = [
        p.decode("utf-8", "surrogateescape") for p in (tracked_out or b"").split(b"\0") if p
    ]
    all_dvc = [*dvc_paths, *untracked_dvc]
    if dvc_dirty or not isinstance(cached_outs, dict):
        # the DVC files' parse (cached per file by stat) is reused whole while the index is
        # unchanged and git sees no DVC file changed in the work tree
        cached_outs = recorded_outputs(root, git_dir, all_dvc)
        if not dvc_dirty and tracked_out is not None and index_key is not None:
            with contextlib.suppress(OSError):
                _write_bytes(list_cache, marshal.dumps((index_key, tracked_out, cached_outs)))
    data = data_state(root, git_dir, all_dvc, cached_outs)
    # a DVC output git tracks (`cache: false` metrics and plots) is data, never code
    for path in [p for p in changed if p in cached_outs]:
        del changed[path]
    code = _hash_code_files(root, changed)
    untracked = [p for p in untracked if p in changed]
    return code, sorted(untracked), data


def _is_dvc_record(path: str) -> bool:  # DVC's files, and those that change what DVC sees
    from repro_hooks.dvc.names import is_dvc_file

    return is_dvc_file(path) or path.rsplit("/", 1)[-1] in (".dvc", ".dvcignore")


def _hash_code_files(root: str, changed: dict[str, str | None]) -> dict[str, str | None]:
    """{path: blob sha as `git add` would store it, None if deleted, "?" if not hashed}."""
    import subprocess

    from repro_hooks.git.process import git_env

    todo = []
    for path in sorted(changed)[:MAX_CODE_FILES]:
        try:
            st = os.lstat(os.path.join(root, path))
        except OSError:
            continue  # deleted: None
        if st.st_size > MAX_CODE_FILE or not (os.path.isfile(os.path.join(root, path))):
            changed[path] = "?"
        elif path.endswith(".ipynb"):
            try:
                with open(os.path.join(root, path), "rb") as fh:
                    changed[path] = notebook_digest(fh.read())
            except OSError:
                changed[path] = "?"
        else:
            todo.append(path)
    for path in sorted(changed)[MAX_CODE_FILES:]:
        changed[path] = "?"
    if todo:
        try:
            proc = subprocess.run(
                ["git", "hash-object", "--stdin-paths"],
                cwd=root,
                check=False,
                input="\n".join(todo).encode("utf-8", "surrogateescape") + b"\n",
                capture_output=True,
                env=git_env(),
            )
            shas = proc.stdout.decode().split()
        except OSError:
            shas = []
        for path, sha in zip(todo, shas, strict=False):
            changed[path] = sha
        for path in todo[len(shas) :]:
            changed[path] = "?"
    return changed


# ---- data: the hash of every DVC output, through the hash cache -------------------------------

_PARSE_CACHE = "repro-hooks/stamp-dvc-files.bin"
_LIST_CACHE = "repro-hooks/stamp-dvc-list.bin"


def _stat_key(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def recorded_outputs(root: str, git_dir: str, dvc_paths: list[str]) -> dict[str, str]:
    """{output path: algorithm} for every output the given DVC files record (`.dvc` files and
    dvc.lock outs), parsed once and cached by the files' stat data (a dvc.lock's: with its
    dvc.yaml's and the vars files a templated dvc.yaml read)."""
    import marshal

    from repro_hooks.dvc.files import DvcFileError, parse_dvc_file, parse_dvc_lock
    from repro_hooks.dvc.hashing import read_regular

    cache_path = os.path.join(git_dir, _PARSE_CACHE)
    try:
        with open(cache_path, "rb") as fh:
            cache: dict[str, Any] = marshal.load(fh)
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, EOFError, ValueError, TypeError):
        cache = {}
    fresh: dict[str, Any] = {}
    outs: dict[str, str] = {}
    changed = False
    paths = set(dvc_paths)
    join, stat_, get = os.path.join, os.stat, cache.get
    for rel in paths:
        is_lock = rel.endswith("dvc.lock") and (rel == "dvc.lock" or rel.endswith("/dvc.lock"))
        if not (is_lock or rel.endswith(".dvc")):
            continue
        full = join(root, rel)
        try:
            st = stat_(full)
            key: Any = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        except OSError:
            key = None
        yaml_rel = rel[: -len("dvc.lock")] + "dvc.yaml"
        hit = get(rel)
        vars_read: tuple[str, ...] = hit[2] if hit is not None and len(hit) > 2 else ()
        file_key = key
        if is_lock:
            key = (file_key, _stat_key(join(root, yaml_rel)), _vars_key(root, vars_read))
        if hit is not None and hit[0] == key:
            found = hit[1]
        else:
            changed = True
            found = []
            vars_read = ()
            try:
                if is_lock:
                    wdirs: dict[str, str] = {}
                    if yaml_rel in paths:
                        stages, vars_read = _worktree_stages(root, yaml_rel)
                        wdirs = {s.name: s.wdir for s in stages.values()}
                        key = (
                            file_key,
                            _stat_key(join(root, yaml_rel)),
                            _vars_key(root, vars_read),
                        )
                    lock = parse_dvc_lock(read_regular(full), rel, wdirs)
                    parsed = [o for st in lock.values() for o in st.outs]
                else:
                    parsed = parse_dvc_file(read_regular(full), rel).outs
                found = [(o.path, o.algorithm) for o in parsed]
            except (OSError, DvcFileError):
                found = []
        fresh[rel] = (key, found, vars_read)
        for path, algorithm in found:
            outs[path] = algorithm
    if changed or len(fresh) != len(cache):
        with contextlib.suppress(OSError):
            _write_bytes(cache_path, marshal.dumps(fresh))
    return outs


def _vars_key(root: str, vars_read: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(_stat_key(os.path.join(root, p)) for p in vars_read)


def _worktree_stages(root: str, yaml_rel: str) -> tuple[dict[str, Stage], tuple[str, ...]]:
    """A working-tree dvc.yaml's stages, a templated one resolved with its vars files and its
    project's config (as check-dvc reads them), and the vars files it read."""
    from pathlib import Path

    from repro_hooks.dvc.files import parse_dvc_yaml
    from repro_hooks.dvc.hashing import HashCache, read_regular

    content = read_regular(os.path.join(root, yaml_rel))
    read: list[str] = []
    loaders: list[Any] = []

    def load(rel: str) -> Any:
        if not loaders:  # a dvc.yaml that does not template never gets here
            from repro_hooks.dvc.hashing import DvcIgnore
            from repro_hooks.dvc.worktree import Measurer, vars_loader

            safe = Measurer(Path(root), DvcIgnore({}), HashCache(None)).path_is_safe
            loaders.append(vars_loader(Path(root), safe))
        read.append(rel)
        return loaders[0](rel)

    def parsing() -> Any:
        from repro_hooks.dvc.worktree import DvcProjects

        return DvcProjects(Path(root)).parsing_for(yaml_rel)()

    stages = parse_dvc_yaml(content, yaml_rel, load, parsing)
    return stages, tuple(dict.fromkeys(read))


def _write_bytes(path: str, data: bytes) -> None:
    import tempfile

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _measure(
    root: str,
    git_dir: str,
    targets: set[tuple[str, str]],
    ignore_files: list[str],
    budget: int | None = None,
) -> dict[str, str]:
    """{path: hash} (empty string: absent or unreadable) via check-dvc's hash cache. With a
    `budget` (bytes), regular files the cache does not know are hashed only up to that many
    bytes; the rest are recorded as `defer:<inode>:<mtime_ns>:<size>`, resolved at the end of
    the run if the file is still the same (start_run is not held up by a cold cache)."""
    import stat
    from pathlib import Path

    from repro_hooks.dvc.hashing import DvcIgnore, HashCache, read_regular
    from repro_hooks.dvc.worktree import CACHE_FILE, Measurer

    contents = {}
    for rel in ignore_files:
        try:
            contents[rel] = read_regular(os.path.join(root, rel))
        except OSError:
            continue
    try:
        ignore = DvcIgnore(contents)
    except ImportError:
        ignore = DvcIgnore({})
    cache = HashCache(Path(git_dir) / CACHE_FILE)
    found: dict[str, str] = {}
    rest: set[tuple[str, str]] = set()
    for path, algo in targets:
        # the warm path: a regular file (not a symlink) whose hash the cache holds for this
        # very inode, mtime, ctime and size; anything else goes through the full measurement
        full = os.path.join(root, path)
        try:
            st = os.lstat(full)
        except OSError:
            st = None
        hit = cache.get(full, st, algo) if st is not None and stat.S_ISREG(st.st_mode) else None
        if hit is not None and not (ignore and ignore.is_ignored(path)):
            found[path] = hit
        elif budget is not None and st is not None and stat.S_ISREG(st.st_mode):
            if st.st_size > budget:
                found[path] = f"{DEFER}{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
                continue
            budget -= st.st_size
            rest.add((path, algo))
        else:
            rest.add((path, algo))
    if rest:
        tree = Measurer(Path(root), ignore, cache).measure(rest, set(), set())
        cache.save()
        for path, algo in rest:
            found[path] = tree.hashes.get((path, algo)) or ""
    return found


def data_state(
    root: str, git_dir: str, dvc_paths: list[str], outs: dict[str, str] | None = None
) -> dict[str, str]:
    """{output path: current hash} for every output the work tree's DVC files record."""
    if outs is None:
        outs = recorded_outputs(root, git_dir, dvc_paths)
    ignores = [p for p in dvc_paths if p.rsplit("/", 1)[-1] == ".dvcignore"]
    return _measure(root, git_dir, set(outs.items()), ignores, START_HASH_BUDGET)


def resolve_deferred(start: dict[str, str], end: dict[str, str], root: str) -> dict[str, str]:
    """Start values deferred for a cold cache: the end hash where the file is still the very
    file seen at the start (same inode, mtime and size), else unknown ("")."""
    out = dict(start)
    for path, value in start.items():
        if not value.startswith(DEFER):
            continue
        out[path] = ""
        try:
            st = os.lstat(os.path.join(root, path))
        except OSError:
            continue
        if value == f"{DEFER}{st.st_ino}:{st.st_mtime_ns}:{st.st_size}" and end.get(path):
            out[path] = end[path]
    return out


# ---- the end of the run -----------------------------------------------------------------------


def end_state(
    root: str, git_dir: str, since: float, extra: set[tuple[str, str]] | None = None
) -> dict[str, str]:
    """The data state as the training process ends: every recorded output, plus every untracked
    file written since `since` and each of its directories that holds no tracked file (an output
    the run created, which `dvc add` records only afterwards)."""
    from repro_hooks.dvc.worktree import SKIPPED_DIRS

    listed = _git(
        root,
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "-t",
        *(a for d in SKIPPED_DIRS for a in ("-x", d)),
    )
    tracked_dirs: set[str] = set()
    dvc_paths: list[str] = []
    written: list[str] = []
    is_data = _data_matcher(root)
    floor_ns = int(since * 1e9) - 1_000_000_000  # filesystem timestamp granularity
    for entry in (listed or b"").split(b"\0"):
        if len(entry) < 3:
            continue
        status, path = entry[:1], entry[2:].decode("utf-8", "surrogateescape")
        if _is_dvc_record(path):
            dvc_paths.append(path)
        if status != b"?":
            parent = path
            while "/" in parent:
                parent = parent.rsplit("/", 1)[0]
                if parent in tracked_dirs:
                    break
                tracked_dirs.add(parent)
            continue
        try:
            st = os.stat(os.path.join(root, path))
        except OSError:
            continue
        if max(st.st_mtime_ns, st.st_ctime_ns) >= floor_ns or is_data(path):
            written.append(path)  # written by the run, or data it may have read
    outs = recorded_outputs(root, git_dir, dvc_paths)
    targets = set(outs.items()) | (extra or set())
    for path in written:
        targets.add((path, outs.get(path, "md5")))
        parent = path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in tracked_dirs:
                break
            targets.add((parent, outs.get(parent, "md5")))
    ignores = [p for p in dvc_paths if p.rsplit("/", 1)[-1] == ".dvcignore"]
    return _measure(root, git_dir, targets, ignores)


def _data_matcher(root: str) -> Callable[[str], bool]:
    """The repository's data patterns (an untracked data file present all along is an input
    the run may have read, which `dvc add` describes only afterwards); the defaults when the
    policy cannot be read."""
    from pathlib import Path

    from repro_hooks.errors import ReproHooksError
    from repro_hooks.policy.config import Policy, load_config

    try:
        policy = load_config(Path(root), None).policy
    except (ReproHooksError, OSError):
        policy = Policy()
    return policy.is_data


def record_end(
    runs_dir: str,
    stamps: list[str],
    root: str,
    since: float,
    *,
    audited: bool = False,
    artifacts: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Add the end state to the local records of `stamps` (one snapshot for all of them): the
    data, the stage's deps and outs for a stage run, (from the audit hook, when the process
    had it) which repository files the process wrote during each run, and (`artifacts`, by
    stamp) the run's id and the sha256 of every file it wrote to its artifact store."""
    import json
    import time

    facts = _git_facts(root)
    if facts is None:
        return
    records: dict[str, dict[str, Any]] = {}
    extra: set[tuple[str, str]] = set()
    for stamp in stamps:
        path = os.path.join(runs_dir, f"{stamp}.json")
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        records[stamp] = record
        stage = record.get("stage")
        if isinstance(stage, dict):
            for key in ("deps", "outs"):
                extra.update((p, "md5") for p in stage.get(key) or () if isinstance(p, str))
    data = end_state(root, facts[1], since, extra)
    ended = time.time()
    digest = _store_state(runs_dir, data)
    for stamp, record in records.items():
        record["end"] = digest
        record["ended"] = ended
        if audited:
            started = record.get("started")
            record["written"] = written_since(
                root, started if isinstance(started, (int, float)) else since
            )
            if _EARLY:  # the hook saw the whole process (it was installed at mlflow's import)
                outputs = set(data) | set(_load_state(runs_dir, record.get("start")) or ())
                read = read_paths(root)
                if _reads_any(read, outputs):
                    # kept only when it shows the process reading DVC data through Python at
                    # all: a reader in C (pyarrow, h5py) opens files the hook never sees, and
                    # an empty list would then claim the run read no data
                    record["read"] = read
        start = _load_state(runs_dir, record.get("start"))
        if start is not None and any(v.startswith(DEFER) for v in start.values()):
            record["start"] = _store_state(runs_dir, resolve_deferred(start, data, root))
        stage = record.get("stage")
        if isinstance(stage, dict) and isinstance(stage.get("deps"), dict):
            stage["deps"] = resolve_deferred(stage["deps"], data, root)
        if artifacts and stamp in artifacts:
            record[ARTIFACTS_KEY] = artifacts[stamp]
        path = os.path.join(runs_dir, f"{stamp}.json")
        _write_json(path, json.dumps(record, sort_keys=True, default=repr))


def _record_end_at_exit() -> None:
    _PAUSED[0] += 1  # our own reads and writes from here on are not the run's
    try:
        with contextlib.suppress(Exception):
            _resolve_pending()  # before MLflow's own exit handler ends a run left open
        by_place: dict[tuple[str, str], tuple[list[str], float]] = {}
        for runs, stamp, root, started in _STAMPED:
            ids, since = by_place.setdefault((runs, root), ([], started))
            ids.append(stamp)
            by_place[(runs, root)] = (ids, min(since, started))
        files = _artifacts_at_exit([stamp for _, stamp, _, _ in _STAMPED])
        for (runs, root), (ids, since) in by_place.items():
            record_end(runs, ids, root, since, audited=True, artifacts=files)
    except Exception:
        pass


# ---- the files the run wrote (its artifacts and logged models) --------------------------------

ARTIFACTS_KEY = "artifacts"  # in the record: {"run": run id, "files": {name: sha256}}
_TRACKING_URIS: dict[str, str] = {}  # stamp -> the tracking URI the run was created with
_ARTIFACT_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def runs_of_stamps(tracker: Tracker, stamps: list[str], hints: list[str]) -> dict[str, str]:
    """{stamp: run id} for the runs this process stamped: the `hints` (run ids MLflow still
    holds: the active and the last active run) first, then a search by the stamp tag in their
    experiments, then (when none was found there) in every experiment (the first 1,000). A
    stamp found on two runs was copied: it names neither."""
    found: dict[str, str] = {}
    experiments: list[str] = []
    for run_id in hints:
        run = tracker.run_or_none(run_id)
        if run is None:
            continue
        stamp = run.tags.get(STAMP_TAG)
        if stamp in stamps:
            found[stamp] = run_id
        if run.experiment_id not in experiments:
            experiments.append(run.experiment_id)
    missing = [s for s in stamps if s not in found and all(c in "0123456789abcdef" for c in s)]
    for wide in (False, True):
        if not missing or (wide and found):
            # every experiment only when nothing was found nearby: MLflow stamps each logged
            # model too (it asks the context providers for a logged model's tags), and those
            # stamps name no run anywhere
            break
        if wide:
            experiments = tracker.active_experiments(limit=1000)
        for stamp in list(missing):
            for start in range(0, len(experiments), 100):
                runs = tracker.runs_tagged(experiments[start : start + 100], STAMP_TAG, stamp, 2)
                if len(runs) == 1:  # a stamp on two runs was copied: it proves nothing
                    found[stamp] = runs[0]
                    missing.remove(stamp)
                    break
                if runs:
                    missing.remove(stamp)
                    break
    return found


def _note_tracking_uri(stamp: str) -> None:
    """Remember the tracking URI in force as MLflow creates the stamped run: at exit it may
    have been reset, and MLflow's default would create a store in the current directory."""
    import sys

    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        _TRACKING_URIS[stamp] = str(mlflow.get_tracking_uri())


def _artifacts_at_exit(stamps: list[str]) -> dict[str, dict[str, Any]]:
    """For each stamp of this process whose run can be found: the run id and the sha256 of
    every file in its artifact store (artifacts and logged models). Only where the training
    process imported MLflow, in the store each run was created in; bounded HTTP; {} on any
    failure."""
    import sys

    fluent = sys.modules.get("mlflow.tracking.fluent")
    by_uri: dict[str, list[str]] = {}
    for stamp in stamps:
        if stamp in _TRACKING_URIS:
            by_uri.setdefault(_TRACKING_URIS[stamp], []).append(stamp)
    if fluent is None or not by_uri:
        return {}
    from repro_hooks.environ import restored

    with restored(os.environ, _ARTIFACT_BOUNDS):
        os.environ.update(_ARTIFACT_BOUNDS)
        return _end_digests(fluent, by_uri)


def _end_digests(fluent: Any, by_uri: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    try:
        from repro_hooks.deploy.artifacts import run_digests
        from repro_hooks.tracking.mlflow import MlflowTracker

        hints = [r.info.run_id for r in fluent._active_run_stack.get()]
        last = fluent._last_active_run_id.get()
        if last:
            hints.append(last)
        out: dict[str, dict[str, Any]] = {}
        for uri, group in by_uri.items():
            try:
                tracker = MlflowTracker(uri)
                found = runs_of_stamps(tracker, group, hints)
            except Exception:
                continue
            for stamp, run_id in found.items():
                try:
                    files = run_digests(tracker.registry(), run_id)
                    out[stamp] = {"run": run_id, "files": files}
                except Exception:
                    continue
        return out
    except Exception:
        return {}


def _store_state(runs_dir: str, data: dict[str, str]) -> str:
    """Keep a data state once (most runs see the same data): runs/states/<sha256>.json."""
    import hashlib
    import json

    text = json.dumps(data, sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    path = os.path.join(runs_dir, "states", f"{digest}.json")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_json(path, text)
    return digest


def _load_state(runs_dir: str, digest: object) -> dict[str, str] | None:
    import json

    if not isinstance(digest, str) or not all(c in "0123456789abcdef" for c in digest):
        return None
    try:
        with open(os.path.join(runs_dir, "states", f"{digest}.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_record(common_dir: str, stamp: str) -> dict[str, Any] | None:
    """A stamp's local record with its data states read in ("start", "end"), or None."""
    import json

    if not stamp or not all(c in "0123456789abcdef" for c in stamp):
        return None
    try:
        with open(
            os.path.join(common_dir, "repro-hooks", "runs", f"{stamp}.json"), encoding="utf-8"
        ) as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        return None
    runs = os.path.join(common_dir, "repro-hooks", "runs")
    record["start"] = _load_state(runs, record.get("start")) or {}
    if "end" in record:
        end = _load_state(runs, record["end"])
        if end is None:
            del record["end"]
        else:
            record["end"] = end
    return record
