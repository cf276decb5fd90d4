"""The ready-to-copy CI configurations (docs/ci/) validate against the CI systems' published
schemas (vendored by check-jsonschema: offline), appear verbatim in docs/ci-and-server.md, and
run the commands this package has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from repro_hooks.cli import COMMANDS
from tests.helpers import ROOT, VENV_BIN

CI = ROOT / "docs" / "ci"
SCHEMAS = {"github-actions.yml": "vendor.github-workflows", "gitlab-ci.yml": "vendor.gitlab-ci"}
PAGE = (ROOT / "docs" / "ci-and-server.md").read_text(encoding="utf-8")


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_ci_config_validates_against_the_published_schema(name: str, tmp_path: Path) -> None:
    proc = check_jsonschema(SCHEMAS[name], CI / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the check can fail: a misspelt key is refused by the same schema
    broken = tmp_path / name
    text = (CI / name).read_text()
    broken.write_text(text.replace("runs-on:", "runs_on:").replace("script:", "scripts:"))
    assert broken.read_text() != text
    assert check_jsonschema(SCHEMAS[name], broken).returncode == 1


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_ci_config_is_in_the_docs_and_uses_real_commands(name: str) -> None:
    text = (CI / name).read_text()
    assert f"```yaml\n{text}```" in PAGE, f"docs/ci-and-server.md does not show docs/ci/{name}"
    assert f"(ci/{name})" in PAGE  # and links the file
    yaml.safe_load(text)
    for sub in re.findall(r"^\s*(?:- )?repro-hooks ([a-z-]+)", text, re.M):
        assert sub in COMMANDS, sub
    assert "--hook-stage pre-push" in text
    assert "--format sarif" in text
    if name == "github-actions.yml":
        assert "github/codeql-action/upload-sarif@" in text
        assert "security-events: write" in text
