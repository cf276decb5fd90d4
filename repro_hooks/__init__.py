"""repro-hooks: git and pre-commit hooks that keep ML work reproducible."""

__version__ = "0.1.0"  # the one place the version lives (pyproject.toml reads it)
