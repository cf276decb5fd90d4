"""Parsers for DVC's files: `.dvc`, `dvc.yaml` and `dvc.lock`, as DVC 3 writes and reads them.

Every parser takes the file's bytes (from the working tree or from a commit) and its
repository-relative POSIX name, and returns plain records whose paths are repository-relative,
normalised and known to stay inside the repository. Anything malformed or unsafe raises
DvcFileError naming the file and the reason: never a traceback, and never a path outside.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from repro_hooks.errors import ReproHooksError

# PyYAML builds ~30-60k nodes a second on a loaded machine: 8 MiB of outputs took 29.5 s.
# Real DVC files are far smaller: `dvc add` writes ~100 bytes per output, a dvc.lock of 10,000
# stages is ~3 MB. A .dvc file is capped lower (1 MiB, ~13,000 outputs, about a second).
MAX_DVC_FILE_SIZE = 8 * 1024 * 1024
MAX_STAGE_FILE_SIZE = 1024 * 1024  # a .dvc file
# Aliases share nodes, so a few hundred bytes can describe 10^9 values: every structured input
# is refused when its value, aliases expanded, has more nodes than this (counted in linear time).
MAX_EXPANDED_NODES = 2_000_000
MESSAGE_VALUE_CHARS = 80  # values quoted in messages are abbreviated to this
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
    def_path: str = ""  # the path as written (DVC matches dvc.yaml and dvc.lock entries by it)

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
    always_changed: bool = False


@dataclass(frozen=True)
class StageOut:
    path: str
    cache: bool = True
    persist: bool = False
    def_path: str = ""
    push: bool = True  # `push: false`: `dvc push` never sends it (it is in no DVC remote)


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str | list[str] | None
    wdir: str  # repository-relative directory the stage's paths are relative to
    deps: list[str]
    outs: list[StageOut]
    params: dict[str, list[str] | None]  # params file -> keys (None: the whole file)
    frozen: bool = False
    always_changed: bool = False
    def_deps: tuple[str, ...] = ()  # deps as written, in the order of `deps`


@dataclass(frozen=True)
class LockStage:
    name: str
    cmd: str | list[str] | None
    deps: list[Output]
    outs: list[Output]
    params: dict[str, dict[str, Any]]  # params file -> {key: value}


# ---- YAML as DVC reads it -------------------------------------------------------------------
#
# DVC reads every YAML file (`.dvc`, `dvc.yaml`, `dvc.lock`, params) with ruamel.yaml's
# `YAML(typ="safe")`: YAML 1.2, duplicate keys refused. PyYAML's C parser is kept (ruamel.yaml
# without its C extension, as DVC installs it, parses ~10x slower); only the scalar resolution
# and construction are YAML 1.2's, copied from ruamel.yaml's VersionedResolver and
# SafeConstructor. tests/test_dvcfiles.py compares both on generated scalars.


class Yaml12Loader(_SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader with ruamel.yaml's YAML 1.2 implicit types and duplicate-key check."""

    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, re.Pattern[str]]]]] = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # unhashable: the constructor below says so
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"found duplicate key {abbrev(key)}", key_node.start_mark
                    )
        return super().construct_mapping(node, deep=deep)


_YAML12_RESOLVERS: tuple[tuple[str, str, str | list[str]], ...] = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (
        "tag:yaml.org,2002:int",
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$",
        "-+0123456789",
    ),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (
        "tag:yaml.org,2002:timestamp",
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
        r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
        r"(?:[Tt]|[ \t]+)[0-9][0-9]?"
        r":[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
        r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        "0123456789",
    ),
    ("tag:yaml.org,2002:value", r"^(?:=)$", "="),
)
for _tag, _regex, _first in _YAML12_RESOLVERS:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_regex), list(_first))


def _yaml12_int(loader: Any, node: Any) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text[0] == "-" else 1
    if text[0] in "+-":
        text = text[1:]
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text)


def _yaml12_float(loader: Any, node: Any) -> float:
    text = loader.construct_scalar(node).replace("_", "").lower()
    sign = -1 if text[0] == "-" else 1
    if text[0] in "+-":
        text = text[1:]
    if text == ".inf":
        return sign * float("inf")
    if text == ".nan":
        return float("nan")
    return sign * float(text)


def _yaml12_bool(loader: Any, node: Any) -> bool:
    return bool(loader.construct_scalar(node).lower() == "true")


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _yaml12_float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _yaml12_bool)


# ---- YAML and paths -------------------------------------------------------------------------


def abbrev(value: Any, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """repr(value), abbreviated: never the whole of a huge value in a message."""
    if isinstance(value, (list, dict, tuple, set)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expanded_size(value: Any, limit: int = MAX_EXPANDED_NODES) -> int:
    """The number of nodes of a parsed value with every alias expanded, counted in time linear
    in the distinct nodes (a shared node's count is memoised); stops past `limit`."""
    memo: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, done = stack.pop()
        if not isinstance(item, (Mapping, list)):
            continue
        key = id(item)
        if key in memo and memo[key] >= 0:
            continue
        children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else item
        if not done:
            if key in memo:
                continue  # a cycle (not possible with the safe loader; never loop)
            memo[key] = -1
            stack.append((item, True))
            stack.extend((c, False) for c in children)
            continue
        total = 1
        for c in children:
            total += max(memo.get(id(c), 0), 0) if isinstance(c, (Mapping, list)) else 1
            if total > limit:
                return total
        memo[key] = total
    return memo.get(id(value), 1) if isinstance(value, (Mapping, list)) else 1


def bounded(value: Any, file: str) -> Any:
    if isinstance(value, (Mapping, list)) and expanded_size(value) > MAX_EXPANDED_NODES:
        raise DvcFileError(
            file, f"too large: more than {MAX_EXPANDED_NODES:,} values once aliases are expanded"
        )
    return value


def load_yaml(content: bytes, file: str, max_size: int = MAX_DVC_FILE_SIZE) -> Any:
    """Parse YAML as DVC does (YAML 1.2, duplicate keys refused). Aliases become shared
    references; a value too large once they are expanded is refused (see `bounded`)."""
    if len(content) > max_size:
        raise DvcFileError(file, f"too large for a DVC file ({len(content)} bytes)")
    try:
        return bounded(yaml.load(content, Loader=Yaml12Loader), file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DvcFileError(file, f"malformed YAML{where}: {problem}") from None
    except (UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise DvcFileError(file, f"not readable YAML: {abbrev(str(exc), 200)}") from None
    except RecursionError:
        raise DvcFileError(file, "malformed YAML: nested too deeply") from None


def is_url(path: str) -> bool:
    return bool(_URL_RE.match(path))


def repo_path(
    base_dir: str, path: Any, file: str, what: str = "path", *, allow_root: bool = False
) -> str:
    """Resolve a path written in a DVC file (relative to `base_dir`, itself repository-relative)
    to a normalised repository-relative POSIX path. Absolute paths, URLs and paths that escape
    the repository raise DvcFileError; so does the root itself unless `allow_root` (a wdir)."""
    if not isinstance(path, str) or not path:
        raise DvcFileError(file, f"{what} must be a non-empty string, got {_type(path)}")
    if "\0" in path:
        raise DvcFileError(file, f"{what} {abbrev(path)} contains a NUL byte")
    if path.startswith("/") or _WINDOWS_ABS_RE.match(path) or path.startswith("\\"):
        raise DvcFileError(
            file, f"{what} {abbrev(path)} is absolute: outputs must be inside the repository"
        )
    if is_url(path):
        raise DvcFileError(
            file,
            f"{what} {abbrev(path)} is not in the repository (external outputs are not supported)",
        )
    joined = posixpath.normpath(posixpath.join(base_dir or ".", path))
    if joined == ".." or joined.startswith("../"):
        raise DvcFileError(file, f"{what} {abbrev(path)} escapes the repository")
    if joined == "." and not allow_root:
        raise DvcFileError(file, f"{what} {abbrev(path)} is the repository root")
    return joined


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: Any, file: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DvcFileError(file, f"{what} must be a mapping, got {_type(value)}")
    return value


def _list(value: Any, file: str, what: str, *, nullable: bool = True) -> list[Any]:
    if value is None and nullable:
        return []
    if not isinstance(value, list):
        raise DvcFileError(file, f"{what} must be a list, got {_type(value)}")
    return value


# ---- DVC's schema (dvc/schema.py, dvc/output.py), without importing DVC -------------------------
# What DVC's voluptuous schemas refuse is malformed here too; what they accept is accepted.
# Each check returns whether the value is acceptable; unknown keys are refused (DVC's schemas
# allow no extra keys).

Check = Callable[[Any], bool]


_EXPECTED: dict[int, str] = {}  # id(check) -> what it accepts, for messages
_TYPE_NAMES = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    dict: "a mapping",
    list: "a list",
    type(None): "null",
}


def _named(check: Check, expected: str) -> Check:
    _EXPECTED[id(check)] = expected
    return check


def _is(*types: type) -> Check:
    return _named(
        lambda v: isinstance(v, types), " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    )


def _list_of(check: Check) -> Check:
    inner = _EXPECTED.get(id(check), "values of the right shape")
    return _named(lambda v: isinstance(v, list) and all(check(x) for x in v), f"a list of {inner}")


def _checksum_value(v: Any) -> bool:
    if v is None or v == "":
        return True
    if isinstance(v, int):  # bool too, as voluptuous's `int` does
        v = str(v)
    return isinstance(v, str) and len(v) >= 3


_checksum = _named(_checksum_value, "a hash (a string of at least 3 characters)")
_ANY: Check = lambda v: True  # noqa: E731
_STR, _BOOL, _INT, _DICT = _is(str), _is(bool), _is(int), _is(dict)
_STRS = _list_of(_STR)
_CLOUD = _named(lambda v: isinstance(v, dict) and len(v) <= 1, "a mapping of one remote")
_FILES = _list_of(_DICT)
_META_KEYS: dict[str, Check] = {"size": _INT, "nfiles": _INT, "isexec": _BOOL, "version_id": _STR}
_CHECKSUM_KEYS: dict[str, Check] = {"md5": _checksum, "checksum": _checksum, "etag": _checksum}
_ARTIFACT_KEYS: dict[str, Check] = {
    **_CHECKSUM_KEYS,
    **_META_KEYS,
    "path": _STR,
    "persist": _BOOL,
    "cloud": _CLOUD,
    "hash": _STR,
}
_ANNOTATION_KEYS: dict[str, Check] = {"desc": _STR, "type": _STR, "labels": _STRS, "meta": _ANY}
OUT_KEYS: dict[str, Check] = {
    **_ARTIFACT_KEYS,
    **_ANNOTATION_KEYS,
    "cache": _BOOL,
    "remote": _STR,
    "push": _BOOL,
    "files": _FILES,
    "fs_config": _DICT,
}
_REPO_KEYS: dict[str, Check] = {
    "url": _STR,
    "rev": _STR,
    "rev_lock": _STR,
    "config": _is(str, dict),
    "remote": _is(str, dict),
}
DEP_KEYS: dict[str, Check] = {
    **_ARTIFACT_KEYS,
    "repo": lambda v: _valid(v, _REPO_KEYS),
    "db": _DICT,
    "files": _FILES,
    "fs_config": _DICT,
}
LOCK_ENTRY_KEYS: dict[str, Check] = {
    **_CHECKSUM_KEYS,
    **_META_KEYS,
    "path": _STR,
    "cloud": _CLOUD,
    "files": _FILES,
    "hash": _STR,
    "dataset": _DICT,
}
_OUT_FLAGS: dict[str, Check] = {
    **_ANNOTATION_KEYS,
    "cache": _BOOL,
    "persist": _BOOL,
    "checkpoint": _BOOL,
    "remote": _STR,
    "push": _BOOL,
}
_PLOT_FLAGS: dict[str, Check] = {
    **_OUT_FLAGS,
    "template": _STR,
    "x": _STR,
    "y": _STR,
    "x_label": _STR,
    "y_label": _STR,
    "title": _STR,
    "header": _BOOL,
}


def _valid(value: Any, keys: Mapping[str, Check]) -> bool:
    return isinstance(value, dict) and all(k in keys and keys[k](v) for k, v in value.items())


def _schema(
    value: Any, keys: Mapping[str, Check], file: str, what: str, required: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    """`value` must be a mapping whose keys DVC's schema knows, each of an accepted type."""
    entry = _mapping(value, file, what)
    for key, item in entry.items():
        check = keys.get(key) if isinstance(key, str) else None
        if check is None:
            raise DvcFileError(file, f"{what}: unknown key {abbrev(key)}")
        if not check(item):
            expected = _EXPECTED.get(id(check), "of the shape DVC's schema requires")
            raise DvcFileError(file, f"{what}: {key} must be {expected}, got {abbrev(item)}")
    for key in required:
        if key not in entry:
            raise DvcFileError(file, f"{what}: {key} is required")
    return entry


def _flags_check(flags: Mapping[str, Check]) -> Check:
    return lambda v: (
        isinstance(v, dict) and all(isinstance(k, str) and _valid(f, flags) for k, f in v.items())
    )


def _plot_entry(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str)
        and (
            _valid(f, _PLOT_FLAGS)
            or (isinstance(f, list) and all(_valid(x, _PLOT_FLAGS) for x in f))
        )
        for k, f in v.items()
    )


_OUT_LIST = _named(
    _list_of(lambda v: isinstance(v, str) or _flags_check(_OUT_FLAGS)(v)),
    "a list of paths or {path: {flag: value}} with DVC's flags",
)
STAGE_KEYS: dict[str, Check] = {
    "matrix": _named(
        lambda v: (
            isinstance(v, dict)
            and all(isinstance(k, str) and isinstance(x, (str, list)) for k, x in v.items())
        ),
        "a mapping of names to lists",
    ),
    "cmd": _is(str, list),
    "wdir": _STR,
    "deps": _named(_STRS, "a list of paths"),
    "params": _list_of(_is(str, dict)),
    "vars": _list_of(_is(str, dict)),
    "frozen": _BOOL,
    "meta": _ANY,
    "desc": _STR,
    "always_changed": _BOOL,
    "outs": _OUT_LIST,
    "metrics": _OUT_LIST,
    "plots": _named(
        _list_of(lambda v: isinstance(v, str) or _plot_entry(v)),
        "a list of paths or {path: {plot property: value}}",
    ),
}
_TOP_KEYS: dict[str, Check] = {
    "datasets": _ANY,
    "plots": _list_of(lambda v: isinstance(v, (str, dict))),
    "stages": _DICT,
    "vars": _list_of(_is(str, dict)),
    "params": _STRS,
    "metrics": _STRS,
    "artifacts": _DICT,
}
_SINGLE_STAGE_KEYS: dict[str, Check] = {
    "md5": _checksum,
    "wdir": _is(str, type(None)),
    "deps": _is(list, type(None)),
    "outs": _is(list, type(None)),
    "locked": _BOOL,
    "frozen": _BOOL,
    "meta": _ANY,
    "always_changed": _BOOL,
    "desc": _STR,
}


def _opt_int(entry: Mapping[str, Any], key: str) -> int | None:
    value = entry.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _recorded_output(
    entry: Any, base_dir: str, file: str, what: str, stage: str | None, keys: Mapping[str, Check]
) -> Output:
    """An out/dep entry as written in a .dvc file or dvc.lock."""
    entry = _schema(entry, keys, file, what, required=("path",))
    path = repo_path(base_dir, entry.get("path"), file, f"{what} path")
    label = f"{what} {abbrev(entry.get('path'))}"
    hash_name = entry.get("hash")
    if hash_name is not None and hash_name != "md5":
        raise DvcFileError(file, f"{label}: unsupported hash {abbrev(hash_name)} (expected md5)")
    md5 = entry.get("md5")
    if md5 == "":
        md5 = None
    if md5 is not None and (not isinstance(md5, str) or not _MD5_RE.match(md5)):
        raise DvcFileError(file, f"{label}: md5 is not an md5 hash: {abbrev(md5)}")
    return Output(
        path=path,
        hash_value=md5,
        algorithm="md5" if hash_name == "md5" else "md5-dos2unix",
        size=_opt_int(entry, "size"),
        nfiles=_opt_int(entry, "nfiles"),
        cache=entry.get("cache", True),
        remote=entry.get("remote"),
        source=file,
        stage=stage,
        push=entry.get("push", True),
        def_path=entry["path"],
    )


def _no_duplicates(outs: list[Output], file: str) -> None:
    seen: set[str] = set()
    for out in outs:
        if out.path in seen:
            raise DvcFileError(file, f"output {abbrev(out.path)} is listed twice")
        seen.add(out.path)


# ---- .dvc files -----------------------------------------------------------------------------


# The exact text `dvc add` writes for each output whose name needs no YAML quoting. Matching it
# with a regular expression gives the same mapping YAML would, about 10x faster (check-dvc reads
# every .dvc file on every commit) and in linear time; anything else goes through the YAML parser.
_DVC_ADD_OUT_RE = re.compile(
    rb"- md5: ([0-9a-f]{32}(?:\.dir)?)\n  size: ([0-9]{1,18})\n(?:  nfiles: ([0-9]{1,18})\n)?"
    rb"  hash: md5\n  path: ([A-Za-z0-9_][A-Za-z0-9_.+/-]*)\n"
)
_YAML_STR = "tag:yaml.org,2002:str"


def _dvc_add_data(content: bytes) -> dict[str, Any] | None:
    if not content.startswith(b"outs:\n"):
        return None
    outs: list[dict[str, Any]] = []
    pos, end = len(b"outs:\n"), len(content)
    while pos < end:
        match = _DVC_ADD_OUT_RE.match(content, pos)
        if match is None:
            return None
        pos = match.end()
        md5, size, nfiles, raw = match.groups()
        path = raw.decode()
        if any(
            Yaml12Loader.resolve(Yaml12Loader, yaml.ScalarNode, v, (True, False)) != _YAML_STR
            for v in (path, md5.decode())
        ):
            return None  # `path: 123`, an all-digit md5...: YAML decides (and the schema)
        out: dict[str, Any] = {"md5": md5.decode(), "size": int(size)}
        if nfiles is not None:
            out["nfiles"] = int(nfiles)
        out.update(hash="md5", path=path)
        outs.append(out)
    return {"outs": outs} if outs else None


def parse_dvc_file(content: bytes, file: str) -> DvcFile:
    """A `.dvc` file: outs relative to the file's directory (and its `wdir`, if any)."""
    data: Any = _dvc_add_data(content)
    if data is None:
        data = load_yaml(content, file, MAX_STAGE_FILE_SIZE)
    if data is None:
        data = {}  # DVC reads an empty file as {}: a stage with nothing to check
    data = _schema(data, _SINGLE_STAGE_KEYS, file, "a .dvc file")
    base = posixpath.dirname(file)
    wdir = data.get("wdir") or "."
    base = repo_path(base, wdir, file, "wdir", allow_root=True) if wdir != "." else base
    base = "" if base == "." else base
    outs = [
        _recorded_output(e, base, file, "out", None, OUT_KEYS)
        for e in _list(data.get("outs"), file, "outs")
    ]
    _no_duplicates(outs, file)
    deps: list[Output] = []
    external: list[str] = []
    for entry in _list(data.get("deps"), file, "deps"):
        entry = _schema(entry, DEP_KEYS, file, "dep", required=("path",))
        path = entry.get("path")
        if "repo" in entry or (isinstance(path, str) and (is_url(path) or path.startswith("/"))):
            external.append(str(path))  # an import's source: not in this repository
            continue
        deps.append(_recorded_output(entry, base, file, "dep", None, DEP_KEYS))
    md5 = data.get("md5")
    return DvcFile(
        outs=outs,
        deps=deps,
        frozen=bool(data.get("frozen", False) or data.get("locked", False)),
        is_import=bool(external) or any("repo" in e for e in _list(data.get("deps"), file, "deps")),
        md5=md5 if isinstance(md5, str) else None,
        external_deps=external,
        always_changed=bool(data.get("always_changed", False)),
    )


# ---- dvc.yaml -------------------------------------------------------------------------------


def _stage_outs(items: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """dvc.yaml outs/metrics/plots (already schema-checked): paths, or `{path: flags}`."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for item in items or ():
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, Mapping):
            for path, flags in item.items():
                out.append((path, flags if isinstance(flags, dict) else {}))
        else:
            out.append((item, {}))  # a resolved `${...}` that is no path: repo_path says so
    return out


VarsLoader = Callable[[str], Any]
Parsing = Mapping[str, str] | Callable[[], Mapping[str, str] | None] | None


def parse_dvc_yaml(
    content: bytes, file: str, load: VarsLoader | None = None, parsing: Parsing = None
) -> dict[str, Stage]:
    """A `dvc.yaml`: stages with their wdir resolved (repository-relative).

    Templating (`vars`, `${...}`, `foreach`, `matrix`) is resolved as DVC resolves it
    (repro_hooks.dvc.templating), stage names as DVC gives them (`prep@a`). `load(path)` reads
    a vars file (repository-relative) from the caller's source of truth, None when it is
    missing (no `load`: there are none); `parsing` is the `[parsing]` section of the project's
    DVC config, or a callable giving it (called only for a file that templates). A file that
    does not template reads nothing."""
    data = load_yaml(content, file)
    if data is None:
        return {}
    data = _schema(data, _TOP_KEYS, file, "dvc.yaml")
    base = posixpath.dirname(file)
    definitions = _mapping(data.get("stages") or {}, file, "stages")
    for name, body in definitions.items():
        if not isinstance(name, str):
            raise DvcFileError(file, f"stage name must be a string, got {_type(name)}")
        what = f"stage {abbrev(name)}"
        body = _mapping(body, file, what)
        if "foreach" in body or "do" in body:
            _schema(
                body,
                {"foreach": _is(dict, list, str), "do": _DICT},
                file,
                what,
                required=("foreach", "do"),
            )
            _schema(body["do"], STAGE_KEYS, file, f"{what} do", required=("cmd",))
        else:
            _schema(body, STAGE_KEYS, file, what, required=("cmd",))
    from repro_hooks.dvc import templating  # pure, never imports DVC

    if not templating.uses_templating(data):
        return {name: _stage(name, body, base, file) for name, body in definitions.items()}
    section = parsing() if callable(parsing) else parsing
    resolved = templating.resolve_stages(data, file, load or _no_vars, section)
    return {name: _stage(name, r.body, base, file) for name, r in resolved.items()}


def _no_vars(path: str) -> None:
    return None


def _stage(name: str, body: Mapping[str, Any], base: str, file: str) -> Stage:
    """A stage from its (resolved) definition: paths repository-relative, wdir applied.
    Variables a templated stage reads are not params dependencies: DVC's `status` and
    `dvc.lock` know only the stage's `params` (dvc/stage/loader.py keeps them apart)."""
    what = f"stage {abbrev(name)}"
    wdir = base or "."
    if body.get("wdir") not in (".", "", None):
        wdir = repo_path(base, body["wdir"], file, f"{what} wdir", allow_root=True)
    wbase = "" if wdir == "." else wdir
    cmd = body.get("cmd")
    def_deps = tuple(body.get("deps") or ())
    deps = [
        repo_path(wbase, p, file, f"{what} dep") if not (isinstance(p, str) and is_url(p)) else p
        for p in def_deps
    ]
    outs = []
    for key in ("outs", "metrics", "plots"):
        for path, flags in _stage_outs(body.get(key)):
            outs.append(
                StageOut(
                    repo_path(wbase, path, file, f"{what} {key[:-1]}"),
                    cache=flags.get("cache", True),  # metrics and plots too (DVC)
                    persist=flags.get("persist", False),
                    def_path=path,
                    push=flags.get("push", True) is not False,
                )
            )
    params = _stage_params(body.get("params"), wbase, file, name)
    return Stage(
        name,
        cmd,
        wdir,
        deps,
        outs,
        params,
        frozen=bool(body.get("frozen", False)),
        always_changed=bool(body.get("always_changed", False)),
        def_deps=def_deps,
    )


def _stage_params(items: Any, wdir: str, file: str, name: str) -> dict[str, list[str] | None]:
    params: dict[str, list[str] | None] = {}
    default = repo_path(wdir, "params.yaml", file, "params file")
    for item in items or ():
        if isinstance(item, str):
            keys = params.setdefault(default, [])
            if keys is not None:
                keys.append(item)
        else:
            for pfile, keys in item.items():
                path = repo_path(wdir, pfile, file, f"stage {abbrev(name)} params file")
                if keys is None or keys == []:
                    params[path] = None  # the whole file is tracked
                elif isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                    existing = params.setdefault(path, [])
                    if existing is not None:
                        existing.extend(keys)
                else:
                    raise DvcFileError(
                        file,
                        f"stage {abbrev(name)}: params of {abbrev(pfile)} must be a list of keys",
                    )
    return params


# ---- dvc.lock -------------------------------------------------------------------------------

_LOCK_STAGE_KEYS: dict[str, Check] = {
    "cmd": _is(str, list),
    "deps": _is(list),
    "params": _DICT,
    "outs": _is(list),
}


def parse_dvc_lock(
    content: bytes, file: str, wdirs: Mapping[str, str] | None = None
) -> dict[str, LockStage]:
    """A `dvc.lock` (schema 2.0). Paths are relative to each stage's wdir, which only dvc.yaml
    records: pass `wdirs` (stage name -> repository-relative wdir) from parse_dvc_yaml, whose
    names are DVC's (`prep@a`: each generated stage has its own wdir); stages not named there
    use the lock file's own directory."""
    data = load_yaml(content, file)
    if data is None:
        return {}
    data = _mapping(data, file, "dvc.lock")
    if not data:
        return {}
    schema = data.get("schema")
    if schema != "2.0":
        raise DvcFileError(file, f"unsupported dvc.lock schema {abbrev(schema)} (expected '2.0')")
    _schema(data, {"schema": _ANY, "datasets": _ANY, "stages": _ANY}, file, "dvc.lock")
    base = posixpath.dirname(file) or "."
    stages = {}
    for name, body in _mapping(data.get("stages") or {}, file, "stages").items():
        if not isinstance(name, str):
            raise DvcFileError(file, f"stage name must be a string, got {_type(name)}")
        what = f"stage {abbrev(name)}"
        body = _schema(body, _LOCK_STAGE_KEYS, file, what, required=("cmd",))
        wdir = (wdirs or {}).get(name, base)
        wbase = "" if wdir == "." else wdir
        deps = []
        for entry in body.get("deps") or ():
            path = _mapping(entry, file, f"{what} dep").get("path")
            if isinstance(path, str) and is_url(path):
                continue
            deps.append(_recorded_output(entry, wbase, file, f"{what} dep", name, LOCK_ENTRY_KEYS))
        outs = [
            _recorded_output(e, wbase, file, f"{what} out", name, LOCK_ENTRY_KEYS)
            for e in body.get("outs") or ()
        ]
        _no_duplicates(outs, file)
        params: dict[str, dict[str, Any]] = {}
        for pfile, values in body.get("params", {}).items():
            if not isinstance(pfile, str):
                raise DvcFileError(file, f"{what}: params file must be a string")
            path = repo_path(wbase, pfile, file, f"{what} params file")
            values = _mapping(values, file, f"{what} params {abbrev(pfile)}")
            if not all(isinstance(k, str) for k in values):
                raise DvcFileError(file, f"{what}: params keys must be strings")
            params[path] = dict(values)
        stages[name] = LockStage(name, body["cmd"], deps, outs, params)
    return stages
