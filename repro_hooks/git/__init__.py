"""The git adapter: every question is one `git` process with `-z` output, never one per file."""

from repro_hooks.git.history import RawDiffParser, parse_raw_diff
from repro_hooks.git.objects import GITLINK_MODE, SYMLINK_MODE, Blob, ObjectInfo
from repro_hooks.git.process import EMPTY_TREE
from repro_hooks.git.repo import Git

__all__ = [
    "EMPTY_TREE",
    "GITLINK_MODE",
    "SYMLINK_MODE",
    "Blob",
    "Git",
    "ObjectInfo",
    "RawDiffParser",
    "parse_raw_diff",
]
