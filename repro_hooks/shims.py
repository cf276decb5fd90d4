"""Install the plain git hook shims (hooks/ in the source tree) into a repository.

A shim is ours when it holds SHIM_MARKER; anything else at a hook's path (a hand-written hook,
pre-commit's own hook) is never overwritten.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from repro_hooks.errors import ReproHooksError

SHIM_MARKER = "# repro-hooks shim"
SERVER_HOOKS = frozenset({"pre-receive"})
# Linking commits to MLflow runs needs MLflow and a tracking store: opt in with --hook.
OPT_IN_HOOKS = frozenset({"post-commit", "post-rewrite", "post-merge"})


def shim_dirs() -> list[Path]:
    """Where the shims can be: the source tree's hooks/ (checkouts, editable installs), then
    the data files a wheel installs under <prefix>/share/repro-hooks/hooks."""
    package = Path(__file__).resolve().parent
    return [package.parent / "hooks", Path(sys.prefix) / "share" / "repro-hooks" / "hooks"]


def available_shims(dirs: Iterable[Path] | None = None) -> dict[str, str]:
    """Hook name -> shim text, from the first directory that has any."""
    for directory in dirs if dirs is not None else shim_dirs():
        if directory.is_dir():
            shims = {
                p.name: p.read_text(encoding="utf-8")
                for p in sorted(directory.iterdir())
                if p.is_file() and not p.name.startswith(".")
            }
            if shims:
                return shims
    raise ReproHooksError(
        "the hook shims were not found (looked in: "
        + ", ".join(str(d) for d in (dirs if dirs is not None else shim_dirs()))
        + ")"
    )


def with_marker(text: str) -> str:
    """The shim text, with the marker line after the shebang if it lacks one."""
    if SHIM_MARKER in text:
        return text
    first, _, rest = text.partition("\n")
    if first.startswith("#!"):
        return f"{first}\n{SHIM_MARKER}: written by repro-hooks.\n{rest}"
    return f"{SHIM_MARKER}: written by repro-hooks.\n{text}"


def is_ours(path: Path) -> bool:
    try:
        return SHIM_MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def install_shims(hooks_dir: Path, shims: Mapping[str, str], names: Iterable[str]) -> list[Path]:
    """Write each named shim into hooks_dir (executable). Refuses, before writing anything, when
    any target exists and is not ours: ReproHooksError naming that path (exit 2)."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in shims]
    if unknown:
        raise ReproHooksError(
            f"no shim for hook {unknown[0]!r} (available: {', '.join(sorted(shims))})"
        )
    targets = [hooks_dir / name for name in names]
    for target in targets:
        if (target.exists() or target.is_symlink()) and not is_ours(target):
            raise ReproHooksError(
                f"{target}: a hook not written by repro-hooks is there; refusing to overwrite it "
                "(move it away, or call repro-hooks from it)"
            )
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name, target in zip(names, targets, strict=True):
        tmp = target.with_name(f".{name}.repro-hooks.tmp")
        tmp.write_text(with_marker(shims[name]), encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    return targets


def default_hooks(shims: Mapping[str, str], bare: bool) -> list[str]:
    """A bare repository gets the server hooks; a work tree the policy hooks (pre-commit,
    pre-push). The MLflow linking hooks (post-commit, post-rewrite, post-merge) are opt-in: without a
    tracking store they would print a line on every commit."""
    return sorted(n for n in shims if (n in SERVER_HOOKS) == bare and n not in OPT_IN_HOOKS)
