"""What users copy, declared once: the install lines, the MLflow pin for the hooks and the
`.pre-commit-config.yaml` the README shows.

The CLI's messages build their install lines here; the docs carry copies, and
tests/test_snippets.py fails when any copy differs from what is declared here.

repro-hooks is not on PyPI: it is installed from its git repository (or from a wheel built from
it), at the release tag of this version. The MLflow hooks need an MLflow client in their
environment, pinned: a sqlite store must be opened by exactly the MLflow version that created it
(docs/install.md), so neither `repro-hooks[mlflow]` nor `.[mlflow]` (whatever MLflow is newest)
is recommended for them.
"""

from __future__ import annotations

from repro_hooks import __version__

REPO_URL = "https://github.com/repro-hooks/repro-hooks"
REV = f"v{__version__}"  # the release tag: `rev:` in the config, `@rev` in the install lines
WHEEL = f"repro_hooks-{__version__}-py3-none-any.whl"

# The MLflow the docs' examples pin (the version the suite runs against). Replace it with the
# version your training uses (SQL stores) or your server's (HTTP, with mlflow-skinny).
MLFLOW_VERSION = "3.17.2"
MLFLOW_HOOK_DEPENDENCIES = f"['mlflow=={MLFLOW_VERSION}']"
# Which MLflow per tracking store, as docs/install.md's table says it, placeholders and all.
MLFLOW_HOOK_DEPENDENCIES_REST = "['mlflow-skinny==<your server's version>']"  # HTTP, Databricks
MLFLOW_HOOK_DEPENDENCIES_SQL = "['mlflow==<the version your training uses>']"


def requirement(extras: str = "") -> str:
    """repro-hooks as pip takes it from the git repository: `repro-hooks[dvc] @ git+...@v0.1.0`."""
    name = f"repro-hooks[{extras}]" if extras else "repro-hooks"
    return f"{name} @ git+{REPO_URL}@{REV}"


def pip_install(extras: str = "", *, before: str = "") -> str:
    """The install line, as a shell command (`before`: other packages installed with it)."""
    others = f"{before} " if before else ""
    return f"pip install {others}'{requirement(extras)}'"


def pip_install_wheel(extras: str = "") -> str:
    """The install line for a wheel built from a checkout (`python -m build`, in `dist/`)."""
    return f"pip install 'dist/{WHEEL}{f'[{extras}]' if extras else ''}'"


def _mlflow_hook(hook_id: str) -> str:
    return f"      - id: {hook_id}\n        additional_dependencies: {MLFLOW_HOOK_DEPENDENCIES}\n"


# The MLflow hooks of the config below, as docs/commands.md shows them on their own.
MLFLOW_HOOKS = "".join(
    _mlflow_hook(hook)
    for hook in ("mlflow-tag-commit", "mlflow-relink-rewritten", "mlflow-tag-merge")
)

# The README's `.pre-commit-config.yaml`: every hook, each with what it needs.
PRE_COMMIT_CONFIG = f"""\
minimum_pre_commit_version: 3.2.0
# the git hooks every clone needs: `repro-hooks setup` (or `pre-commit install`) installs these
default_install_hook_types: [pre-commit, post-commit, post-rewrite, post-merge, pre-push]
repos:
  - repo: {REPO_URL}
    rev: {REV}
    hooks:
      # commit stage: fast, never imports DVC or MLflow
      - id: block-large-files
        # args: [--max-size, 2MB]   # or configure [tool.repro-hooks] in pyproject.toml
      - id: require-dvc-files       # DVC files exact; runs without DVC installed
      # after the commit: link it to the MLflow run it produced (delivered in the background).
      # The MLflow your training uses, pinned (a sqlite store needs exactly that version);
      # for an HTTP server mlflow-skinny is enough: docs/install.md
{MLFLOW_HOOKS.rstrip()}
      # push: what lands in the remote's history
      - id: scan-pushed-commits
      - id: require-dvc-pushed
"""
