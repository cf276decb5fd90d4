"""Params and vars files as DVC reads them, and the sections of DVC's config the checks need.

Pure functions over bytes: the working tree (repro_hooks.dvc.worktree, repro_hooks.links.stamp)
and commits (repro_hooks.history, repro_hooks.deploy, repro_hooks.links.record) feed them alike.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from repro_hooks.dvc.files import MAX_DVC_FILE_SIZE, DvcFileError, bounded, load_yaml


def parse_params(data: bytes, name: str) -> Any:
    """A params (or vars) file as DVC reads it (dvc/utils/serialize): by suffix `.toml`, `.json`,
    `.py`, anything else as YAML (1.2, ruamel's safe loader); an empty file is `{}`. Bounded in
    size and, once aliases are expanded, in values (repro_hooks.dvc.files.bounded). Errors are
    the parsers' own (callers turn them into one line)."""
    suffix = posixpath.splitext(name)[1].lower()
    if len(data) > MAX_DVC_FILE_SIZE:
        raise ValueError(f"too large for a params file ({len(data)} bytes)")
    base = posixpath.basename(name)
    if suffix == ".json":
        return bounded(json.loads(data.decode("utf-8")) or {}, base)
    if suffix == ".toml":
        import tomllib

        return bounded(tomllib.loads(data.decode("utf-8")), base)
    if suffix == ".py":
        return bounded(python_params(data.decode("utf-8")), base)
    return load_yaml(data, base) or {}


def vars_file(data: bytes | None, path: str) -> Any:
    """What a templating resolver's `load` returns for a vars file read as `data` (None: there
    is none): the parsed value, or DvcFileError(path, reason) for one DVC could not read."""
    if data is None:
        return None
    try:
        return parse_params(data, path)
    except DvcFileError as exc:
        raise DvcFileError(path, exc.reason) from None
    except Exception as exc:  # a user's broken vars file: one line, never a traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DvcFileError(path, f"{type(exc).__name__}: {first[:200]}") from None


def python_params(source: str) -> dict[str, Any]:
    """DVC's Python params (dvc/utils/serialize/_py.py): module-level and class-body
    assignments of literals, and `self.x = <literal>` in an `__init__`."""
    import ast

    def name_of(target: ast.expr, only_self: bool) -> str:
        if isinstance(target, ast.Name) and not only_self:
            return target.id
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
        ):
            return target.attr
        raise AttributeError

    def assign(node: ast.Assign | ast.AnnAssign, only_self: bool) -> tuple[str, Any]:
        if isinstance(node, ast.AnnAssign):
            name = name_of(node.target, only_self)
        elif len(node.targets) == 1:
            name = name_of(node.targets[0], only_self)
        else:
            raise AttributeError
        value = node.value
        if value is None:
            raise ValueError
        if isinstance(value, ast.Dict):
            if any(k is None for k in value.keys):
                raise ValueError
            return name, {
                ast.literal_eval(k): ast.literal_eval(v)  # type: ignore[arg-type]
                for k, v in zip(value.keys, value.values, strict=True)
            }
        if isinstance(value, ast.List):
            return name, [ast.literal_eval(v) for v in value.elts]
        if isinstance(value, ast.Set):
            return name, {ast.literal_eval(v) for v in value.elts}
        if isinstance(value, ast.Tuple):
            return name, tuple(ast.literal_eval(v) for v in value.elts)
        return name, ast.literal_eval(value)

    def walk(body: list[ast.stmt], only_self: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for node in body:
            try:
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    key, value = assign(node, only_self)
                    out[key] = value
                elif isinstance(node, ast.ClassDef):
                    out[node.name] = walk(node.body)
                elif isinstance(node, ast.FunctionDef) and node.name == "__init__":
                    out.update(walk(node.body, only_self=True))
            except (
                ValueError,
                AttributeError,
                TypeError,
                SyntaxError,
                MemoryError,
                RecursionError,
            ):
                continue
        return out

    return walk(ast.parse(source).body)


def config_sections(texts: Iterable[str]) -> dict[str, dict[str, str]]:
    """DVC's config files (`.dvc/config`, then `.dvc/config.local`: later ones win), read as
    section -> {option: value}: the plain `[section]` / `key = value` lines DVC writes. Remote
    sections keep their quoted names (`remote "origin"`)."""
    sections: dict[str, dict[str, str]] = {}
    for text in texts:
        section = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip().strip("'\"")
            elif section is not None and "=" in line:
                key, value = line.split("=", 1)
                sections.setdefault(section, {})[key.strip()] = value.strip().strip("'\"")
    return sections


def project_of(path: str, has_dvc_dir: Any) -> str:
    """The DVC project a repository-relative file belongs to: the nearest directory at or above
    it for which `has_dvc_dir(dir)` ("" for the root) says it holds `.dvc/`; "" when none does."""
    parent = posixpath.dirname(path)
    while True:
        if has_dvc_dir(parent):
            return parent
        if not parent:
            return ""
        parent = posixpath.dirname(parent)


def param_value(config: Any, key: str) -> tuple[bool, Any]:
    """A params key's value as DVC looks it up (dpath.get(config, key, separator='.')): walk
    dicts, and lists by index. (found, value)."""
    node = config
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node
