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
from repro_hooks.policy.globs import first_match, matches_any, validate_glob
from repro_hooks.policy.sizes import parse_size

DEFAULT_MAX_SIZE = 500 * 1024  # the same default as pre-commit-hooks' check-added-large-files
# Commit and tag messages (history scans, pre-receive): far above any real message, far below
# the megabytes that every clone would then carry.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024

# Data patterns: the formats ML teams store (docs/configuration.md#default-data-patterns says why
# each family is in, and why images and media are not: the total-size limits guard bulk).
DEFAULT_DATA_PATTERNS: tuple[str, ...] = tuple(
    f"*.{ext}"
    for ext in (
        # tables and columnar formats
        "csv",
        "tsv",
        "jsonl",
        "parquet",
        "feather",
        "arrow",
        "avro",
        "orc",
        "xlsx",
        "xls",
        "sav",
        "dta",
        "rds",
        "rdata",
        # arrays and scientific containers
        "h5",
        "hdf5",
        "npy",
        "npz",
        "mat",
        "nc",
        "netcdf",
        # pickled objects
        "pkl",
        "pickle",
        "joblib",
        # checkpoints and model formats
        "pt",
        "pth",
        "ckpt",
        "onnx",
        "safetensors",
        "gguf",
        "keras",
        "tflite",
        "pb",
        "mlmodel",
        "caffemodel",
        "pdparams",
        # record formats
        "tfrecord",
        "tfrecords",
        "recordio",
        # archives (datasets are shipped as archives); not bare `*.gz`/`*.xz`/`*.zst`, which
        # tools use for their own caches and logs, nor `*.tar.gz`, a package's sdist in dist/
        "zip",
        "tar",
        "tgz",
        "7z",
        "rar",
        # compressed tables
        "csv.gz",
        "tsv.gz",
        "jsonl.gz",
    )
)

# ---- total-size limits ---------------------------------------------------
# The bytes git stores for the new blobs (loose objects are zlib-compressed): what the repository
# and every clone carry. Bulk data under the per-file size limit (10,000 images of 100 KB) is
# stopped by these, not by data patterns.
DEFAULT_MAX_COMMIT_TOTAL = 100 * 1024**2  # staged blobs of one commit
DEFAULT_MAX_PUSH_TOTAL = 500 * 1024**2  # blobs a push introduces (wired in repro_hooks/history)
# The DVC files a push brings are parsed; their distinct bytes are bounded (the largest
# single DVC file read is 8 MiB, repro_hooks.dvc.files.MAX_DVC_FILE_SIZE)
DEFAULT_MAX_PUSH_DVC_TOTAL = 8 * 1024**2

# ---- data-exclude defaults ----
# Folders common ML tools write their logs, configs and run records to: what is in them is not
# data to version with DVC (a large model file there is still caught by the size limit).
# Hydra `outputs/`, `multirun/`; Lightning `lightning_logs/`; W&B `wandb/`; MLflow `mlruns/`,
# `mlartifacts/`; DVC's own `.dvc/`; Jupyter `.ipynb_checkpoints/`. Setting `data-exclude`
# replaces this list (as `data-patterns` replaces its default).
DEFAULT_DATA_EXCLUDE: tuple[str, ...] = (
    "**/outputs/",
    "**/multirun/",
    "**/lightning_logs/",
    "**/wandb/",
    "**/mlruns/",
    "**/mlartifacts/",
    "**/.dvc/",
    "**/.ipynb_checkpoints/",
)
# ---- end of data-exclude defaults ----

# Paths a commit may change without changing what any run computed: documentation,
# licences, CI and hook configuration, ignore files. Not `*.txt`: `requirements.txt` is code.
# Setting `link-ignore` in [tool.repro-hooks.mlflow] replaces this list.
DEFAULT_LINK_IGNORE: tuple[str, ...] = (
    "*.md",
    "*.rst",
    "docs/",
    "LICENSE*",
    "COPYING*",
    "README*",
    "CHANGELOG*",
    "AUTHORS*",
    "NOTICE*",
    ".github/",
    ".gitlab-ci.yml",
    ".gitignore",
    ".dvcignore",
    ".gitattributes",
    ".pre-commit-config.yaml",
)

TABLE = "tool.repro-hooks"


@dataclass(frozen=True)
class Policy:
    """What may be stored in git. Globs are gitignore-style (repro_hooks.policy.globs)."""

    max_size: int = DEFAULT_MAX_SIZE
    size_limits: tuple[tuple[str, int], ...] = ()
    exclude: tuple[str, ...] = ()
    data_patterns: tuple[str, ...] = DEFAULT_DATA_PATTERNS
    data_exclude: tuple[str, ...] = DEFAULT_DATA_EXCLUDE
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # commit stage: case-insensitive data patterns, total-size limits
    data_patterns_case_sensitive: bool = False
    max_commit_total: int = DEFAULT_MAX_COMMIT_TOTAL
    max_push_total: int = DEFAULT_MAX_PUSH_TOTAL
    max_push_dvc_total: int = DEFAULT_MAX_PUSH_DVC_TOTAL

    def is_excluded(self, path: str) -> bool:
        return matches_any(self.exclude, path)

    def size_limit_for(self, path: str) -> int:
        """The first matching per-glob limit, else the default size limit."""
        for pattern, limit in self.size_limits:
            if first_match((pattern,), path) is not None:
                return limit
        return self.max_size

    def is_data(self, path: str) -> bool:
        """Whether a path is a data or model file that belongs in DVC. Data patterns match
        case-insensitively unless `data-patterns-case-sensitive` (`train.CSV` is data);
        `data-exclude` and `exclude` match exactly as written (an exemption is never widened)."""
        if matches_any(self.data_exclude, path) or self.is_excluded(path):
            return False
        return matches_any(self.data_patterns, path, not self.data_patterns_case_sensitive)


def with_max_size(policy: Policy, option: str | None) -> Policy:
    """The policy with `--max-size SIZE` in force (unchanged without one); a bad size is a
    usage error naming the option."""
    if option is None:
        return policy
    from repro_hooks.errors import ReproHooksError

    try:
        return replace(policy, max_size=parse_size(option))
    except ValueError as exc:
        raise ReproHooksError(f"--max-size: {exc}") from None


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str | None = None
    experiments: tuple[str, ...] = ()
    run_id: str | None = None
    timeout: float = 30.0  # of the store's answers; the import of mlflow is not counted
    # links stuck this long make the post-commit hook say so (exit 1, so pre-commit shows it)
    warn_after_attempts: int = 3
    warn_after_hours: float = 24.0
    # which runs a commit links to (links/rules.py choose_runs)
    link: str = "latest"
    # paths that cannot change what a run computes: never code for the link rules
    link_ignore: tuple[str, ...] = DEFAULT_LINK_IGNORE


@dataclass(frozen=True)
class DeployConfig:
    """`[tool.repro-hooks.deploy]`: what the deploy gate demands. The gate reads it from the
    protected branch's own pyproject.toml (repro_hooks.deploy.policy), never from the commit
    it judges, so a change under review cannot weaken it."""

    branch: str | None = None  # the protected branch, when the remote's default is not it
    require_attestation: bool = False  # a version without a valid signed link fails
    allow_push_false: bool = False  # `push: false` DVC outputs pass (and are reported)
    allowed_signers: str = ".repro-hooks/allowed_signers"  # in the protected branch's tree


@dataclass(frozen=True)
class AttestConfig:
    """`[tool.repro-hooks.attest]`: how the link delivery signs the statement of a run's files
    (deploy/attest.py). Without a key, git's own SSH signing key (`user.signingkey` with
    `gpg.format=ssh`) signs; without either, the statement is written unsigned."""

    signing_key: str | None = None  # a private key file (or a public one the ssh-agent holds)


@dataclass(frozen=True)
class Config:
    policy: Policy = field(default_factory=Policy)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    attest: AttestConfig = field(default_factory=AttestConfig)
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


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


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


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValueError("expected a whole number between 1 and 1000")
    return value


def _hours(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 8760:
        raise ValueError("expected a number of hours between 0 and 8760")
    return float(value)


_POLICY_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max-size": ("max_size", _size),
    "size-limits": ("size_limits", _size_table),
    "exclude": ("exclude", _globs),
    "data-patterns": ("data_patterns", _globs),
    "data-exclude": ("data_exclude", _globs),
    "max-message-size": ("max_message_size", _size),
    # commit stage
    "data-patterns-case-sensitive": ("data_patterns_case_sensitive", _bool),
    "max-commit-total": ("max_commit_total", _size),
    "max-push-total": ("max_push_total", _size),
    # bounded parsing of the DVC files a push brings
    "max-push-dvc-total": ("max_push_dvc_total", _size),
}
_MLFLOW_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "tracking-uri": ("tracking_uri", _opt_str),
    "experiments": ("experiments", _str_list),
    "run-id": ("run_id", _opt_str),
    "timeout": ("timeout", _seconds),
    "warn-after-attempts": ("warn_after_attempts", _count),
    "warn-after-hours": ("warn_after_hours", _hours),
}
# which runs a commit links to: the newest qualifying top-level run, or every one since the
# previous commit (sweeps made of separate top-level runs)
_MLFLOW_KEYS["link"] = ("link", lambda v: _choice(v, ("latest", "all-since-previous-commit")))
# globs of paths that are never code for the link rules (replaces DEFAULT_LINK_IGNORE)
_MLFLOW_KEYS["link-ignore"] = ("link_ignore", _globs)


_DEPLOY_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "branch": ("branch", _opt_str),
    "require-attestation": ("require_attestation", _bool),
    "allow-push-false": ("allow_push_false", _bool),
    "allowed-signers": ("allowed_signers", _opt_str),
}
_ATTEST_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "signing-key": ("signing_key", _opt_str),
}
_SUBTABLES = ("mlflow", "deploy", "attest")


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError("expected one of " + ", ".join(repr(a) for a in allowed))
    return str(value)


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
    policy_table = {
        k: v for k, v in table.items() if k not in (*_SUBTABLES, "extend-data-patterns")
    }
    policy = _apply(
        Policy(), policy_table, _POLICY_KEYS, file, prefix, ("extend-data-patterns", *_SUBTABLES)
    )
    if "extend-data-patterns" in table:
        try:
            extra = _globs(table["extend-data-patterns"])
        except ValueError as exc:
            raise ConfigError(file, f"{prefix}.extend-data-patterns", str(exc)) from None
        policy = replace(policy, data_patterns=policy.data_patterns + extra)

    def subtable(
        name: str, default: Any, keys: Mapping[str, tuple[str, Callable[[Any], Any]]]
    ) -> Any:
        if name not in table:
            return default
        if not isinstance(table[name], Mapping):
            raise ConfigError(file, f"{prefix}.{name}", "expected a table")
        return _apply(default, table[name], keys, file, f"{prefix}.{name}")

    mlflow = subtable("mlflow", MlflowConfig(), _MLFLOW_KEYS)
    deploy = subtable("deploy", DeployConfig(), _DEPLOY_KEYS)
    attest = subtable("attest", AttestConfig(), _ATTEST_KEYS)
    return Config(policy=policy, mlflow=mlflow, deploy=deploy, attest=attest, source=file)


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


# ---- misspelled tables ----------------------------------------------------
def _folded(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def misspelled_table(data: Mapping[str, Any]) -> str | None:
    """The dotted name of a table that looks meant as `[tool.repro-hooks]` but is spelled
    otherwise (`[tool.repro_hooks]`, `[tool.reprohooks]`, `[tool.Repro-Hooks]`,
    `[tool.repro-hook]`, `[tool.repro.hooks]`, `[repro-hooks]`), else None: such a table would
    be silently ignored."""
    meant = ("reprohooks", "reprohook")
    for top, tool in data.items():
        if _folded(top) in meant:
            return top
        if _folded(top) not in ("tool", "tools") or not isinstance(tool, Mapping):
            continue
        for key, value in tool.items():
            if (top, key) != ("tool", "repro-hooks") and _folded(key) in meant:
                return f"{top}.{key}"
            if _folded(key) == "repro" and isinstance(value, Mapping):
                hooks = next((k for k in value if _folded(k) in ("hooks", "hook")), None)
                if hooks is not None:
                    return f"{top}.{key}.{hooks}"
    return None


def _check_spelling(data: Mapping[str, Any], file: str) -> None:
    wrong = misspelled_table(data)
    if wrong is not None:
        raise ConfigError(
            file, f"[{wrong}]", f"misspelled table, ignored by every check: spell it [{TABLE}]"
        )


def load_config(repo_root: Path, config_file: Path | None = None) -> Config:
    """The repository's `[tool.repro-hooks]` from pyproject.toml, or an explicit policy file.

    An explicit file may hold the keys at top level or under `[tool.repro-hooks]`.
    """
    if config_file is not None:
        data = load_toml(config_file, str(config_file))
        _check_spelling(data, str(config_file))
        table = data.get("tool", {}).get("repro-hooks") if "tool" in data else data
        if not isinstance(table, Mapping):
            raise ConfigError(str(config_file), TABLE, "expected a table")
        prefix = TABLE if "tool" in data else "(top level)"
        return parse_config(table, str(config_file), prefix)
    pyproject = repo_root / "pyproject.toml"
    if not pyproject.is_file():
        return Config()
    return _from_pyproject(load_toml(pyproject, "pyproject.toml"), "pyproject.toml")


def parse_pyproject(content: bytes, display: str) -> Config:
    """`[tool.repro-hooks]` of a pyproject.toml given as bytes (a blob of some revision),
    errors naming `display`."""
    import tomllib

    try:
        data = tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(display, "toml", "not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(display, "toml", f"malformed TOML: {exc}") from None
    return _from_pyproject(data, display)


def _from_pyproject(data: Mapping[str, Any], display: str) -> Config:
    _check_spelling(data, display)
    tool = data.get("tool", {})
    if not isinstance(tool, Mapping):
        return Config(source=display)
    table = tool.get("repro-hooks", {})
    if not isinstance(table, Mapping):
        raise ConfigError(display, TABLE, "expected a table")
    return parse_config(table, display)
