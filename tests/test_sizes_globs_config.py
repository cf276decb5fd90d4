"""Core: size parsing, globs and the strict [tool.repro-hooks] configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repro_hooks.errors import ConfigError
from repro_hooks.policy.config import DEFAULT_MAX_SIZE, Policy, load_config
from repro_hooks.policy.globs import glob_match
from repro_hooks.policy.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1048576", 1048576, id="plain-bytes"),
        pytest.param(42, 42, id="int"),
        pytest.param("500B", 500, id="bytes-suffix"),
        pytest.param("500KB", 500_000, id="KB-is-1000"),
        pytest.param("500kb", 500_000, id="case-insensitive"),
        pytest.param("500K", 512_000, id="K-is-1024"),
        pytest.param("500KiB", 512_000, id="KiB"),
        pytest.param("1.5MiB", 1_572_864, id="fraction"),
        pytest.param("2G", 2 * 1024**3, id="G"),
        pytest.param("2GB", 2 * 10**9, id="GB"),
        pytest.param(" 3 MB ", 3_000_000, id="spaces"),
        pytest.param("1TiB", 1024**4, id="TiB"),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1XB", "-5", "5 5", "KB", "1..5M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"size|unit"):
        parse_size(text)


def test_parse_size_rejects_negative_int_and_bool() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_size(-1)
    with pytest.raises(ValueError, match="size"):
        parse_size(True)


@given(
    st.integers(min_value=0, max_value=2**50),
    st.sampled_from(["", "B", "K", "KiB", "KB", "M", "MiB", "MB", "G"]),
)
def test_parse_size_property(n: int, unit: str) -> None:
    factor = {
        "": 1,
        "B": 1,
        "K": 1024,
        "KiB": 1024,
        "KB": 1000,
        "M": 1024**2,
        "MiB": 1024**2,
        "MB": 10**6,
        "G": 1024**3,
    }[unit]
    assert parse_size(f"{n}{unit}") == n * factor


@given(st.text(max_size=12))
def test_parse_size_never_crashes(text: str) -> None:
    try:
        assert parse_size(text) >= 0
    except ValueError:
        pass


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (512_000, "500 KiB"),
        (1_572_864, "1.5 MiB"),
        (3 * 1024**4, "3 TiB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.csv", "a.csv", True),
        ("*.csv", "data/raw/a.csv", True),
        ("*.csv", "a.csv.dvc", False),
        ("data/*.csv", "data/a.csv", True),
        ("data/*.csv", "data/raw/a.csv", False),
        ("data/**/*.csv", "data/raw/x/a.csv", True),
        ("data/**/*.csv", "data/a.csv", True),
        ("/top.bin", "top.bin", True),
        ("/top.bin", "sub/top.bin", False),
        ("fixtures/", "fixtures/x/y.csv", True),
        ("fixtures/", "other/fixtures/y.csv", False),
        ("f?.pt", "f1.pt", True),
        ("f[0-9].pt", "f7.pt", True),
        ("f[!0-9].pt", "f7.pt", False),
        ("*.csv", "we ird\nname.csv", True),
        ("[unclosed", "[unclosed", True),
    ],
)
def test_glob_match(pattern: str, path: str, matches: bool) -> None:
    assert glob_match(pattern, path) is matches


def _config(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(body, encoding="utf-8")
    return tmp_path


def test_config_defaults_without_pyproject(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.policy.max_size == DEFAULT_MAX_SIZE
    assert config.policy.is_data("data/train.parquet")
    assert not config.policy.is_data("src/train.py")


def test_config_reads_every_key(tmp_path: Path) -> None:
    root = _config(
        tmp_path,
        """
[tool.repro-hooks]
max-size = "1MB"
size-limits = { "*.ipynb" = "2MiB", "assets/**" = 100 }
exclude = ["vendor/**"]
data-patterns = ["*.csv"]
extend-data-patterns = ["*.bin"]
data-exclude = ["tests/fixtures/"]

[tool.repro-hooks.mlflow]
tracking-uri = "http://127.0.0.1:5000"
experiments = ["a", "b"]
run-id = "abc"
timeout = 5
warn-after-attempts = 2
warn-after-hours = 1.5
""",
    )
    config = load_config(root)
    policy = config.policy
    assert policy.max_size == 1_000_000
    assert policy.size_limit_for("nb/x.ipynb") == 2 * 1024**2
    assert policy.size_limit_for("assets/a/b.png") == 100
    assert policy.size_limit_for("other.txt") == 1_000_000
    assert policy.is_excluded("vendor/lib.so")
    assert policy.is_data("w.bin") and policy.is_data("x.csv")
    assert not policy.is_data("tests/fixtures/small.csv")
    assert not policy.is_data("vendor/x.csv")
    assert config.mlflow.tracking_uri == "http://127.0.0.1:5000"
    assert config.mlflow.experiments == ("a", "b")
    assert config.mlflow.run_id == "abc"
    assert config.mlflow.timeout == 5.0
    assert config.mlflow.warn_after_attempts == 2
    assert config.mlflow.warn_after_hours == 1.5


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        pytest.param(
            '[tool.repro-hooks]\nmax-sise = "1MB"\n',
            "tool.repro-hooks.max-sise",
            "unknown key",
            id="unknown-key",
        ),
        pytest.param(
            '[tool.repro-hooks]\nmax-size = "lots"\n',
            "tool.repro-hooks.max-size",
            "not a size",
            id="bad-size",
        ),
        pytest.param(
            "[tool.repro-hooks]\nmax-size = true\n",
            "tool.repro-hooks.max-size",
            "expected a size",
            id="bool-size",
        ),
        pytest.param(
            '[tool.repro-hooks]\nexclude = "x"\n',
            "tool.repro-hooks.exclude",
            "list of glob",
            id="exclude-not-list",
        ),
        pytest.param(
            '[tool.repro-hooks]\nexclude = [""]\n',
            "tool.repro-hooks.exclude",
            "empty glob",
            id="empty-glob",
        ),
        pytest.param(
            '[tool.repro-hooks]\nsize-limits = ["x"]\n',
            "tool.repro-hooks.size-limits",
            "table",
            id="limits-not-table",
        ),
        pytest.param(
            '[tool.repro-hooks]\nsize-limits = { "*.x" = "big" }\n',
            "tool.repro-hooks.size-limits",
            "'*.x'",
            id="limit-bad-size",
        ),
        pytest.param(
            "[tool.repro-hooks]\nextend-data-patterns = 3\n",
            "tool.repro-hooks.extend-data-patterns",
            "list",
            id="extend-bad",
        ),
        pytest.param(
            "[tool.repro-hooks]\nmlflow = 3\n",
            "tool.repro-hooks.mlflow",
            "table",
            id="mlflow-not-table",
        ),
        pytest.param(
            "[tool.repro-hooks.mlflow]\ntimeout = -1\n",
            "tool.repro-hooks.mlflow.timeout",
            "seconds",
            id="bad-timeout",
        ),
        pytest.param(
            "[tool.repro-hooks.mlflow]\nwarn-after-attempts = 0\n",
            "tool.repro-hooks.mlflow.warn-after-attempts",
            "whole number",
            id="bad-warn-after-attempts",
        ),
        pytest.param(
            "[tool.repro-hooks.mlflow]\nwarn-after-hours = true\n",
            "tool.repro-hooks.mlflow.warn-after-hours",
            "hours",
            id="bad-warn-after-hours",
        ),
        pytest.param(
            "[tool.repro-hooks.mlflow]\nrun-id = ''\n",
            "tool.repro-hooks.mlflow.run-id",
            "non-empty",
            id="empty-run-id",
        ),
        pytest.param(
            "[tool.repro-hooks.mlflow]\nexperiments = [1]\n",
            "tool.repro-hooks.mlflow.experiments",
            "list of strings",
            id="bad-experiments",
        ),
        pytest.param(
            "[tool.repro-hooks.mlflow]\nuri = 'x'\n",
            "tool.repro-hooks.mlflow.uri",
            "unknown key",
            id="mlflow-unknown",
        ),
        pytest.param(
            "[tool]\nrepro-hooks = 3\n", "tool.repro-hooks", "table", id="table-not-table"
        ),
        pytest.param("[tool.repro-hooks\n", "toml", "malformed TOML", id="malformed-toml"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, body: str, key: str, reason: str) -> None:
    root = _config(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    assert info.value.file == "pyproject.toml"
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value).startswith(f"pyproject.toml: {key}: ")


def test_unknown_key_lists_every_known_key(tmp_path: Path) -> None:
    root = _config(tmp_path, "[tool.repro-hooks]\nmaxsize = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(root)
    for key in (
        "max-size",
        "size-limits",
        "exclude",
        "data-patterns",
        "extend-data-patterns",
        "data-exclude",
        "mlflow",
    ):
        assert key in info.value.reason


def test_config_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.repro-hooks]\nx = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid UTF-8|malformed TOML"):
        load_config(tmp_path)


def test_explicit_policy_file_top_level_and_tool_table(tmp_path: Path) -> None:
    top = tmp_path / "policy.toml"
    top.write_text('max-size = "2KB"\n')
    assert load_config(tmp_path, top).policy.max_size == 2000
    nested = tmp_path / "nested.toml"
    nested.write_text('[tool.repro-hooks]\nmax-size = "3KB"\n')
    assert load_config(tmp_path, nested).policy.max_size == 3000
    with pytest.raises(ConfigError, match="unknown key"):
        bad = tmp_path / "bad.toml"
        bad.write_text("nope = 1\n")
        load_config(tmp_path, bad)
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path, tmp_path / "missing.toml")


def test_pyproject_without_our_table(tmp_path: Path) -> None:
    root = _config(tmp_path, '[project]\nname = "x"\n[tool.black]\nline-length = 1\n')
    assert load_config(root).policy == Policy()
