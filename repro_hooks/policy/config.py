"""`[tool.repro-hooks]` configuration: read once, validated strictly.

An unknown key or a bad value is a ConfigError naming the file and the key (exit 2); nothing is
silently ignored. Command-line flags override the file (the commands apply them with `replace`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from repro_hooks.errors import ConfigError
from repro_hooks.policy.globs import first_match, validate_glob
from repro_hooks.policy.sizes import parse_size

DEFAULT_MAX_SIZE = 500 * 1024  # the same default as pre-commit-hooks' check-added-large-files

DEFAULT_DATA_PATTERNS: tuple[str, ...] = tuple(
    f"*.{ext}"
    for ext in (
        "csv", "tsv", "jsonl", "parquet", "feather", "arrow", "avro", "orc",
        "h5", "hdf5", "npy", "npz", "mat",
        "pkl", "pickle", "joblib",
        "pt", "pth", "ckpt", "onnx", "safetensors", "gguf", "keras", "tflite",
        "tfrecord", "tfrecords",
    )
)  # fmt: skip

# ---- data-exclude defaults (issue 11, item 18) ----
# Folders common ML tools write their logs, configs and run records to: what is in them is not
# data to version with DVC (a large model file there is still caught by the size limit).
# Hydra `outputs/`, `multirun/`; Lightning `lightning_logs/`; W&B `wandb/`; MLflow `mlruns/`,
# `mlartifacts/`; DVC's own `.dvc/`; Jupyter `.ipynb_checkpoints/`. Setting `data-exclude`
# replaces this list (as `data-patterns` replaces its default).
DEFAULT_DATA_EXCLUDE: tuple[str, ...] = (
    "**/outputs/", "**/multirun/", "**/lightning_logs/", "**/wandb/", "**/mlruns/",
    "**/mlartifacts/", "**/.dvc/", "**/.ipynb_checkpoints/",
)  # fmt: skip
# ---- end of data-exclude defaults ----

TABLE = "tool.repro-hooks"
MLFLOW_TABLE = "tool.repro-hooks.mlflow"


@dataclass(frozen=True)
class Policy:
    """What may be stored in git. Globs are gitignore-style (repro_hooks.policy.globs)."""

    max_size: int = DEFAULT_MAX_SIZE
    size_limits: tuple[tuple[str, int], ...] = ()
    exclude: tuple[str, ...] = ()
    data_patterns: tuple[str, ...] = DEFAULT_DATA_PATTERNS
    data_exclude: tuple[str, ...] = DEFAULT_DATA_EXCLUDE

    def is_excluded(self, path: str) -> bool:
        return first_match(self.exclude, path) is not None

    def size_limit_for(self, path: str) -> int:
        """The first matching per-glob limit, else the default size limit."""
        for pattern, limit in self.size_limits:
            if first_match((pattern,), path) is not None:
                return limit
        return self.max_size

    def is_data(self, path: str) -> bool:
        """Whether a path is a data or model file that belongs in DVC."""
        if first_match(self.data_exclude, path) is not None or self.is_excluded(path):
            return False
        return first_match(self.data_patterns, path) is not None


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str | None = None
    experiments: tuple[str, ...] = ()
    run_id: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class Config:
    policy: Policy = field(default_factory=Policy)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    source: str | None = None  # the file it came from, for messages


# ---- value parsers: each raises ValueError with a reason ------------------------------------


def _size(value: Any) -> int:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("expected a size such as 500KiB, 2MB or 1048576")
    return parse_size(value)


def _globs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of glob strings")
    for pattern in value:
        validate_glob(pattern)
    return tuple(value)


def _size_table(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, Mapping):
        raise ValueError('expected a table of glob = size, e.g. { "*.ipynb" = "2MB" }')
    out = []
    for pattern, size in value.items():
        validate_glob(pattern)
        try:
            out.append((pattern, _size(size)))
        except ValueError as exc:
            raise ValueError(f"{pattern!r}: {exc}") from exc
    return tuple(out)


def _opt_str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ValueError("expected a number of seconds between 0 and 3600")
    return float(value)


_POLICY_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max-size": ("max_size", _size),
    "size-limits": ("size_limits", _size_table),
    "exclude": ("exclude", _globs),
    "data-patterns": ("data_patterns", _globs),
    "data-exclude": ("data_exclude", _globs),
}
_MLFLOW_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "tracking-uri": ("tracking_uri", _opt_str),
    "experiments": ("experiments", _str_list),
    "run-id": ("run_id", _opt_str),
    "timeout": ("timeout", _seconds),
}


def _apply(
    obj: Any,
    table: Mapping[str, Any],
    keys: Mapping[str, tuple[str, Callable[[Any], Any]]],
    file: str,
    prefix: str,
    also_known: tuple[str, ...] = (),
) -> Any:
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            known = ", ".join(sorted([*keys, *also_known]))
            raise ConfigError(file, f"{prefix}.{key}", f"unknown key (known: {known})")
        attr, parse = keys[key]
        try:
            changes[attr] = parse(value)
        except ValueError as exc:
            raise ConfigError(file, f"{prefix}.{key}", str(exc)) from None
    return replace(obj, **changes)


def parse_config(table: Mapping[str, Any], file: str, prefix: str = TABLE) -> Config:
    """Build a Config from the `[tool.repro-hooks]` table (already parsed TOML)."""
    policy_table = {k: v for k, v in table.items() if k not in ("mlflow", "extend-data-patterns")}
    policy = _apply(
        Policy(), policy_table, _POLICY_KEYS, file, prefix, ("extend-data-patterns", "mlflow")
    )
    if "extend-data-patterns" in table:
        try:
            extra = _globs(table["extend-data-patterns"])
        except ValueError as exc:
            raise ConfigError(file, f"{prefix}.extend-data-patterns", str(exc)) from None
        policy = replace(policy, data_patterns=policy.data_patterns + extra)
    mlflow = MlflowConfig()
    if "mlflow" in table:
        if not isinstance(table["mlflow"], Mapping):
            raise ConfigError(file, f"{prefix}.mlflow", "expected a table")
        mlflow = _apply(mlflow, table["mlflow"], _MLFLOW_KEYS, file, f"{prefix}.mlflow")
    return Config(policy=policy, mlflow=mlflow, source=file)


def load_toml(path: Path, display: str) -> dict[str, Any]:
    import tomllib  # lazy: most repositories' hooks never read a pyproject.toml with our table

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(display, "file", exc.strerror or str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(display, "toml", f"malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(display, "toml", "not valid UTF-8") from None


def load_config(repo_root: Path, config_file: Path | None = None) -> Config:
    """The repository's `[tool.repro-hooks]` from pyproject.toml, or an explicit policy file.

    An explicit file may hold the keys at top level or under `[tool.repro-hooks]`.
    """
    if config_file is not None:
        data = load_toml(config_file, str(config_file))
        table = data.get("tool", {}).get("repro-hooks") if "tool" in data else data
        if not isinstance(table, Mapping):
            raise ConfigError(str(config_file), TABLE, "expected a table")
        prefix = TABLE if "tool" in data else "(top level)"
        return parse_config(table, str(config_file), prefix)
    pyproject = repo_root / "pyproject.toml"
    if not pyproject.is_file():
        return Config()
    data = load_toml(pyproject, "pyproject.toml")
    tool = data.get("tool", {})
    if not isinstance(tool, Mapping):
        return Config(source="pyproject.toml")
    table = tool.get("repro-hooks", {})
    if not isinstance(table, Mapping):
        raise ConfigError("pyproject.toml", TABLE, "expected a table")
    return parse_config(table, "pyproject.toml")
