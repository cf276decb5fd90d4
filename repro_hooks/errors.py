"""Errors a user can cause. Each becomes one line and exit code 2, never a traceback."""

from __future__ import annotations


class ReproHooksError(Exception):
    """A usage, configuration or environment problem: reported as one line, exit 2."""

    exit_code = 2


class ConfigError(ReproHooksError):
    """A bad configuration value: names the file and the key."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


class GitError(ReproHooksError):
    """git failed or the directory is not a usable repository."""
