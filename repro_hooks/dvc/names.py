"""DVC's own file names. Standard library only: the history scan asks this of every blob it
reads and the run stamp of every changed path inside a training process, neither of which may
pay for importing PyYAML or DVC (repro_hooks.dvc.files imports PyYAML)."""

from __future__ import annotations

import posixpath


def is_dvc_file(path: str) -> bool:
    """Whether a repository-relative POSIX path names a `.dvc` file, a `dvc.yaml` or a
    `dvc.lock` (case-sensitive, as DVC reads them). A file named just `.dvc` is not one: DVC
    keeps its directory under that name, and a `.dvc` file needs a name before the suffix."""
    name = posixpath.basename(path)
    return (name.endswith(".dvc") and name != ".dvc") or name in ("dvc.yaml", "dvc.lock")
