"""What users copy is declared once (repro_hooks/snippets.py): the README's hook configuration,
the MLflow pin of the hooks, the install lines. Every copy in the docs, the CI templates, the
manifest's comments and the package's messages must be one of the declared forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from repro_hooks import __version__, snippets
from tests.helpers import ROOT

MANIFEST = ROOT / ".pre-commit-hooks.yaml"
DOCS = [
    ROOT / "README.md",
    MANIFEST,
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "docs").rglob("*.yml")),
    *sorted((ROOT / "docs").rglob("*.sh")),
]
SOURCES = sorted(p for p in (ROOT / "repro_hooks").rglob("*.py") if p.name != "snippets.py")
COPIES = [*DOCS, *SOURCES]
IDS = [str(p.relative_to(ROOT)) for p in COPIES]

# `pip install [a few other packages] <repro-hooks, quoted or not>`; lines joined first, since
# markdown may wrap inline code
INSTALL = re.compile(
    r"pip install (?:[^\s`'\"]+ ){0,3}"
    r"(?:'[^'\n]*repro[-_]hooks[^'\n]*'|\"[^\"\n]*repro[-_]hooks[^\"\n]*\"|[^\s`'\"]*repro[-_]hooks[^\s`'\")]*)"
)
# a list of requirements that names MLflow or repro-hooks: what `additional_dependencies` takes
# (a quoted item may hold an apostrophe: `['mlflow-skinny==<your server's version>']`)
_QUOTED = r"(?:'[^\n]*?'|\"[^\n]*?\")(?=\s*[,\]])"
LIST = re.compile(rf"\[\s*{_QUOTED}(?:\s*,\s*{_QUOTED})*\s*\]")


def hook_dependencies(text: str) -> list[str]:
    return [deps for deps in LIST.findall(text) if re.search(r"mlflow|repro[-_]hooks|\.\[", deps)]


PIN = re.compile(r"\bmlflow(?:-skinny)?==(\d[\w.]*)")

EXTRAS = ["", "dvc", "mlflow", "dvc,mlflow"]
INSTALL_LINES = {
    *(snippets.pip_install(extras) for extras in EXTRAS),
    *(snippets.pip_install(extras, before="pre-commit") for extras in EXTRAS),
    *(snippets.pip_install_wheel(extras) for extras in EXTRAS),
}
HOOK_DEPENDENCIES = {
    snippets.MLFLOW_HOOK_DEPENDENCIES,
    snippets.MLFLOW_HOOK_DEPENDENCIES_REST,
    snippets.MLFLOW_HOOK_DEPENDENCIES_SQL,
    '[".[dvc]"]',  # the manifest's require-dvc-pushed: its own package's extra
    "['mlflow==$mlflow_version']",  # docs/demo.sh: the SQL recommendation, the demo's version
}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _joined(path: Path) -> str:
    """The file with its lines joined (a markdown inline code span may wrap), comment leaders
    of Python and YAML dropped."""
    return re.sub(r"\s*\n\s*(?:#\s*)?", " ", _text(path))


def _code_block(text: str, language: str, first_line: str) -> str:
    start = text.index(f"```{language}\n{first_line}")
    return text[start + len(language) + 4 : text.index("```", start + 3)]


def test_the_declared_config_is_the_manifest_s_hooks() -> None:
    config = yaml.safe_load(snippets.PRE_COMMIT_CONFIG)
    (repo,) = config["repos"]
    assert (repo["repo"], repo["rev"]) == (snippets.REPO_URL, f"v{__version__}")
    manifest = {hook["id"] for hook in yaml.safe_load(_text(MANIFEST))}
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    assert set(hooks) == manifest  # every hook, as the README says
    for hook_id, hook in hooks.items():
        expected = yaml.safe_load(snippets.MLFLOW_HOOK_DEPENDENCIES)
        assert hook.get("additional_dependencies") == (
            expected if hook_id.startswith("mlflow-") else None
        ), hook_id
    assert f"mlflow=={snippets.MLFLOW_VERSION}" in snippets.MLFLOW_HOOK_DEPENDENCIES


def test_readme_config_is_the_declared_one() -> None:
    readme = _text(ROOT / "README.md")
    assert _code_block(readme, "yaml", "minimum_pre_commit_version") == snippets.PRE_COMMIT_CONFIG


def test_commands_md_mlflow_hooks_are_the_declared_ones() -> None:
    commands = _text(ROOT / "docs" / "commands.md")
    assert _code_block(commands, "yaml", "      - id: mlflow-tag-commit") == snippets.MLFLOW_HOOKS
    assert snippets.MLFLOW_HOOKS in snippets.PRE_COMMIT_CONFIG


def test_there_are_copies_to_check() -> None:
    """The checks below must have something to fail on."""
    joined = "\n".join(_joined(p) for p in DOCS)
    assert len(INSTALL.findall(joined)) >= 10
    assert len(hook_dependencies(joined)) >= 10
    assert len(PIN.findall(joined)) >= 6


@pytest.mark.parametrize("path", COPIES, ids=IDS)
def test_every_install_line_is_a_declared_one(path: Path) -> None:
    """repro-hooks is not on PyPI: `pip install repro-hooks` (or `"repro-hooks[dvc]"`) would
    fail, or install someone else's package."""
    text = _joined(path)
    if path.suffix == ".py":  # the package builds its install lines from snippets.py
        assert not INSTALL.findall(text), f"{path.name}: use repro_hooks.snippets.pip_install"
        return
    for line in INSTALL.findall(text):
        assert line in INSTALL_LINES, f"{path.relative_to(ROOT)}: {line}"


@pytest.mark.parametrize("path", COPIES, ids=IDS)
def test_every_hook_dependency_list_is_a_declared_one(path: Path) -> None:
    text = _text(path)
    if path.suffix == ".py":
        assert "additional_dependencies: [" not in text, f"{path.name}: use repro_hooks.snippets"
        return
    for deps in hook_dependencies(text):
        assert deps in HOOK_DEPENDENCIES, f"{path.relative_to(ROOT)}: {deps}"


@pytest.mark.parametrize("path", DOCS, ids=IDS[: len(DOCS)])
def test_every_mlflow_pin_is_the_declared_one(path: Path) -> None:
    for version in PIN.findall(_text(path)):
        assert version == snippets.MLFLOW_VERSION, f"{path.relative_to(ROOT)}: mlflow=={version}"


def test_messages_carry_the_declared_install_lines() -> None:
    from repro_hooks.dvc import remote, runner

    assert runner.INSTALL_HINT == remote.INSTALL_HINT == snippets.pip_install("dvc")
    assert snippets.pip_install("dvc") == (
        f"pip install 'repro-hooks[dvc] @ git+{snippets.REPO_URL}@v{__version__}'"
    )
