"""The policy in force at a revision: its own pyproject.toml's `[tool.repro-hooks]`.

The deploy gate reads `[tool.repro-hooks.deploy]` from the protected branch's tip (what review
let in), and `scan --range A..B` reads A's: never the change being judged, which could otherwise
weaken the rules that judge it.
"""

from __future__ import annotations

from repro_hooks.errors import ConfigError, ReproHooksError
from repro_hooks.git import Git
from repro_hooks.policy.config import Config, parse_pyproject

# A pyproject.toml is a few KiB; a larger blob is refused before it is read into memory.
MAX_PYPROJECT = 1 << 20


def config_at(git: Git, rev: str, what: str = "revision") -> Config:
    """The configuration in `rev`'s pyproject.toml (built-in defaults when it has none).

    Raises ReproHooksError naming `what` for an unknown revision, ConfigError naming
    `rev:pyproject.toml` for a bad or oversized file."""
    if rev.startswith("-"):
        raise ReproHooksError(f"{what}: bad revision {rev!r}")
    if (
        git.try_run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
        is None
    ):
        raise ReproHooksError(f"{what}: unknown revision {rev!r}")
    display = f"{rev}:pyproject.toml"
    content, size = git.small_blob(display, MAX_PYPROJECT)
    if content is None and size:
        raise ConfigError(display, "file", f"{size} bytes, more than a pyproject.toml needs")
    return Config() if content is None else parse_pyproject(content, display)
