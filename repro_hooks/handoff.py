"""One push, one report: the plain pre-push shim hands its verdict to pre-commit's
`scan-pushed-commits`, so a finding is printed once.

The recommended set-up runs both at `git push`: pre-commit runs the shim first as
`.git/hooks/pre-push.legacy` (with `PRE_COMMIT_RUNNING_LEGACY=1`; it gets every pushed ref on
stdin), then its own hooks (which get only the first ref). Both scanned and printed the same
findings. Now the shim, when pre-commit runs it, records what it checked in the git directory;
the pre-commit hook that follows in the same `git push` reads the record and does not repeat a
scan the shim provably made: the same push (the same parent pre-commit process, by pid and
start time), the same remote, its tip among the refs the shim scanned, the same policy. The
shim's selection of each ref holds the hook's (it excludes the remote's old tip; the hook
excludes every remote tip). Anything else, a missing or stale record included: the hook scans
as ever. The shim always scans every ref, so no ref goes unchecked when pre-commit's hook is
missing or skipped, and pre-commit's hook still checks when the shim is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repro_hooks.policy.config import Policy

RECORD = Path("repro-hooks") / "pre-push-scan.json"  # under the (per-worktree) git directory
VERSION = 1


@dataclass(frozen=True)
class ShimScan:
    """What the pre-push shim checked in one push, and what it found."""

    parent: str  # the pre-commit process that ran the shim: "<pid>:<start time>"
    remote: tuple[str, ...]  # the hook's REMOTE and URL arguments
    tips: tuple[str, ...]  # the local sha of every pushed (not deleted) ref
    policy: str  # digest of the policy it applied
    findings: int


def policy_digest(policy: Policy) -> str:
    return hashlib.sha256(repr(policy).encode()).hexdigest()


def parent_identity() -> str:
    """Our parent process as `<pid>:<start time>` (the start time from Linux `/proc`, so a
    reused pid never matches; empty elsewhere)."""
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/stat", "rb") as f:
            stat = f.read()
        start = stat.rsplit(b")", 1)[1].split()[19].decode()  # field 22, after "(comm)"
    except (OSError, IndexError, UnicodeDecodeError):
        start = ""
    return f"{ppid}:{start}"


def under_pre_commit_legacy(env: Mapping[str, str]) -> bool:
    """Whether pre-commit runs us as `<hook>.legacy` (its migration mode)."""
    return env.get("PRE_COMMIT_RUNNING_LEGACY") == "1"


def clear(git_dir: Path) -> None:
    """Forget any earlier push's record (the shim calls this before it scans)."""
    with contextlib.suppress(OSError):
        (git_dir / RECORD).unlink()


def save(git_dir: Path, scan: ShimScan) -> None:
    """Record the shim's scan, atomically; a record that cannot be written is no record."""
    path = git_dir / RECORD
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": VERSION, **scan.__dict__}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def take(git_dir: Path) -> ShimScan | None:
    """The record of this push's shim scan, removed as it is read; None if there is none or
    it is not one this version wrote."""
    path = git_dir / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
        if data.pop("version") != VERSION:
            return None
        data["remote"], data["tips"] = tuple(data["remote"]), tuple(data["tips"])
        return ShimScan(**data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def covers(scan: ShimScan | None, env: Mapping[str, str], parent: str, policy: Policy) -> bool:
    """Whether the shim's scan, in this very push, holds what pre-commit's pre-push hook (its
    environment `env`) would scan under `policy`."""
    if scan is None:
        return False
    tip = env.get("PRE_COMMIT_TO_REF")
    remote = tuple(env.get(k, "") for k in ("PRE_COMMIT_REMOTE_NAME", "PRE_COMMIT_REMOTE_URL"))
    return (
        scan.parent == parent
        and bool(tip)
        and tip in scan.tips
        and scan.remote == remote
        and scan.policy == policy_digest(policy)
    )


def shim_scan(
    remote_args: Sequence[str], tips: Sequence[str], policy: Policy, findings: int
) -> ShimScan:
    remote = tuple(remote_args[:2]) + ("",) * (2 - len(remote_args[:2]))
    return ShimScan(parent_identity(), remote, tuple(tips), policy_digest(policy), findings)
