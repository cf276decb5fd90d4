"""Parsers for DVC's files: `.dvc`, `dvc.yaml` and `dvc.lock`, as DVC 3 writes and reads them.

Every parser takes the file's bytes (from the working tree or from a commit) and its
repository-relative POSIX name, and returns plain records whose paths are repository-relative,
normalised and known to stay inside the repository. Anything malformed or unsafe raises
DvcFileError naming the file and the reason: never a traceback, and never a path outside.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from repro_hooks.errors import ReproHooksError

# PyYAML builds ~30k nodes a second on a loaded machine: a 10 MB list of outputs took 23 s.
# Real DVC files are far smaller (a dvc.lock of 10,000 stages is ~3 MB).
MAX_DVC_FILE_SIZE = 8 * 1024 * 1024
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")
_WINDOWS_ABS_RE = re.compile(r"^[a-zA-Z]:[\\/]")
_MD5_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DvcFileError(ReproHooksError):
    """A DVC file that cannot be used: `<file>: <reason>`."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = reason
        super().__init__(f"{file}: {reason}")


@dataclass(frozen=True)
class Output:
    """A DVC output or dependency with what a DVC file recorded about it."""

    path: str  # POSIX, relative to the repository root, wdir resolved
    hash_value: str | None  # "<md5>" or "<md5>.dir"; None where nothing was recorded
    algorithm: str  # "md5" (DVC 3) or "md5-dos2unix" (legacy DVC 2 entries)
    size: int | None = None
    nfiles: int | None = None
    cache: bool = True
    remote: str | None = None
    source: str = ""  # the DVC file that records it, repository-relative
    stage: str | None = None
    push: bool = True

    @property
    def is_dir(self) -> bool:
        return bool(self.hash_value and self.hash_value.endswith(".dir"))


@dataclass(frozen=True)
class DvcFile:
    outs: list[Output]
    deps: list[Output]
    frozen: bool = False
    is_import: bool = False
    md5: str | None = None
    external_deps: list[str] = field(default_factory=list)  # URLs / other repos' paths


@dataclass(frozen=True)
class StageOut:
    path: str
    cache: bool = True
    persist: bool = False


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str | list[str] | None
    wdir: str  # repository-relative directory the stage's paths are relative to
    deps: list[str]
    outs: list[StageOut]
    params: dict[str, list[str] | None]  # params file -> keys (None: the whole file)
    frozen: bool = False
    templated: bool = False  # uses ${...}, foreach or matrix: only DVC itself can resolve it


@dataclass(frozen=True)
class LockStage:
    name: str
    cmd: str | list[str] | None
    deps: list[Output]
    outs: list[Output]
    params: dict[str, dict[str, Any]]  # params file -> {key: value}


# ---- YAML and paths -------------------------------------------------------------------------


def load_yaml(content: bytes, file: str) -> Any:
    """Parse YAML with the C safe loader. Aliases become shared references (no expansion)."""
    if len(content) > MAX_DVC_FILE_SIZE:
        raise DvcFileError(file, f"too large for a DVC file ({len(content)} bytes)")
    try:
        return yaml.load(content, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DvcFileError(file, f"malformed YAML{where}: {problem}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DvcFileError(file, f"not readable YAML: {exc}") from None
    except RecursionError:
        raise DvcFileError(file, "malformed YAML: nested too deeply") from None


def is_url(path: str) -> bool:
    return bool(_URL_RE.match(path))


def repo_path(base_dir: str, path: Any, file: str, what: str = "path") -> str:
    """Resolve a path written in a DVC file (relative to `base_dir`, itself repository-relative)
    to a normalised repository-relative POSIX path. Absolute paths, URLs and paths that escape
    the repository raise DvcFileError."""
    if not isinstance(path, str) or not path:
        raise DvcFileError(file, f"{what} must be a non-empty string, got {_type(path)}")
    if "\0" in path:
        raise DvcFileError(file, f"{what} {path!r} contains a NUL byte")
    if path.startswith("/") or _WINDOWS_ABS_RE.match(path) or path.startswith("\\"):
        raise DvcFileError(
            file, f"{what} {path!r} is absolute: outputs must be inside the repository"
        )
    if is_url(path):
        raise DvcFileError(
            file, f"{what} {path!r} is not in the repository (external outputs are not supported)"
        )
    joined = posixpath.normpath(posixpath.join(base_dir or ".", path))
    if joined == ".." or joined.startswith("../"):
        raise DvcFileError(file, f"{what} {path!r} escapes the repository")
    if joined == ".":
        raise DvcFileError(file, f"{what} {path!r} is the repository root")
    return joined


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: Any, file: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DvcFileError(file, f"{what} must be a mapping, got {_type(value)}")
    return value


def _list(value: Any, file: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DvcFileError(file, f"{what} must be a list, got {_type(value)}")
    return value


def _opt_int(entry: Mapping[str, Any], key: str, file: str, what: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DvcFileError(file, f"{what}: {key} must be a non-negative integer, got {value!r}")
    return value


def _recorded_output(entry: Any, base_dir: str, file: str, what: str, stage: str | None) -> Output:
    """An out/dep entry as written in a .dvc file or dvc.lock."""
    entry = _mapping(entry, file, what)
    path = repo_path(base_dir, entry.get("path"), file, f"{what} path")
    label = f"{what} {entry.get('path')!r}"
    hash_name = entry.get("hash")
    if hash_name is not None and hash_name != "md5":
        raise DvcFileError(file, f"{label}: unsupported hash {hash_name!r} (expected md5)")
    md5 = entry.get("md5")
    if md5 is not None and (not isinstance(md5, str) or not _MD5_RE.match(md5)):
        raise DvcFileError(file, f"{label}: md5 is not an md5 hash: {md5!r}")
    cache = entry.get("cache", True)
    push = entry.get("push", True)
    if not isinstance(cache, bool) or not isinstance(push, bool):
        raise DvcFileError(file, f"{label}: cache and push must be true or false")
    remote = entry.get("remote")
    if remote is not None and not isinstance(remote, str):
        raise DvcFileError(file, f"{label}: remote must be a string")
    return Output(
        path=path,
        hash_value=md5,
        algorithm="md5" if hash_name == "md5" else "md5-dos2unix",
        size=_opt_int(entry, "size", file, label),
        nfiles=_opt_int(entry, "nfiles", file, label),
        cache=cache,
        remote=remote,
        source=file,
        stage=stage,
        push=push,
    )


def _no_duplicates(outs: list[Output], file: str) -> None:
    seen: set[str] = set()
    for out in outs:
        if out.path in seen:
            raise DvcFileError(file, f"output {out.path!r} is listed twice")
        seen.add(out.path)


# ---- .dvc files -----------------------------------------------------------------------------


# The exact text `dvc add` writes for one output whose name needs no YAML quoting. Matching it
# with a regular expression gives the same mapping YAML would, about 10x faster (check-dvc reads
# every .dvc file on every commit); anything else goes through the YAML parser.
_DVC_ADD_RE = re.compile(
    rb"outs:\n- md5: ([0-9a-f]{32}(?:\.dir)?)\n  size: ([0-9]{1,18})\n(?:  nfiles: ([0-9]{1,18})\n)?"
    rb"  hash: md5\n  path: ([A-Za-z0-9_][A-Za-z0-9_.+-]*)\n"
)

_RESOLVER = yaml.resolver.Resolver()
_YAML_STR = "tag:yaml.org,2002:str"


def _dvc_add_data(content: bytes) -> dict[str, Any] | None:
    match = _DVC_ADD_RE.fullmatch(content)
    if match is None:
        return None
    md5, size, nfiles, path = match.groups()
    tag = _RESOLVER.resolve(yaml.ScalarNode, path.decode(), (True, False))  # type: ignore[no-untyped-call]
    if tag != _YAML_STR:
        return None  # `path: 123`, `path: null`...: YAML decides (and the parser rejects it)
    out: dict[str, Any] = {"md5": md5.decode(), "size": int(size)}
    if nfiles is not None:
        out["nfiles"] = int(nfiles)
    out.update(hash="md5", path=path.decode())
    return {"outs": [out]}


def parse_dvc_file(content: bytes, file: str) -> DvcFile:
    """A `.dvc` file: outs relative to the file's directory (and its `wdir`, if any)."""
    data: Any = _dvc_add_data(content)
    if data is None:
        data = load_yaml(content, file)
    if data is None:
        raise DvcFileError(file, "empty DVC file")
    data = _mapping(data, file, "a .dvc file")
    base = posixpath.dirname(file)
    wdir = data.get("wdir", ".")
    if not isinstance(wdir, str):
        raise DvcFileError(file, "wdir must be a string")
    base = repo_path(base, wdir, file, "wdir") if wdir not in (".", "") else base
    outs = [
        _recorded_output(e, base, file, "out", None) for e in _list(data.get("outs"), file, "outs")
    ]
    if not outs:
        raise DvcFileError(file, "no outs: a .dvc file must describe at least one output")
    _no_duplicates(outs, file)
    deps: list[Output] = []
    external: list[str] = []
    for entry in _list(data.get("deps"), file, "deps"):
        entry = _mapping(entry, file, "dep")
        path = entry.get("path")
        if "repo" in entry or (isinstance(path, str) and (is_url(path) or path.startswith("/"))):
            external.append(str(path))  # an import's source: not in this repository
            continue
        deps.append(_recorded_output(entry, base, file, "dep", None))
    frozen = data.get("frozen", False)
    if not isinstance(frozen, bool):
        raise DvcFileError(file, "frozen must be true or false")
    md5 = data.get("md5")
    return DvcFile(
        outs=outs,
        deps=deps,
        frozen=frozen,
        is_import=bool(external) or any("repo" in e for e in _list(data.get("deps"), file, "deps")),
        md5=md5 if isinstance(md5, str) else None,
        external_deps=external,
    )


# ---- dvc.yaml -------------------------------------------------------------------------------

_TEMPLATE_RE = re.compile(r"\$\{")


def _contains_template(value: Any) -> bool:
    """Whether any string in a YAML value uses `${...}`. Each node is visited once: aliases
    share nodes, so an alias bomb (10^9 paths over a few hundred nodes) stays cheap."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _TEMPLATE_RE.search(item):
                return True
        elif isinstance(item, (Mapping, list)) and id(item) not in seen:
            seen.add(id(item))
            stack.extend([*item.keys(), *item.values()] if isinstance(item, Mapping) else item)
    return False


def _stage_paths(items: Any, file: str, what: str) -> list[tuple[str, Mapping[str, Any]]]:
    """dvc.yaml deps/outs: strings, or single-key mappings `{path: {flags}}`."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for item in _list(items, file, what):
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, Mapping) and len(item) == 1:
            ((path, flags),) = item.items()
            out.append((path, _mapping(flags or {}, file, f"{what} {path!r}")))
        else:
            raise DvcFileError(file, f"{what} entries must be paths, got {_type(item)}")
    return out


def parse_dvc_yaml(content: bytes, file: str) -> dict[str, Stage]:
    """A `dvc.yaml`: stages with their wdir resolved (repository-relative)."""
    data = load_yaml(content, file)
    if data is None:
        return {}
    data = _mapping(data, file, "dvc.yaml")
    base = posixpath.dirname(file)
    stages = {}
    for name, body in _mapping(data.get("stages") or {}, file, "stages").items():
        if not isinstance(name, str):
            raise DvcFileError(file, f"stage name must be a string, got {_type(name)}")
        body = _mapping(body, file, f"stage {name!r}")
        templated = (
            "foreach" in body or "matrix" in body or "vars" in data or _contains_template(body)
        )
        if templated:
            stages[name] = Stage(name, None, base or ".", [], [], {}, templated=True)
            continue
        wdir_raw = body.get("wdir", ".")
        wdir = base or "."
        if wdir_raw not in (".", "", None):
            wdir = repo_path(base, wdir_raw, file, f"stage {name!r} wdir")
        cmd = body.get("cmd")
        if (
            cmd is not None
            and not isinstance(cmd, str)
            and not (isinstance(cmd, list) and all(isinstance(c, str) for c in cmd))
        ):
            raise DvcFileError(file, f"stage {name!r}: cmd must be a string or a list of strings")
        deps = [repo_path(wdir, p, file, f"stage {name!r} dep") if not is_url(p) else p
                for p, _ in _stage_paths(body.get("deps"), file, f"stage {name!r} deps")]  # fmt: skip
        outs = []
        for key in ("outs", "metrics", "plots"):
            for path, flags in _stage_paths(body.get(key), file, f"stage {name!r} {key}"):
                outs.append(
                    StageOut(
                        repo_path(wdir, path, file, f"stage {name!r} {key[:-1]}"),
                        cache=bool(flags.get("cache", True)),  # metrics and plots too (DVC)
                        persist=bool(flags.get("persist", False)),
                    )
                )
        params = _stage_params(body.get("params"), wdir, file, name)
        frozen = body.get("frozen", False)
        stages[name] = Stage(name, cmd, wdir, deps, outs, params, frozen=bool(frozen))
    return stages


def _stage_params(items: Any, wdir: str, file: str, name: str) -> dict[str, list[str] | None]:
    params: dict[str, list[str] | None] = {}
    default = repo_path(wdir, "params.yaml", file, "params file")
    for item in _list(items, file, f"stage {name!r} params"):
        if isinstance(item, str):
            keys = params.setdefault(default, [])
            if keys is not None:
                keys.append(item)
        elif isinstance(item, Mapping):
            for pfile, keys in item.items():
                path = repo_path(wdir, pfile, file, f"stage {name!r} params file")
                if keys is None or keys == []:
                    params[path] = None  # the whole file is tracked
                elif isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                    existing = params.setdefault(path, [])
                    if existing is not None:
                        existing.extend(keys)
                else:
                    raise DvcFileError(
                        file, f"stage {name!r}: params of {pfile!r} must be a list of keys"
                    )
        else:
            raise DvcFileError(file, f"stage {name!r}: params entries must be keys or mappings")
    return params


# ---- dvc.lock -------------------------------------------------------------------------------


def parse_dvc_lock(
    content: bytes, file: str, wdirs: Mapping[str, str] | None = None
) -> dict[str, LockStage]:
    """A `dvc.lock` (schema 2.0). Paths are relative to each stage's wdir, which only dvc.yaml
    records: pass `wdirs` (stage name -> repository-relative wdir) from parse_dvc_yaml; stages
    not named there use the lock file's own directory."""
    data = load_yaml(content, file)
    if data is None:
        return {}
    data = _mapping(data, file, "dvc.lock")
    schema = data.get("schema")
    if schema is not None and str(schema) != "2.0":
        raise DvcFileError(file, f"unsupported dvc.lock schema {schema!r} (expected '2.0')")
    base = posixpath.dirname(file) or "."
    stages = {}
    for name, body in _mapping(data.get("stages") or {}, file, "stages").items():
        if not isinstance(name, str):
            raise DvcFileError(file, f"stage name must be a string, got {_type(name)}")
        body = _mapping(body, file, f"stage {name!r}")
        wdir = (wdirs or {}).get(name.split("@", 1)[0], base)
        deps = []
        for entry in _list(body.get("deps"), file, f"stage {name!r} deps"):
            path = _mapping(entry, file, f"stage {name!r} dep").get("path")
            if isinstance(path, str) and is_url(path):
                continue
            deps.append(_recorded_output(entry, wdir, file, f"stage {name!r} dep", name))
        outs = [
            _recorded_output(e, wdir, file, f"stage {name!r} out", name)
            for e in _list(body.get("outs"), file, f"stage {name!r} outs")
        ]
        _no_duplicates(outs, file)
        params: dict[str, dict[str, Any]] = {}
        for pfile, values in _mapping(
            body.get("params") or {}, file, f"stage {name!r} params"
        ).items():
            path = repo_path(wdir, pfile, file, f"stage {name!r} params file")
            params[path] = dict(_mapping(values or {}, file, f"stage {name!r} params {pfile!r}"))
        cmd = body.get("cmd")
        stages[name] = LockStage(name, cmd, deps, outs, params)
    return stages


def is_dvc_file(path: str) -> bool:
    """Whether a repository-relative path is one of DVC's own files."""
    name = posixpath.basename(path)
    return name.endswith(".dvc") or name in ("dvc.yaml", "dvc.lock")
