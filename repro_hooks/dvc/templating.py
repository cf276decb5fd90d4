"""DVC's templating for `dvc.yaml` (`vars`, `${...}`, `foreach`, `matrix`), resolved without DVC.

A port of DVC 3's resolver (`dvc/parsing/__init__.py`, `context.py`, `interpolate.py`): the same
context (values remember the file and key path they came from, which is how DVC tracks the
vars a stage used), the same merge rules and errors, the same order of evaluation (every
`foreach`/`matrix` group is expanded before any stage is resolved, as `DataResolver.resolve()`
does), the same conversions to strings. Pure: files come through the `load` callback, each read
once per call. tests/test_templating.py compares it with DVC's own resolver.

Where DVC itself crashes on a malformed file (an assertion, a TypeError), this raises
DvcFileError with the crash's message: never a traceback.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any, NamedTuple, NoReturn

from repro_hooks.dvc.files import DvcFileError, abbrev

VARS_KWD = "vars"
WDIR_KWD = "wdir"
FOREACH_KWD = "foreach"
MATRIX_KWD = "matrix"
DO_KWD = "do"
DEFAULT_PARAMS_FILE = "params.yaml"
JOIN = "@"
ITEM, KEY = "item", "key"

# dvc/parsing/interpolate.py: `${...}` not preceded by a backslash, shortest inner text
_KEYCRE = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
_PRIMITIVES = (int, float, str, bytes, bool)
_WHITESPACE = " \n\t\r"  # pyparsing's default whitespace
_NOT_WORD = ".[]"


@dataclass(frozen=True)
class ResolvedStage:
    name: str  # as DVC names it: "train", "prep@a", "build@cpu-32"
    body: dict[str, Any]  # the resolved definition, as DataResolver.resolve() gives it
    # vars file (relative to the stage's wdir) -> the keys this stage interpolated from it
    # (DVC's `tracked_vars`, which DVC 3 shows in `dvc params show/diff`)
    tracked: dict[str, list[str]]


# ---- errors, as DVC words them ------------------------------------------------------------------


class _Fatal(Exception):
    """The whole file cannot be resolved: the reason, as DVC would word it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _ParseError(Exception):
    pass


class _ContextError(Exception):
    pass


class _KeyNotInContext(_ContextError):
    def __init__(self, key: str) -> None:
        super().__init__(f"Could not find '{key}'")


class _MergeError(_ContextError):
    pass


class _ParamsLoadError(_ContextError):
    pass


class _VarsAlreadyLoaded(_ContextError):
    pass


class _ReservedKeyError(_ContextError):
    def __init__(self, keys: list[str], path: str | None = None) -> None:
        self.keys = keys
        n = "key" + ("s" if len(keys) > 1 else "")
        msg = f"attempted to modify reserved {n} {_humanize_join(keys)}"
        if path:
            msg += f" in '{path}'"
        super().__init__(msg)


def _humanize_join(words: list[str]) -> str:
    if len(words) > 1:
        return ", ".join(words[:-1]) + " and " + words[-1]
    return words[0] if words else ""


def _format_and_raise(exc: Exception, msg: str) -> NoReturn:
    # DVC: f"failed to parse {msg} in '{path}':{spacing}{exc}"; the file is DvcFileError's
    raise _Fatal(f"failed to parse {msg}: {exc}")


# ---- the context: values with where they came from (dvc/parsing/context.py) ---------------------


class _Meta(NamedTuple):
    source: str | None = None
    dpaths: tuple[str, ...] = ()
    local: bool = True

    def child(self, key: object) -> _Meta:
        return _Meta(self.source, (*self.dpaths, str(key)), self.local)

    def path(self) -> str:
        return ".".join(self.dpaths)

    def __str__(self) -> str:
        return f"{self.source or '<local>'}:{self.path()}"


_DEFAULT_META = _Meta()


class _Value:
    __slots__ = ("meta", "value")
    __hash__ = None  # type: ignore[assignment]  # DVC's nodes are unhashable

    def __init__(self, value: Any, meta: _Meta) -> None:
        self.value = value
        self.meta = meta

    def __str__(self) -> str:
        return str(self.value)


class _Container:
    """CtxDict/CtxList. Children are converted on first access (a big params file costs
    nothing until used); `epoch` says when the node was made, for context clones."""

    __slots__ = ("_data", "_raw", "epoch", "meta")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, raw: Any, meta: _Meta, epoch: int) -> None:
        self._raw = raw
        self._data: Any = None
        self.meta = meta
        self.epoch = epoch


class _Dict(_Container):
    __slots__ = ()

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {
                k: _convert(v, self.meta.child(k), self.epoch, checked=True)
                for k, v in self._raw.items()
                if isinstance(k, str)  # CtxDict ignores other keys
            }
            self._raw = None
        data: dict[str, Any] = self._data
        return data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def value(self) -> dict[str, Any]:
        if self._data is None:
            return _plain(self._raw, {})  # type: ignore[no-any-return]
        return {k: node.value for k, node in self._data.items()}


class _List(_Container):
    __slots__ = ()

    @property
    def data(self) -> list[Any]:
        if self._data is None:
            self._data = [
                _convert(v, self.meta.child(i), self.epoch, checked=True)
                for i, v in enumerate(self._raw)
            ]
            self._raw = None
        data: list[Any] = self._data
        return data

    def __getitem__(self, index: Any) -> Any:
        return self.data[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def value(self) -> list[Any]:
        if self._data is None:
            return _plain(self._raw, {})  # type: ignore[no-any-return]
        return [node.value for node in self._data]


_Node = _Value | _Dict | _List


def _plain(raw: Any, memo: dict[int, Any]) -> Any:
    """A node's unwrapped value from raw data: mappings lose their non-string keys."""
    if isinstance(raw, _NODES):
        return raw.value
    if isinstance(raw, dict):
        if id(raw) not in memo:
            memo[id(raw)] = {k: _plain(v, memo) for k, v in raw.items() if isinstance(k, str)}
        return memo[id(raw)]
    if isinstance(raw, list):
        if id(raw) not in memo:
            memo[id(raw)] = [_plain(v, memo) for v in raw]
        return memo[id(raw)]
    return raw


def _check_convertible(raw: Any, meta: _Meta, seen: set[int]) -> None:
    """DVC converts a whole file into nodes when it loads it, and fails (a TypeError) on a
    value of a type it has no node for: the first one, in document order."""
    stack: list[tuple[Any, _Meta]] = [(raw, meta)]
    while stack:
        value, where = stack.pop()
        if value is None or isinstance(value, (_PRIMITIVES, _NODES)):
            continue
        if isinstance(value, (dict, list)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = (
                [(k, v) for k, v in value.items() if isinstance(k, str)]
                if isinstance(value, dict)
                else list(enumerate(value))
            )
            stack.extend((v, where.child(k)) for k, v in reversed(items))
            continue
        raise _Fatal(f"Unsupported value of type '{type(value).__name__}' in '{where}'")


_NODES = (_Value, _Dict, _List)


def _type_name(value: Any) -> str:
    names = {_Value: "Value", _Dict: "CtxDict", _List: "CtxList"}
    return names.get(type(value), type(value).__name__)


def _convert(value: Any, meta: _Meta, epoch: int, *, checked: bool = False) -> Any:
    if isinstance(value, _NODES):
        return value
    if value is None or isinstance(value, _PRIMITIVES):
        return _Value(value, meta)
    if not checked:
        _check_convertible(value, meta, set())
    if isinstance(value, dict):
        return _Dict(value, meta, epoch)
    if isinstance(value, list):
        return _List(value, meta, epoch)
    raise _Fatal(f"Unsupported value of type '{type(value).__name__}' in '{meta}'")


class _Clock:
    """Epochs: a context clone sees the containers made before it as DVC's deep copy made
    them (without their origin), and the ones made after as they are."""

    def __init__(self) -> None:
        self.now = 0

    def tick(self) -> int:
        self.now += 1
        return self.now


class _Context:
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.root = _Dict({}, _DEFAULT_META, 0)
        self.imports: dict[str, list[str] | None] = {}
        self.reserved: dict[str, None] = {}
        self.clone_epoch: int | None = None
        self.tracking: dict[str, dict[str, Any]] | None = None

    def clone(self) -> _Context:
        new = _Context(self.clock)
        new.clone_epoch = self.clock.tick()
        new.root = _Dict({}, _DEFAULT_META, new.clone_epoch)
        new.root._data = dict(self.root.data)
        new.root._raw = None
        new.imports = {k: (list(v) if v is not None else None) for k, v in self.imports.items()}
        new.reserved = dict(self.reserved)
        return new

    def meta_of(self, node: Any, copied: bool) -> _Meta:
        """A node's origin as this context sees it: in a clone, containers DVC deep-copied
        (those reached from the top through mappings only) lost theirs."""
        if (
            copied
            and isinstance(node, _Container)
            and self.clone_epoch is not None
            and node.epoch < self.clone_epoch
        ):
            return _DEFAULT_META
        meta: _Meta = node.meta
        return meta

    # -- reading
    def select(self, key: str, unwrap: bool) -> Any:
        parts = _key_parts(key)
        node: Any = self.root
        copied = True
        last = len(parts) - 1
        for i, index in enumerate(parts):
            try:
                if type(node) is _List:
                    node = node.data[int(index)]
                    copied = False
                else:
                    node = node.data[index]
            except (LookupError, ValueError):
                raise _KeyNotInContext(key) from None
            if i < last and type(node) is _Value:
                raise _KeyNotInContext(key)
        if self.tracking is not None and type(node) is not _Dict:
            self._track(node, copied)
        return node.value if unwrap else node

    def _track(self, node: Any, copied: bool) -> None:
        if self.tracking is None or isinstance(node, _Dict):
            return
        meta = self.meta_of(node, copied)
        if meta.local or not meta.source:
            return
        self.tracking.setdefault(meta.source, {})[meta.path()] = node.value

    @contextmanager
    def track(self) -> Iterator[dict[str, dict[str, Any]]]:
        self.tracking = {}
        try:
            yield self.tracking
        finally:
            self.tracking = None

    # -- loading `vars`
    def merge_update(self, other: _Dict, path: str | None = None) -> None:
        matches = [key for key in self.reserved if key in other.data]
        if matches:
            raise _ReservedKeyError(matches, path)
        self._merge(self.root, other, copied=True)

    def _merge(self, into: _Dict, update: _Dict, copied: bool) -> None:
        for key, val in update.data.items():
            existing = into.data.get(key)
            if isinstance(existing, _Dict) and isinstance(val, _Dict):
                if copied and self.clone_epoch is not None and existing.epoch < self.clone_epoch:
                    # copy on write: DVC merges into its deep copy, never into the original
                    fresh = _Dict({}, _DEFAULT_META, self.clone_epoch)
                    fresh._data = dict(existing.data)
                    fresh._raw = None
                    into.data[key] = existing = fresh
                self._merge(existing, val, copied)
                continue
            if key in into.data:
                new_meta = val.meta
                old = self.meta_of(existing, copied)
                raise _MergeError(
                    f"cannot redefine '{new_meta.path()}' from '{new_meta.source}'"
                    f" as it already exists in '{old.source}'"
                )
            into.data[key] = val

    def set_temporarily(self, to_set: dict[str, Any]) -> Callable[[], None]:
        """`item`/`key` for one generated stage, reserved; returns the undo."""
        new_reserved = [k for k in to_set if k not in self.reserved]
        temp = {k: _convert(v, _DEFAULT_META.child(k), self.clock.now) for k, v in to_set.items()}
        data = self.root.data
        prev = {k: data[k] for k in to_set if k in data}
        data.update(temp)
        for k in new_reserved:
            self.reserved[k] = None

        def undo() -> None:
            data.update(prev)
            for k in to_set:
                if k not in prev:
                    data.pop(k, None)
            for k in new_reserved:
                self.reserved.pop(k, None)

        return undo


# ---- interpolation (dvc/parsing/interpolate.py) ---------------------------------------------


@lru_cache(maxsize=4096)
def _key_parts(key: str) -> tuple[str, ...]:
    """A selected key's path: `a[0].b` -> ("a", "0", "b"), each part stripped (DVC)."""
    return tuple(p.strip() for p in key.replace("[", ".").replace("]", "").split("."))


@lru_cache(maxsize=4096)
def _parse_expr(inner: str) -> str:
    """`a.b[0].c` as DVC's pyparsing grammar reads it (a word, then `.word` or `[word]` any
    number of times, a word being anything but `.[]`; tabs expanded): the words joined by dots.
    Errors read like pyparsing's."""
    s = inner.expandtabs()

    def word_end(pos: int) -> int:
        end = pos
        while end < len(s) and s[end] not in _NOT_WORD:
            end += 1
        return end

    pos = word_end(0)
    if pos == 0:
        raise _parse_error(inner, s, 0, "!W:(.[])")
    parts = [s[:pos]]
    while True:
        nxt = pos
        while nxt < len(s) and s[nxt] in _WHITESPACE:
            nxt += 1
        if nxt < len(s) and s[nxt] in ".[":
            end = word_end(nxt + 1)
            closed = s[nxt] == "." or (end < len(s) and s[end] == "]")
            if end > nxt + 1 and closed:
                parts.append(s[nxt + 1 : end])
                pos = end if s[nxt] == "." else end + 1
                continue
        if nxt != len(s):
            raise _parse_error(inner, s, nxt, "end of text")
        return ".".join(parts)


def _parse_error(inner: str, expanded: str, loc: int, expected: str) -> _ParseError:
    braced = f"${{{expanded}}}"
    loc += 2  # DVC counts from the `${`
    found = re.match(r"\w+|.", braced[loc:], re.DOTALL)
    what = f"'{found.group(0)}'" if found else "end of text"
    return _ParseError(
        f"${{{inner}}}: ParseException: Expected {expected}, found {what}"
        f"  (at char {loc}), (line:1, col:{loc + 1})"
    )


@lru_cache(maxsize=8192)
def _interpolations(src: str, skip_checks: bool) -> tuple[tuple[int, int, str], ...]:
    """Where each `${...}` of a string is, and the key it selects (parsed unless skipped)."""
    return tuple(
        (m.start(), m.end(), _get_expression(m, skip_checks)) for m in _KEYCRE.finditer(src)
    )


def _get_expression(match: re.Match[str], skip_checks: bool) -> str:
    inner = match["inner"]
    return inner if skip_checks else _parse_expr(inner)


def _check_expression(s: str) -> None:
    for match in _KEYCRE.finditer(s):
        _parse_expr(match["inner"])


def _validate_value(value: Any, key: str | None) -> None:
    if value is None or type(value) in _PRIMITIVES:
        return
    not_primitive = value is not None and not isinstance(value, _PRIMITIVES)
    not_foreach = key is not None and "foreach" not in key
    if not_primitive and not_foreach:
        if isinstance(value, dict) and key == "cmd":
            return
        raise _ParseError(f"Cannot interpolate data of type '{type(value).__name__}'")


def to_str(obj: Any, config: Mapping[str, str] | None = None) -> str:
    """DVC's `to_str`: how a value reads inside a string (`cmd: train ${opts}`)."""
    if type(obj) is str:
        return obj
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if not isinstance(obj, dict):
        return str(obj)
    config = config or {}
    result = ""
    for k, v in _flatten(obj).items():
        if isinstance(v, bool):
            if v:
                result += f"--{k} "
            elif config.get("bool", "store_true") == "boolean_optional":
                result += f"--no-{k} "
        elif isinstance(v, str):
            result += f"--{k} {shlex.quote(v)} "
        elif isinstance(v, Iterable):
            for n, i in enumerate(v):
                if isinstance(i, str):
                    i = shlex.quote(i)
                elif isinstance(i, Iterable):
                    raise _ParseError(f"Cannot interpolate nested iterable in '{k}'")
                if config.get("list", "nargs") == "append":
                    result += f"--{k} {i} "
                else:
                    result += f"{i} " if n > 0 else f"--{k} {i} "
        else:
            result += f"--{k} {v} "
    return result.rstrip()


def _flatten(d: Mapping[Any, Any]) -> dict[str, Any]:
    """flatten_dict.flatten(d, reducer="dot"): empty mappings vanish."""
    flat: dict[str, Any] = {}

    def walk(item: Mapping[Any, Any], parent: str | None) -> bool:
        has_item = False
        for key, value in item.items():
            has_item = True
            flat_key = key if parent is None else f"{parent}.{key}"
            if isinstance(value, Mapping):
                walk(value, flat_key)
                continue
            if flat_key in flat:
                raise _Fatal(f"duplicated key '{flat_key}'")
            flat[flat_key] = value
        return has_item

    walk(d, None)
    return flat


def _recurse(f: Callable[[str], Any], data: Any) -> Any:
    """DVC's `recurse`: `f` over every string of a value, mapping keys included."""
    kind = type(data)
    if kind is str:
        return f(data)
    if kind is list:
        return [_recurse(f, v) for v in data]
    if kind is dict or isinstance(data, Mapping):
        out = {}
        for k, v in data.items():
            key = _recurse(f, k)
            if type(key) is not str:
                try:
                    hash(key)
                except TypeError:
                    raise _Fatal(f"unhashable type: '{_type_name(key)}'") from None
            out[key] = _recurse(f, v)
        return out
    if isinstance(data, (list, tuple, set)):
        return type(data)(_recurse(f, v) for v in data)
    if isinstance(data, str):
        return f(data)
    return data


def _has_template(value: Any) -> bool:
    """Whether any string (keys included) holds `${`; each node visited once (alias bombs)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                return True
        elif isinstance(item, (Mapping, list, tuple, set)) and id(item) not in seen:
            seen.add(id(item))
            stack.extend([*item.keys(), *item.values()] if isinstance(item, Mapping) else item)
    return False


def uses_templating(data: Mapping[str, Any]) -> bool:
    """Whether a loaded dvc.yaml needs resolution: top-level `vars`, a stage with
    `foreach`/`matrix`/`vars`, or `${` in a stage (linear, even for YAML alias bombs)."""
    if not isinstance(data, Mapping):
        return False
    if VARS_KWD in data:
        return True
    stages = data.get("stages")
    if not isinstance(stages, Mapping):
        return False
    for body in stages.values():
        if isinstance(body, Mapping) and (
            FOREACH_KWD in body or MATRIX_KWD in body or VARS_KWD in body
        ):
            return True
    return _has_template(stages)


def _is_map_or_seq(data: Any) -> bool:
    """Mappings and sequences but strings; context nodes count as what they hold."""
    if type(data) in (_Dict, _List):
        return True
    return not isinstance(data, str) and isinstance(data, (Mapping, Sequence))


def _is_map(data: Any) -> bool:
    return type(data) is _Dict or isinstance(data, Mapping)


def _key_str(value: Any) -> str:
    """to_str of a foreach/matrix value: a node is str()'d (DVC dispatches on its type)."""
    return str(value) if isinstance(value, _Value) else to_str(value)


# ---- the resolver (dvc/parsing/__init__.py) -------------------------------------------------


class _Resolver:
    def __init__(
        self,
        file: str,
        load: Callable[[str], Any],
        parsing: Mapping[str, str] | None,
    ) -> None:
        self.file = file
        self.wdir = posixpath.dirname(file)
        self._load = load
        self.parsing = dict(parsing or {})
        self.loaded: dict[str, Any] = {}
        self.checked: set[int] = set()
        self.clock = _Clock()
        self.context = _Context(self.clock)
        self.tracked_vars: dict[str, dict[str, dict[str, Any]]] = {}
        self.definitions: dict[str, _Entry | _Group] = {}

    # -- files
    def path_of(self, wdir: str, path: str) -> str:
        joined = posixpath.normpath(posixpath.join(wdir, path))
        if joined.startswith("/") or joined == ".." or joined.startswith("../"):
            raise _Fatal(f"vars file {abbrev(joined)} is outside the repository")
        return joined

    def load(self, path: str) -> Any:
        if path not in self.loaded:
            self.loaded[path] = self._load(path)
        return self.loaded[path]

    def load_from(self, path: str, select_keys: list[str] | None) -> _Dict:
        data = self.load(path)
        if data is None:
            raise _ParamsLoadError(f"'{path}' does not exist")
        if not isinstance(data, Mapping):
            raise _ParamsLoadError(
                f"expected a dictionary, got '{type(data).__name__}' in file '{path}'"
            )
        if select_keys:
            missing = next((k for k in select_keys if k not in data), None)
            if missing is not None:
                raise _ParamsLoadError(f"could not find '{missing}' in '{path}'")
            data = {key: data[key] for key in select_keys}
        meta = _Meta(source=path, local=False)
        if id(data) not in self.checked:
            _check_convertible(data, meta, set())
            if not select_keys:
                self.checked.add(id(data))
        return _Dict(data, meta, self.clock.now)

    def merge_from(self, ctx: _Context, item: str, wdir: str) -> None:
        path_part, _, keys_str = item.partition(":")
        path = self.path_of(wdir, path_part)
        select_keys = [k for k in keys_str.split(",") if k] if keys_str else None
        if path in ctx.imports:
            if not select_keys and ctx.imports[path] is None:
                return  # a whole file may be named twice
            imported = ctx.imports[path]
            if not select_keys and isinstance(imported, list):
                raise _VarsAlreadyLoaded(f"cannot load '{item}' as it's partially loaded already")
            if select_keys and imported is None:
                raise _VarsAlreadyLoaded(f"cannot partially load '{item}' as it's already loaded.")
            if isinstance(imported, list) and set(select_keys or ()) & set(imported):
                raise _VarsAlreadyLoaded(f"cannot load '{item}' as it's partially loaded already")
        loaded = self.load_from(path, select_keys)
        try:
            ctx.merge_update(loaded)
        except _ReservedKeyError as exc:
            raise _ReservedKeyError(exc.keys, item) from None
        if path not in ctx.imports:
            ctx.imports[path] = select_keys
        elif select_keys:
            imported = ctx.imports[path]
            if imported is not None:
                imported.extend(select_keys)

    def load_from_vars(
        self,
        ctx: _Context,
        vars_: Any,
        wdir: str,
        stage_name: str | None = None,
        default: str | None = None,
    ) -> None:
        if default and self.load(self.path_of(wdir, default)) is not None:
            self.merge_from(ctx, default, wdir)
        if not isinstance(vars_, list):
            raise _Fatal(f"'vars' must be a list, got {type(vars_).__name__}")
        joiner = "." if stage_name else ""
        for index, item in enumerate(vars_):
            if isinstance(item, str):
                self.merge_from(ctx, item, wdir)
            elif isinstance(item, dict):
                meta = _Meta(source=f"{stage_name or ''}{joiner}vars[{index}]")
                ctx.merge_update(_convert(item, meta, self.clock.now))
            else:
                raise _Fatal(
                    f"'vars' entries must be file names or mappings, got {type(item).__name__}"
                )

    # -- resolving values
    def resolve(
        self,
        ctx: _Context,
        src: Any,
        unwrap: bool = True,
        skip_checks: bool = False,
        key: str | None = None,
    ) -> Any:
        return _recurse(lambda s: self.resolve_str(ctx, s, unwrap, skip_checks, key), src)

    def resolve_str(
        self,
        ctx: _Context,
        src: str,
        unwrap: bool = True,
        skip_checks: bool = False,
        key: str | None = None,
    ) -> Any:
        if "${" not in src:
            return src
        try:
            parts = _interpolations(src, skip_checks)
        except _ParseError:  # DVC parses each `${...}` just before it looks it up
            parts = tuple((m.start(), m.end(), m["inner"]) for m in _KEYCRE.finditer(src))
            parsed = False
        else:
            parsed = True
        if len(parts) == 1 and parts[0][0] == 0 and parts[0][1] == len(src):
            expr = parts[0][2] if parsed or skip_checks else _parse_expr(parts[0][2])
            value = ctx.select(expr, unwrap)
            _validate_value(value, key)
            return value
        index, buf = 0, ""
        for start, end, expr in parts:
            if not (parsed or skip_checks):
                expr = _parse_expr(expr)
            value = ctx.select(expr, True)
            _validate_value(value, key)
            buf += src[index:start] + to_str(value, self.parsing)
            index = end
        buf += src[index:]
        return buf.replace("\\${", "${")

    def check_syntax_errors(self, definition: Mapping[str, Any], name: str) -> None:
        for key, d in definition.items():
            try:
                _recurse(_check_expression, d)
            except _ParseError as exc:
                _format_and_raise(exc, f"'stages.{name}.{key}'")

    def check_interpolations(self, data: Any, where: str) -> None:
        def check(s: str) -> None:
            if _KEYCRE.search(s):
                raise _Fatal(f"failed to parse '{where}': interpolating is not allowed")

        _recurse(check, data)

    # -- the document
    def run(self, data: Any) -> dict[str, ResolvedStage]:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise _Fatal(f"dvc.yaml must be a mapping, got {type(data).__name__}")
        vars_ = data.get(VARS_KWD, [])
        self.check_interpolations(vars_, VARS_KWD)
        try:
            self.load_from_vars(self.context, vars_, self.wdir, default=DEFAULT_PARAMS_FILE)
        except _ContextError as exc:
            _format_and_raise(exc, "'vars'")
        stages = data.get("stages") or {}
        if not isinstance(stages, Mapping):
            raise _Fatal(f"'stages' must be a mapping, got {type(stages).__name__}")
        definitions: dict[str, _Entry | _Group] = {}
        for name, body in stages.items():
            if not isinstance(name, str):
                raise _Fatal(f"stage name must be a string, got {abbrev(name)}")
            if not isinstance(body, Mapping):
                raise _Fatal(f"stage '{name}' must be a mapping, got {type(body).__name__}")
            definitions[name] = self.make_definition(name, body)
        self.definitions = definitions
        names: list[str] = []
        for name, definition in definitions.items():  # DataResolver.get_keys()
            if isinstance(definition, _Entry):
                names.append(name)
            else:
                names.extend(f"{name}{JOIN}{k}" for k in definition.normalized())
        bodies: dict[str, dict[str, Any]] = {}
        for name in names:  # DataResolver.resolve(): resolve_one for every key
            bodies.update(self.resolve_one(name))
        return {
            name: ResolvedStage(name, body, self.tracked(name, body))
            for name, body in bodies.items()
        }

    def make_definition(self, name: str, body: Mapping[str, Any]) -> _Entry | _Group:
        if MATRIX_KWD in body:
            if FOREACH_KWD in body or DO_KWD in body:
                raise _Fatal(f"stage '{name}': 'matrix' cannot be used with 'foreach'/'do'")
            return _Matrix(self, name, body)
        if FOREACH_KWD in body:
            if DO_KWD not in body:
                raise _Fatal(f"stage '{name}': 'foreach' needs 'do'")
            return _Foreach(self, name, body)
        return _Entry(self, name, body)

    def resolve_one(self, name: str) -> dict[str, dict[str, Any]]:
        group, key = name, None  # split_group_name: the last `@` splits
        if JOIN in name:
            group, _, key = name.rpartition(JOIN)
        definition = self.definitions.get(group)
        if isinstance(definition, _Entry) and key is None:
            return definition.resolve()
        if isinstance(definition, _Group) and key is not None and key in definition.normalized():
            return definition.resolve_one(key)
        raise _Fatal(f"Could not find '{name}'")

    def tracked(self, name: str, body: Mapping[str, Any]) -> dict[str, list[str]]:
        """The stage's tracked vars, keyed relative to its wdir as DVC's stage loader sets
        it (`resolve_paths`: the resolved `wdir`, if any, joined to the dvc.yaml's directory)."""
        wdir = body.get(WDIR_KWD)
        wdir = posixpath.join(self.wdir, to_str(wdir)) if wdir else self.wdir
        return {
            _relpath(source, wdir): list(keys)
            for source, keys in self.tracked_vars.get(name, {}).items()
        }


def _is_plain(definition: Mapping[str, Any]) -> bool:
    return VARS_KWD not in definition and not _has_template(definition)


def _relpath(path: str, start: str) -> str:
    """`path` relative to `start`, both normalised and repository-relative (no cwd involved);
    `path` itself when `start` leaves the repository."""
    start = posixpath.normpath(start or ".")
    if start == ".":
        return path
    if start.startswith("/") or start == ".." or start.startswith("../"):
        return path
    parts, base = path.split("/"), start.split("/")
    common = 0
    while common < min(len(parts), len(base)) and parts[common] == base[common]:
        common += 1
    return "/".join([".."] * (len(base) - common) + parts[common:]) or "."


class _Entry:
    def __init__(
        self,
        resolver: _Resolver,
        name: str,
        definition: Mapping[str, Any],
        plain: bool | None = None,
    ) -> None:
        self.resolver = resolver
        self.name = name
        self.definition = definition
        # a stage without `${` and `vars` resolves to itself: skip the walk (alias bombs)
        self.plain = _is_plain(definition) if plain is None else plain

    def resolve(self) -> dict[str, dict[str, Any]]:
        try:
            return self.resolve_stage()
        except _ContextError as exc:
            _format_and_raise(exc, f"stage '{self.name}'")

    def _resolve_wdir(self, ctx: _Context, wdir: Any) -> str:
        r = self.resolver
        if not wdir:
            return r.wdir
        if not isinstance(wdir, str):
            raise _Fatal(f"'stages.{self.name}.wdir' must be a string")
        try:
            resolved = to_str(r.resolve_str(ctx, wdir))
        except (_ContextError, _ParseError) as exc:
            _format_and_raise(exc, f"'stages.{self.name}.wdir'")
        return posixpath.join(r.wdir, resolved)

    def resolve_stage(self, skip_checks: bool = False) -> dict[str, dict[str, Any]]:
        r, name = self.resolver, self.name
        if self.plain:
            r.tracked_vars[name] = {}
            return {name: dict(self.definition)}
        ctx = self.resolver.context
        if not skip_checks:
            r.check_syntax_errors(self.definition, name)
        definition = dict(self.definition)
        wdir = self._resolve_wdir(ctx, definition.get(WDIR_KWD))
        vars_ = definition.pop(VARS_KWD, [])
        r.check_interpolations(vars_, f"stages.{name}.vars")
        if vars_:
            ctx = ctx.clone()
        try:
            r.load_from_vars(ctx, vars_, wdir, stage_name=name)
        except _VarsAlreadyLoaded as exc:
            _format_and_raise(exc, f"'stages.{name}.vars'")
        with ctx.track() as tracked:
            resolved = {}
            for key, value in definition.items():
                try:
                    resolved[key] = r.resolve(ctx, value, True, skip_checks, key)
                except (_ParseError, _KeyNotInContext) as exc:
                    _format_and_raise(exc, f"'stages.{name}.{key}'")
        r.tracked_vars[name] = tracked
        return {name: resolved}


class _Group:
    """What ForeachDefinition and MatrixDefinition share."""

    kind = ""

    def __init__(self, resolver: _Resolver, name: str, template: Mapping[str, Any]) -> None:
        self.resolver = resolver
        self.name = name
        self._template = template
        self._checked = False
        self._normalized: dict[str, Any] | None = None
        self._plain: bool | None = None
        self.resolved_iterable: Any = None

    def template(self) -> Mapping[str, Any]:
        if not self._checked:
            self.resolver.check_syntax_errors(self._template, self.name)
            self._checked = True
        return self._template

    def normalized(self) -> dict[str, Any]:
        if self._normalized is None:
            self._normalized = self._normalize()
        return self._normalized

    def _normalize(self) -> dict[str, Any]:
        raise NotImplementedError

    def _to_set(self, key: str, value: Any) -> dict[str, Any]:
        raise NotImplementedError

    def resolve_one(self, key: str) -> dict[str, dict[str, Any]]:
        value = self.normalized()[key]
        r = self.resolver
        generated = f"{self.name}{JOIN}{key}"
        undo = r.context.set_temporarily(self._to_set(key, value))
        try:
            template = self.template()
            if self._plain is None:
                self._plain = _is_plain(template)
            entry = _Entry(r, generated, template, self._plain)
            try:
                return entry.resolve_stage(skip_checks=True)
            except _ContextError as exc:
                _format_and_raise(exc, f"stage '{generated}'")
        finally:
            undo()


class _Foreach(_Group):
    def __init__(self, resolver: _Resolver, name: str, definition: Mapping[str, Any]) -> None:
        template = definition[DO_KWD]
        if not isinstance(template, Mapping):
            raise _Fatal(f"stage '{name}': 'do' must be a mapping")
        super().__init__(resolver, name, template)
        self.foreach_data = definition[FOREACH_KWD]

    def _normalize(self) -> dict[str, Any]:
        r = self.resolver
        try:
            iterable = r.resolve(r.context, self.foreach_data, unwrap=False)
        except (_ContextError, _ParseError) as exc:
            _format_and_raise(exc, f"'stages.{self.name}.foreach'")
        if not _is_map_or_seq(iterable):
            node = iterable.value if isinstance(iterable, _Value) else iterable
            raise _Fatal(
                f"failed to resolve 'stages.{self.name}.foreach':"
                f" expected list/dictionary, got {type(node).__name__}"
            )
        self.resolved_iterable = iterable
        if _is_map(iterable):
            items = iterable.data.items() if isinstance(iterable, _Dict) else iterable.items()
            return {to_str(k): v for k, v in items}
        values = list(iterable)
        if any(map(_is_map_or_seq, values)):
            return {to_str(i): v for i, v in enumerate(values)}
        return {_key_str(v): v for v in values}

    def _to_set(self, key: str, value: Any) -> dict[str, Any]:
        if _is_map(self.resolved_iterable):
            return {ITEM: value, KEY: key}
        return {ITEM: value}


class _Matrix(_Group):
    def __init__(self, resolver: _Resolver, name: str, definition: Mapping[str, Any]) -> None:
        template = dict(definition)
        self.matrix_data = template.pop(MATRIX_KWD)
        super().__init__(resolver, name, template)

    def _normalize(self) -> dict[str, Any]:
        r = self.resolver
        try:
            iterable = r.resolve(r.context, self.matrix_data, unwrap=False)
        except (_ContextError, _ParseError) as exc:
            _format_and_raise(exc, f"'stages.{self.name}.matrix'")
        if not _is_map(iterable):
            raise _Fatal(f"'stages.{self.name}.matrix' must be a mapping")
        items = list(iterable.data.items() if isinstance(iterable, _Dict) else iterable.items())
        axes = []
        for _, v in items:
            if isinstance(v, _Dict):
                axes.append(list(enumerate(v.data)))  # iterating a mapping: its keys
            elif isinstance(v, (str, list, tuple, set, dict, _List)):
                axes.append(list(enumerate(v)))
            else:
                raise _Fatal(f"'{_type_name(v)}' object is not iterable")
        ret: dict[str, Any] = {}
        for combination in product(*axes):
            d: dict[Any, Any] = {}
            fragments: list[str] = []
            for (k, _), (i, v) in zip(items, combination, strict=True):
                d[k] = v
                fragments.append(f"{k}{i}" if _is_map_or_seq(v) else _key_str(v))
            ret["-".join(fragments)] = d
        return ret

    def _to_set(self, key: str, value: Any) -> dict[str, Any]:
        return {KEY: key, ITEM: value}


def resolve_stages(
    data: Mapping[str, Any],
    file: str,
    load: Callable[[str], Any],
    parsing: Mapping[str, str] | None = None,
) -> dict[str, ResolvedStage]:
    """The stages of a loaded dvc.yaml as DVC resolves them (`DataResolver.resolve()`), in
    DVC's order. `file` is the dvc.yaml's repository-relative POSIX path; `load(path)` gives a
    vars/params file's parsed content by repository-relative path, or None when it does not
    exist; `parsing` is the DVC config's `[parsing]` section. Like DVC, the `params.yaml` beside
    the dvc.yaml is read even when nothing uses it, and a broken one breaks the dvc.yaml.
    Anything DVC cannot resolve raises DvcFileError(file, <DVC's reason>)."""
    resolver = _Resolver(file, load, parsing)
    try:
        return resolver.run(data)
    except _Fatal as exc:
        raise DvcFileError(file, exc.reason) from None
    except RecursionError:
        raise DvcFileError(file, "nested too deeply to resolve") from None
