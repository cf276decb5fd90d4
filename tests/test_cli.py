"""CLI layer: click's CliRunner in standalone mode (exit codes and exact output), and the
console script in a subprocess for start-up properties."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from repro_hooks.cli import COMMANDS, cli, main
from tests.helpers import big, git, write

KIB = 1024


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_clean_exits_0(repo: Path) -> None:
    write(repo / "a.txt", "x")
    git(repo, "add", "-A")
    assert invoke("check-large-files") == (0, "", "")


def test_findings_exit_1_with_exact_output(repo: Path) -> None:
    write(repo / "z.bin", big(600 * KIB))
    write(repo / "a b.bin", big(700 * KIB))
    git(repo, "add", "-A")
    code, out, _ = invoke("check-large-files")
    assert code == 1
    assert out == (
        "a b.bin: 700 KiB in git, over the 500 KiB size limit\n"
        "z.bin: 600 KiB in git, over the 500 KiB size limit\n"
        "\n"
        "Move large data to DVC:\n"
        "  git rm --cached -q -- 'a b.bin' z.bin\n"
        "  dvc init\n"
        "  dvc add -- 'a b.bin' z.bin\n"
        "  git add -- 'a b.bin.dvc' z.bin.dvc .gitignore\n"
        "or let repro-hooks do it (after dvc init): repro-hooks check-large-files --fix\n"
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(["--max-size", "1MB"], 0, id="max-size-raises-limit"),
        pytest.param(["--max-size", "100KiB"], 1, id="max-size-lowers-limit"),
        pytest.param(["--maxkb", "1000"], 0, id="maxkb-alias"),
        pytest.param(["--maxkb", "100"], 1, id="maxkb-low"),
    ],
)
def test_size_options(repo: Path, args: list[str], code: int) -> None:
    write(repo / "m.bin", big(600 * KIB))
    git(repo, "add", "-A")
    assert invoke("check-large-files", *args)[0] == code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--max-size", "1MB", "--maxkb", "5"], "--max-size and --maxkb conflict", id="conflict"
        ),
        pytest.param(["--max-size", "huge"], "--max-size: not a size", id="bad-size"),
    ],
)
def test_usage_errors_exit_2(repo: Path, args: list[str], message: str) -> None:
    code, out, err = invoke("check-large-files", *args)
    assert code == 2
    assert out == ""
    assert err.startswith(f"repro-hooks: {message}")
    assert "Traceback" not in err


def test_click_usage_error_exits_2(repo: Path) -> None:
    result = CliRunner().invoke(cli, ["check-large-files", "--maxkb", "x"])
    assert result.exit_code == 2


def test_config_error_exits_2_naming_file_and_key(repo: Path) -> None:
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax_size = "1MB"\n')
    code, _, err = invoke("check-large-files")
    assert code == 2
    assert err.startswith("repro-hooks: pyproject.toml: tool.repro-hooks.max_size: unknown key")


def test_config_from_pyproject_and_flag_override(repo: Path) -> None:
    write(repo / "pyproject.toml", '[tool.repro-hooks]\nmax-size = "1MiB"\n')
    write(repo / "m.bin", big(600 * KIB))
    git(repo, "add", "-A")
    assert invoke("check-large-files")[0] == 0
    assert invoke("check-large-files", "--max-size", "500KiB")[0] == 1


def test_outside_repository_is_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("check-large-files")
    assert code == 2
    assert "not a git repository" in err


def test_path_outside_repository(repo: Path) -> None:
    code, _, err = invoke("check-large-files", "../elsewhere.bin")
    assert code == 2
    assert "../elsewhere.bin: outside the repository" in err


def test_json_format(repo: Path) -> None:
    write(repo / "ü.bin", big(600 * KIB))
    git(repo, "add", "-A")
    code, out, _ = invoke("check-large-files", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["version"] == 1
    assert doc["command"] == "check-large-files"
    assert doc["findings"] == [
        {
            "path": "ü.bin",
            "rule": "large-file",
            "message": "600 KiB in git, over the 500 KiB size limit",
            "commit": None,
        }
    ]


def test_json_format_clean_prints_empty_document(repo: Path) -> None:
    code, out, _ = invoke("check-large-files", "--format", "json")
    assert code == 0
    assert json.loads(out)["findings"] == []


def test_github_and_sarif_formats(repo: Path) -> None:
    write(repo / "a,b:c.bin", big(600 * KIB))
    git(repo, "add", "-A")
    code, out, _ = invoke("check-large-files", "--format", "github")
    assert code == 1
    assert (
        out
        == "::error file=a%2Cb%3Ac.bin,title=large-file::600 KiB in git, over the 500 KiB size limit\n"
    )
    code, out, _ = invoke("check-large-files", "--format", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    assert sarif["runs"][0]["results"][0]["ruleId"] == "large-file"


def test_bare_repository_is_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    monkeypatch.chdir(bare)
    code, _, err = invoke("check-large-files")
    assert code == 2
    assert "bare repository" in err


def test_main_returns_exit_codes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-large-files"]) == 0
    assert main(["no-such-command"]) == 2
    assert main(["--version"]) == 0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name: str) -> None:
    code, out, _ = invoke(name, "--help")
    assert code == 0
    assert f"Usage: cli {name}" in out or f"Usage: repro-hooks {name}" in out


def test_group_help_lists_every_subcommand() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for name in COMMANDS:
        assert name in out


COMMIT_STAGE = ["check-large-files"]


@pytest.mark.parametrize("name", [c for c in COMMIT_STAGE if c in COMMANDS])
def test_commit_stage_commands_never_import_mlflow_or_dvc(repo: Path, name: str) -> None:
    write(repo / "x.txt", "x")
    git(repo, "add", "-A")
    probe = (
        "import sys\n"
        "from repro_hooks.cli import main\n"
        f"code = main([{name!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'dvc', 'dvc_data', 'pandas'))\n"
        "print(code, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "0 []"


def test_non_ascii_output_under_c_locale(repo: Path) -> None:
    write(repo / "é.bin", big(600 * KIB))
    git(repo, "add", "-A")
    script = Path(sys.executable).parent / "repro-hooks"
    proc = subprocess.run(
        [str(script), "check-large-files"],
        cwd=repo,
        capture_output=True,
        env={
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "LC_ALL": "C",
            "LANG": "C",
            "PYTHONIOENCODING": "ascii",
            "HOME": str(repo),
        },
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert b"Traceback" not in proc.stderr
    assert proc.stdout.startswith((b"\\xe9.bin: 600 KiB", "é.bin: 600 KiB".encode()))
