"""The bytes: which files a model version serves, and the digest of every file a run made.

A version's `source` must be its run's own artifact: `runs:/<run>/<path>`, the run's
`artifact_uri` + `/<path>`, or an MLflow 3 logged model of that run (`models:/m-<id>`, whose
`source_run_id` is the run). `resolve_source` says which (or why not), the artifact repository
that MLflow itself serves the version from is downloaded and every file is digested.

Files are named the same way everywhere (the stamp's record, the signed statement, the
registry record): `runs:/<run id>/<artifact path>` and `models:/<model id>/<path>`. Our own
artifacts under `repro_hooks/` (the statement and its signature) are never the run's bytes.

Every read goes through the model registry's port (tracking/port.py ModelRegistry).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repro_hooks.deploy.gate import ByteFacts, VersionFacts
    from repro_hooks.tracking.port import ArtifactEntry, ModelRegistry

OWN_DIR = "repro_hooks"  # our artifacts on a run: the statement and its signature
PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
CHUNK = 1 << 20
MAX_FILES = 100_000


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    md5: str
    size: int


@dataclass(frozen=True)
class Served:
    """Where a version's files come from: `path` in the run's artifacts ("run"), or in a
    logged model of the run ("model", `owner` = its model id); `root` is that artifact
    location."""

    kind: str
    owner: str
    path: str
    root: str

    @property
    def prefix(self) -> str:
        base = f"runs:/{self.owner}" if self.kind == "run" else f"models:/{self.owner}"
        return f"{base}/{self.path}" if self.path else base


def digest_file(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileDigest(sha.hexdigest(), md5.hexdigest(), size)


def joined(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if rel else prefix


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    saved = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = saved


def download_digests(registry: ModelRegistry, root: str, path: str) -> dict[str, FileDigest]:
    """Download `path` (a file or a directory; "" for everything) of the artifact location
    `root` with the tracker's own artifact access, one file at a time into a temporary
    directory, and digest it: {path relative to `path`: digest}. One file at a time: MLflow's
    repositories' thread pools refuse work at interpreter exit, where the stamp records."""
    found: dict[str, FileDigest] = {}
    with _quiet_downloads(), tempfile.TemporaryDirectory(prefix="repro-hooks-bytes-") as tmp:
        for remote in _files(registry, root, path):
            rel = remote[len(path) :].lstrip("/") if path else remote
            local = Path(tmp) / "file"
            registry.download(root, remote, local)
            found[rel] = digest_file(local)
            local.unlink()
    return found


def _files(registry: ModelRegistry, root: str, path: str) -> list[str]:
    """Every file at `path` of an artifact location (itself when it is a file)."""
    listing = registry.location_listing(root, path or None)
    if path and not listing:
        parent = path.rpartition("/")[0]
        siblings = {e.path: e for e in registry.location_listing(root, parent or None)}
        entry = siblings.get(path)
        return [path] if entry is not None and not entry.is_dir else []
    if path and len(listing) == 1 and listing[0].path == path and not listing[0].is_dir:
        return [path]
    out: list[str] = []
    for entry in listing:
        if entry.is_dir:
            out.extend(_files(registry, root, entry.path))
        else:
            out.append(entry.path)
    if len(out) > MAX_FILES:
        raise ValueError(f"more than {MAX_FILES} files under {path or 'the root'}")
    return out


def _listing(registry: ModelRegistry, run_id: str, path: str | None = None) -> list[ArtifactEntry]:
    return registry.list_artifacts(run_id, path)


def run_digests(registry: ModelRegistry, run_id: str) -> dict[str, str]:
    """The sha256 of every file the run wrote: its artifacts (but `repro_hooks/`) and the
    files of every MLflow 3 logged model whose source run it is. Names as in the module doc."""
    run = registry.run(run_id)
    found: dict[str, str] = {}
    for entry in _listing(registry, run_id):
        if entry.path == OWN_DIR or entry.path.startswith(OWN_DIR + "/"):
            continue
        for rel, digest in download_digests(registry, run.artifact_uri, entry.path).items():
            found[joined(f"runs:/{run_id}/{entry.path}", rel)] = digest.sha256
    for model in registry.logged_models_of_run(run_id, run.experiment_id or ""):
        for rel, digest in download_digests(registry, model.artifact_location, "").items():
            found[joined(f"models:/{model.model_id}", rel)] = digest.sha256
    return found


# ---- the version's source --------------------------------------------------------------------


class SourceRefused(Exception):
    """The version's source is not its run's own artifact (the message says why)."""


def _clean_path(path: str) -> str | None:
    path = path.strip("/")
    if not path:
        return ""
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return path


def resolve_source(
    registry: ModelRegistry, source: str, run_id: str, artifact_uri: str, experiment_id: str | None
) -> Served:
    """Which of the run's files the version serves; SourceRefused when it serves anything
    else (another run's artifacts, a bucket, a workspace path)."""
    if source.startswith("models:/m-"):
        model_id, _, rest = source[len("models:/") :].partition("/")
        model = registry.logged_model(model_id)
        if model is None:
            raise SourceRefused(f"source {source}: no logged model {model_id}")
        if model.source_run_id != run_id:
            raise SourceRefused(
                f"source {source}: logged model {model_id} comes from run "
                f"{model.source_run_id or 'none'}, not from run {run_id}"
            )
        sub = _clean_path(rest)
        if sub is None:
            raise SourceRefused(f"source {source}: not a plain path")
        return Served("model", model_id, sub, model.artifact_location)
    base = artifact_uri.rstrip("/")
    if source.startswith("runs:/"):
        owner, _, rest = source[len("runs:/") :].partition("/")
        if owner != run_id:
            raise SourceRefused(f"source {source}: another run's artifacts, not run {run_id}'s")
        sub = _clean_path(rest)
    elif base and (source == base or source.startswith(base + "/")):
        sub = _clean_path(source[len(base) :])
    else:
        raise SourceRefused(
            f"source {source}: not an artifact of run {run_id} (runs:/{run_id}/..., its "
            "artifact location) nor a logged model of it"
        )
    if sub is None:
        raise SourceRefused(f"source {source}: not a plain path")
    if sub and not _listing(registry, run_id, sub) and experiment_id is not None:
        # MLflow 3: runs:/<run>/<name> serves the run's logged model of that name
        name, _, rest = sub.partition("/")
        for model in registry.logged_models_of_run(run_id, experiment_id):
            if model.name == name:
                return Served("model", model.model_id, rest, model.artifact_location)
    return Served("run", run_id, sub, artifact_uri)


def served_digests(registry: ModelRegistry, served: Served) -> dict[str, FileDigest]:
    """{name: digest} of every file the version serves (named as the run's files are)."""
    out = {}
    for rel, digest in download_digests(registry, served.root, served.path).items():
        name = joined(served.prefix, rel)
        if served.kind == "run" and _own(name, served.owner):
            continue
        out[name] = digest
    return out


def _own(name: str, run_id: str) -> bool:
    return name.startswith(f"runs:/{run_id}/{OWN_DIR}/")


def artifact_path(name: str) -> str:
    """The path of a named file inside its run's (or logged model's) artifacts: what a DVC
    output path is compared with."""
    rest = name.split(":/", 1)[-1]
    return rest.partition("/")[2]


def compact_digests(digests: Mapping[str, str], limit: int = 5000) -> str:
    """`path=sha256[:16]` pairs, sorted, within `limit` characters (the registry record)."""
    parts = [f"{artifact_path(n) or n}={d[:16]}" for n, d in sorted(digests.items())]
    text = ";".join(parts)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for part in parts:
        if used + len(part) + 1 > limit - 40:
            break
        kept.append(part)
        used += len(part) + 1
    return ";".join(kept) + f";...and {len(parts) - len(kept)} more"


# ---- one version: its files and the evidence of what its run made -----------------------------


def _own_files(registry: ModelRegistry, run_id: str, artifact_uri: str) -> dict[str, bytes]:
    """The run's statement and signature ({artifact path: bytes}), bounded in size."""
    from repro_hooks.deploy.attest import MAX_STATEMENT, SIGNATURE_PATH, STATEMENT_PATH

    listed = {e.path: e for e in _listing(registry, run_id, OWN_DIR) if not e.is_dir}
    wanted = [p for p in (STATEMENT_PATH, SIGNATURE_PATH) if p in listed]
    if not wanted:
        return {}
    out: dict[str, bytes] = {}
    with _quiet_downloads(), tempfile.TemporaryDirectory(prefix="repro-hooks-own-") as tmp:
        for path in wanted:
            size = listed[path].file_size
            if size is not None and size > MAX_STATEMENT:
                out[path] = b""  # refused unread: reported as malformed
                continue
            local = Path(tmp) / path.rpartition("/")[2]
            registry.download(artifact_uri, path, local)
            out[path] = local.read_bytes()[: MAX_STATEMENT + 1]
    return out


def version_bytes(
    registry: ModelRegistry,
    facts: VersionFacts,
    signers: Callable[[], tuple[bytes, str] | None],
    required: bool,
    outputs: list[tuple[str, str]] | None,
) -> ByteFacts:
    """deploy.gate.ByteFacts for one version (`facts`: a VersionFacts of an active run).
    `signers()` gives (allowed_signers bytes, where) from the protected branch, or None."""
    from repro_hooks.deploy import attest
    from repro_hooks.deploy.gate import ATTESTED, RECORDED, ByteFacts, ServedFile

    run_id = facts.run_id or ""
    try:
        served = resolve_source(
            registry, facts.source, run_id, facts.artifact_uri, facts.experiment_id
        )
    except SourceRefused as exc:
        return ByteFacts(facts.source, refused=str(exc), required=required)
    files = served_digests(registry, served)
    base: dict[str, Any] = {
        "source": facts.source,
        "prefix": served.prefix,
        "served": tuple(ServedFile(n, d.sha256, d.md5) for n, d in sorted(files.items())),
        "required": required,
    }
    own = _own_files(registry, run_id, facts.artifact_uri)
    data = own.get(attest.STATEMENT_PATH)
    if data is None:
        return ByteFacts(**base)
    try:
        if len(data) > attest.MAX_STATEMENT:
            raise attest.StatementError("larger than a statement may be")
        statement = attest.parse_statement(data)
    except attest.StatementError as exc:
        return ByteFacts(
            **base, attestation="invalid", problems=(f"{attest.STATEMENT_PATH}: {exc}",)
        )
    problems = tuple(attest.statement_problems(statement, run_id, facts.run_tags, outputs))
    recorded = statement.subjects if statement.run_id == run_id else None
    signature = own.get(attest.SIGNATURE_PATH) or b""
    if not signature.strip():
        return ByteFacts(
            **base,
            recorded=recorded,
            level=RECORDED,
            attestation="unsigned",
            problems=problems,
        )
    trusted = signers()
    if trusted is None:
        if required:
            return ByteFacts(
                **base,
                attestation="invalid",
                problems=(
                    "the protected branch has no allowed_signers file: nobody is trusted to sign",
                ),
            )
        return ByteFacts(
            **base,
            recorded=recorded,
            level=RECORDED,
            attestation="unverifiable",
            problems=problems,
        )
    content, where = trusted
    try:
        principal = attest.signer_of(data, signature, content, where)
    except attest.SignatureError as exc:
        return ByteFacts(
            **base, attestation="invalid", problems=(f"{attest.SIGNATURE_PATH}: {exc}",)
        )
    return ByteFacts(
        **base,
        recorded=recorded,
        level=ATTESTED,
        signer=principal,
        attestation="valid",
        problems=problems,
    )
