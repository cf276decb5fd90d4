"""Is the data that pushed commits reference in its DVC remote?

`referenced_outputs` (pure) turns the .dvc and dvc.lock blobs that commits introduce into the
outputs they reference. `missing_from_remotes` is the DVC adapter: it imports DVC lazily and asks
DVC's own remote machinery (`Repo.cloud.get_remote_odb(...).oids_exist(...)`), so every remote
type DVC supports works, with DVC's credentials and configuration.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro_hooks.dvc.files import (
    DvcFileError,
    Output,
    Stage,
    load_yaml,
    parse_dvc_file,
    parse_dvc_lock,
    parse_dvc_yaml,
)
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import SYMLINK_MODE, Blob, Git
from repro_hooks.report import Finding, display_path
from repro_hooks.snippets import pip_install

# (commit, dvc.lock path) -> the stages of the dvc.yaml beside it in that commit (None: none)
StageLookup = Callable[[str | None, str], Mapping[str, Stage] | None]

INSTALL_HINT = pip_install("dvc")


@dataclass(frozen=True)
class Referenced:
    """An output a commit references, as that commit's DVC file records it."""

    output: Output
    commit: str | None


@dataclass
class RemoteCheck:
    """What one remote lacks: per output, the missing object ids and whether the local cache
    has them (if it does not, `dvc push` cannot help)."""

    remote: str
    missing: dict[Referenced, list[str]] = field(default_factory=dict)
    not_cached: set[Referenced] = field(default_factory=set)
    unknown_listing: set[Referenced] = field(default_factory=set)


def _is_repo_import(content: bytes, file: str) -> bool:
    data: Any = load_yaml(content, file)
    deps = data.get("deps") if isinstance(data, Mapping) else None
    return isinstance(deps, list) and any(isinstance(d, Mapping) and "repo" in d for d in deps)


class CommitStages:
    """The `dvc.yaml` beside each `dvc.lock` of a commit, parsed as DVC resolves it (templating
    read from that same commit): only `dvc.yaml` says which stage outputs are `cache: false`
    (git keeps them; `dvc push` never sends them) and which `wdir` a stage's paths are relative
    to. Read in one `git cat-file --batch` for every lock given to `prefetch`."""

    def __init__(self, git: Git) -> None:
        from repro_hooks.dvc.commits import CommitFiles

        self.git = git
        self.files = CommitFiles(git)
        self.contents: dict[tuple[str, str], bytes | None] = {}
        self.parsed: dict[tuple[str, str], Mapping[str, Stage] | None] = {}

    @staticmethod
    def yaml_of(lock_path: str) -> str:
        return posixpath.join(posixpath.dirname(lock_path), "dvc.yaml")

    def prefetch(self, blobs: Iterable[Blob]) -> None:
        wanted = [
            (b.commit, self.yaml_of(display_path(b.path)))
            for b in blobs
            if b.commit and posixpath.basename(display_path(b.path)) == "dvc.lock"
        ]
        wanted = [k for k in dict.fromkeys(wanted) if k not in self.contents]
        if not wanted:
            return
        found = self.git.read_objects([f"{commit}:{path}" for commit, path in wanted])
        self.contents.update(zip(wanted, found, strict=True))

    def __call__(self, commit: str | None, lock_path: str) -> Mapping[str, Stage] | None:
        if commit is None:
            return None
        key = (commit, self.yaml_of(lock_path))
        if key not in self.parsed:
            if key not in self.contents:
                self.contents[key] = self.git.read_objects([f"{commit}:{key[1]}"])[0]
            content = self.contents[key]
            try:
                self.parsed[key] = (
                    None
                    if content is None
                    else parse_dvc_yaml(content, key[1], *self.files.sources(commit, key[1]))
                )
            except DvcFileError:
                self.parsed[key] = None  # reported as malformed on its own
        return self.parsed[key]


def _as_declared(out: Output, stages: Mapping[str, Stage] | None) -> Output:
    """A dvc.lock output with `cache` and `push` as its dvc.yaml entry declares them (dvc.lock
    records neither); unchanged (both True) when the entry is unknown."""
    stage = stages.get(out.stage or "") if stages else None
    for declared in stage.outs if stage is not None else ():
        if declared.path == out.path or declared.def_path == out.def_path:
            if (declared.cache, declared.push) == (out.cache, out.push):
                return out
            return dataclasses.replace(out, cache=declared.cache, push=declared.push)
    return out


def _recorded_outs(
    blob: Blob, contents: Mapping[str, bytes], stages: StageLookup | None
) -> list[Output] | None:
    """The outputs a .dvc or dvc.lock blob records, `cache` set as DVC sees it; None for any
    other file, a `dvc import` (its source repository has the data) or a malformed file (`scan`
    reports it)."""
    if blob.is_gitlink or blob.mode == SYMLINK_MODE or blob.sha not in contents:
        return None
    path = display_path(blob.path)
    name = posixpath.basename(path)
    content = contents[blob.sha]
    try:
        if name == "dvc.lock":
            declared = stages(blob.commit, path) if stages is not None else None
            wdirs = {n: st.wdir for n, st in declared.items()} if declared else None
            locked = parse_dvc_lock(content, path, wdirs).values()
            return [_as_declared(o, declared) for st in locked for o in st.outs]
        if name.endswith(".dvc") and name != ".dvc":
            if _is_repo_import(content, path):
                return None  # `dvc push` never pushes these: their source repository has them
            return parse_dvc_file(content, path).outs
    except DvcFileError:
        return None
    return None


def referenced_outputs(
    blobs: Sequence[Blob], contents: Mapping[str, bytes], stages: StageLookup | None = None
) -> list[Referenced]:
    """Outputs whose data DVC pushes (cached, `push` not false, a recorded hash, not a
    `dvc import` from another repository) recorded by the .dvc and dvc.lock blobs. A dvc.lock
    output is `cache: false` when its `dvc.yaml` says so: give `stages` (a `CommitStages`), or
    every dvc.lock output counts as cached. A malformed file is skipped here: `repro-hooks scan`
    reports it."""
    found: dict[tuple[str, str, str], Referenced] = {}
    for blob in blobs:
        for out in _recorded_outs(blob, contents, stages) or ():
            if out.hash_value and out.cache and out.push:
                key = (out.path, out.hash_value, out.remote or "")
                found.setdefault(key, Referenced(out, blob.commit))
    return list(found.values())


def uncached_outputs(
    blobs: Sequence[Blob], contents: Mapping[str, bytes], stages: StageLookup
) -> list[Referenced]:
    """The `cache: false` outputs (git keeps them, no DVC remote ever does) the .dvc and
    dvc.lock blobs record, each with the commit that recorded it."""
    found: dict[tuple[str, str | None], Referenced] = {}
    for blob in blobs:
        for out in _recorded_outs(blob, contents, stages) or ():
            if not out.cache:
                found.setdefault((out.path, blob.commit), Referenced(out, blob.commit))
    return list(found.values())


def unpushed_outputs(
    blobs: Sequence[Blob], contents: Mapping[str, bytes], stages: StageLookup | None = None
) -> list[Referenced]:
    """The cached outputs marked `push: false` (in a .dvc file, or in dvc.yaml for a dvc.lock
    output): `dvc push` never sends them, so no DVC remote holds them."""
    found: dict[tuple[str, str], Referenced] = {}
    for blob in blobs:
        for out in _recorded_outs(blob, contents, stages) or ():
            if out.hash_value and out.cache and not out.push:
                found.setdefault((out.path, out.hash_value), Referenced(out, blob.commit))
    return list(found.values())


def unpushed_findings(unpushed: Sequence[Referenced]) -> list[Finding]:
    """`push: false` data is in no DVC remote: one `dvc-push-false` finding per output (the
    deploy gate fails on them unless the protected branch's policy allows such data; the
    laptop hook check-dvc-remote prints them as notes)."""
    return [
        Finding(
            r.output.path,
            "dvc-push-false",
            f"push: false in {r.output.source}: its data ({r.output.hash_value}) is in no DVC "
            "remote",
            r.commit,
        )
        for r in sorted(unpushed, key=lambda r: (r.output.path, r.output.hash_value or ""))
    ]


def uncommitted_findings(git: Git, uncached: Sequence[Referenced]) -> list[Finding]:
    """A `cache: false` output must be in the commit that records it (git is its only store):
    one `git cat-file --batch-check` for all of them."""
    asked = [r for r in uncached if r.commit and "\n" not in r.output.path]
    if not asked:
        return []
    spec = "".join(f"{r.commit}:{r.output.path}\n" for r in asked)
    out = git.run(
        "cat-file",
        "--batch-check=%(objecttype)",
        input=spec.encode("utf-8", "surrogateescape"),
    )
    answers = out.decode("utf-8", "replace").split("\n")
    findings = []
    for ref, answer in zip(asked, answers, strict=False):
        if answer in ("blob", "tree"):
            continue
        assert ref.commit is not None
        findings.append(
            Finding(
                ref.output.path,
                "uncommitted-output",
                f"cache: false output recorded in {ref.output.source} is not in commit "
                f"{ref.commit[:12]} (git keeps it, no DVC remote does)",
                ref.commit,
            )
        )
    return findings


def uncommitted_hint(findings: Sequence[Finding]) -> str:
    if not any(f.rule == "uncommitted-output" for f in findings):
        return ""
    return (
        "A cache: false output lives in git: commit it with the dvc.lock that records it "
        "(git add <path> && git commit), or make it cache: true in dvc.yaml and dvc push it."
    )


def _read_listing(odb: Any, oid: str) -> list[str] | None:
    """The file object ids a `.dir` object lists, or None if this object database lacks it."""
    try:
        with odb.fs.open(odb.oid_to_path(oid), "r") as fh:
            entries = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    return [e["md5"] for e in entries if isinstance(e, dict) and isinstance(e.get("md5"), str)]


def _import_dvc_repo() -> Any:
    try:
        from dvc.repo import Repo
    except ImportError:
        raise ReproHooksError(
            f"check-dvc-remote needs DVC, which is not installed ({INSTALL_HINT})"
        ) from None
    return Repo


def require_dvc() -> None:
    """Raise (one line, exit 2) when DVC cannot be imported."""
    _import_dvc_repo()


PROGRESS_SLICE = 64  # outputs per remote query when a progress bar is shown


def missing_from_remotes(
    root: Path,
    referenced: Iterable[Referenced],
    on_outputs: Callable[[int], None] | None = None,
) -> list[RemoteCheck]:
    """Ask each output's DVC remote (its `remote:`, else the default) which objects it lacks:
    file objects, and for directories the `.dir` object and every file it lists (the listing
    is read from the local DVC cache, else from the remote). `on_outputs(n)` hears of every n
    more outputs checked (progress)."""
    referenced = list(referenced)
    if not referenced:
        return []
    repo_cls = _import_dvc_repo()
    from dvc.exceptions import DvcException

    try:
        repo = repo_cls(str(root))
    except DvcException as exc:
        raise ReproHooksError(f"{root}: cannot open the DVC repository: {exc}") from None
    try:
        default = repo.config["core"].get("remote")
        groups: dict[tuple[str | None, str], list[Referenced]] = {}
        for ref in referenced:
            groups.setdefault((ref.output.remote, ref.output.algorithm), []).append(ref)
        checks: dict[str, RemoteCheck] = {}
        for (name, algorithm), refs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            remote_name = name or default
            if not remote_name:
                raise ReproHooksError(
                    f"{refs[0].output.source}: no DVC remote for {refs[0].output.path!r} "
                    "(set a default: dvc remote add -d <name> <url>)"
                )
            try:
                odb = repo.cloud.get_remote_odb(
                    remote_name, command="check-dvc-remote", hash_name=algorithm
                )
            except DvcException as exc:
                raise ReproHooksError(f"DVC remote {remote_name!r}: {exc}") from None
            local = repo.cache.legacy if algorithm == "md5-dos2unix" else repo.cache.local
            check = checks.setdefault(remote_name, RemoteCheck(remote_name))
            if on_outputs is None:
                _check_group(check, refs, odb, local)
                continue
            # with progress (a terminal): ask in slices, so the bar moves as answers come
            for start in range(0, len(refs), PROGRESS_SLICE):
                _check_group(check, refs[start : start + PROGRESS_SLICE], odb, local)
                on_outputs(len(refs[start : start + PROGRESS_SLICE]))
        return [c for c in checks.values() if c.missing or c.unknown_listing]
    finally:
        repo.close()


def _check_group(check: RemoteCheck, refs: list[Referenced], odb: Any, local: Any) -> None:
    wanted: dict[Referenced, list[str]] = {}
    for ref in refs:
        oid = ref.output.hash_value
        assert oid is not None
        oids = [oid]
        if ref.output.is_dir:
            listing = _read_listing(local, oid)
            if listing is None:
                listing = _read_listing(odb, oid)
            if listing is None:
                check.unknown_listing.add(ref)
            else:
                oids.extend(listing)
        wanted[ref] = list(dict.fromkeys(oids))
    every = {oid for oids in wanted.values() for oid in oids}
    present = set(odb.oids_exist(every)) if every else set()
    for ref, oids in wanted.items():
        missing = [oid for oid in oids if oid not in present]
        if missing:
            check.missing[ref] = missing
            if not all(local.exists(oid) for oid in missing):
                check.not_cached.add(ref)


def remote_findings(checks: Sequence[RemoteCheck]) -> list[Finding]:
    findings = []
    for check in checks:
        where = f"DVC remote {check.remote!r}"
        for ref in sorted(set(check.missing) | check.unknown_listing, key=lambda r: r.output.path):
            out = ref.output
            missing = check.missing.get(ref, [])
            if ref in check.unknown_listing and not missing:
                what = (
                    f"directory listing {out.hash_value} is in neither the local cache nor {where}"
                )
            elif out.is_dir:
                files = len(missing) - (1 if out.hash_value in missing else 0)
                what = f"{files} file(s) of the directory {out.hash_value} not in {where}"
                if out.hash_value in missing:
                    what += " (nor its listing)"
            else:
                what = f"{out.hash_value} not in {where}"
            if ref in check.not_cached:
                what += "; not in the local DVC cache either"
            findings.append(
                Finding(
                    out.path, "dvc-not-pushed", f"{what} (recorded in {out.source})", ref.commit
                )
            )
    return findings


def push_hint(checks: Sequence[RemoteCheck], head: str | None = None) -> str:
    """How to push what the checks found missing. `dvc push` sends what the checked-out DVC
    files reference, so it is enough only when every missing object is recorded by `head` (the
    checked-out commit); otherwise `dvc push --all-commits` (DVC's CLI has no way to name
    revisions; it uploads only what the remote lacks)."""
    if not checks:
        return ""
    remotes = ", ".join(sorted(repr(c.remote) for c in checks))
    commits = {r.commit for c in checks for r in (*c.missing, *c.unknown_listing)}
    only_head = head is not None and commits <= {head}
    lines = [
        f"Push the data to {remotes} before the commits that reference it:",
        "  dvc push" if only_head else "  dvc push --all-commits",
        "(DVC sends each output to its `remote:`, else to the default remote"
        + (
            ")."
            if only_head
            else f"; the data of {len(commits)} commit(s) is missing, and a plain `dvc push` "
            "sends only the checked-out commit's)."
        ),
    ]
    if any(c.not_cached or c.unknown_listing for c in checks):
        lines.append(
            "Data missing from the local cache too must come from whoever produced it "
            "(dvc add / dvc commit / dvc repro on their machine, then dvc push)."
        )
    return "\n".join(lines)
