"""Attested mode: a signed statement that binds a run and the bytes it made to a commit and
its data, which a tag writer cannot forge.

The statement is an in-toto Statement v1: `subject` = every file the run made (its artifacts and
logged models, named as in deploy/artifacts.py) with its sha256; `predicateType`
https://repro-hooks.dev/link/v1; `predicate` = the run id, the tracking server's host, the commit,
the repository URL, the DVC outputs' hashes (`materials`), the evidence kind and the stage. The
link delivery writes it at link time, in the clone that trained, from the stamp's local record
(which no tag writer can edit), and signs it with `ssh-keygen -Y sign -n repro-hooks` (git's own
SSH signing; no Python dependency). Statement and signature are run artifacts
(`repro_hooks/attestation.json` and `.sig`); the `repro_hooks.attestation` tag names them.

The gate verifies the signature against the `allowed_signers` file of the protected branch's
tree (`ssh-keygen -Y find-principals`, then `-Y verify` for that principal), then checks the
statement against the run, its commit and the version's downloaded bytes.

Three parts: the statement (pure: build, parse, compare), ssh-keygen (the one adapter that
shells out), and publishing at link time (through the link's tracker, tracking/port.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.git import Git
    from repro_hooks.policy.config import Config
    from repro_hooks.tracking.port import Tracker

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://repro-hooks.dev/link/v1"
NAMESPACE = "repro-hooks"  # ssh-keygen's signature namespace: a git commit signature never fits
STATEMENT_PATH = "repro_hooks/attestation.json"
SIGNATURE_PATH = STATEMENT_PATH + ".sig"
ATTESTATION_TAG = "repro_hooks.attestation"
MAX_STATEMENT = 8 << 20
MAX_SIGNATURE = 64 << 10
MAX_SIGNERS_FILE = 1 << 20
SSH_TIMEOUT = 30.0


class StatementError(Exception):
    """A statement that is not ours or not well formed (the message says what)."""


class SignatureError(Exception):
    """A signature that does not verify against the trusted signers (the message says why)."""


# ---- the statement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    run_id: str
    commit: str
    repo_url: str = ""
    tracking_host: str = ""
    evidence: str = ""
    stage: str = ""
    materials: Mapping[str, str] = field(default_factory=dict)  # DVC output path -> hash
    subjects: Mapping[str, str] = field(default_factory=dict)  # file name -> sha256

    def to_json(self) -> bytes:
        """Canonical bytes: sorted keys, no spaces (what is signed)."""
        doc = {
            "_type": STATEMENT_TYPE,
            "subject": [
                {"name": n, "digest": {"sha256": d}} for n, d in sorted(self.subjects.items())
            ],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "run": {"id": self.run_id, "trackingHost": self.tracking_host},
                "commit": self.commit,
                "repoUrl": self.repo_url,
                "evidence": self.evidence,
                "stage": self.stage,
                "materials": [
                    {"path": p, "digest": {"md5": h}} for p, h in sorted(self.materials.items())
                ],
            },
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def tracking_host(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.hostname or parts.scheme or "local"


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise StatementError(f"{what} is not a string")
    return value


def _digests(items: Any, key: str, algo: str, what: str) -> dict[str, str]:
    if not isinstance(items, list):
        raise StatementError(f"{what} is not a list")
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), dict):
            raise StatementError(f"{what}: an entry without a digest")
        name = _str(item.get(key), f"{what} {key}")
        value = _str(item["digest"].get(algo), f"{what} {name}'s {algo}")
        if name in out:
            raise StatementError(f"{what}: {name} listed twice")
        out[name] = value
    return out


def parse_statement(data: bytes) -> Statement:
    """The statement in `data`; StatementError for anything but our statement type."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StatementError(f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise StatementError(f"not an in-toto statement (_type is not {STATEMENT_TYPE})")
    if doc.get("predicateType") != PREDICATE_TYPE:
        raise StatementError(f"predicateType {doc.get('predicateType')!r}, not {PREDICATE_TYPE}")
    pred = doc.get("predicate")
    if not isinstance(pred, dict) or not isinstance(pred.get("run"), dict):
        raise StatementError("predicate without a run")
    return Statement(
        run_id=_str(pred["run"].get("id"), "predicate.run.id"),
        tracking_host=_str(pred["run"].get("trackingHost", ""), "predicate.run.trackingHost"),
        commit=_str(pred.get("commit"), "predicate.commit"),
        repo_url=_str(pred.get("repoUrl", ""), "predicate.repoUrl"),
        evidence=_str(pred.get("evidence", ""), "predicate.evidence"),
        stage=_str(pred.get("stage", ""), "predicate.stage"),
        materials=_digests(pred.get("materials", []), "path", "md5", "predicate.materials"),
        subjects=_digests(doc.get("subject"), "name", "sha256", "subject"),
    )


def statement_problems(
    statement: Statement,
    run_id: str,
    run_tags: Mapping[str, str],
    outputs: Iterable[tuple[str, str]] | None,
) -> list[str]:
    """What differs between a (verified) statement and the run, its link tags and what its
    commit records (`outputs`: (path, hash); None when the commit is not here)."""
    from repro_hooks.links.inputs import STAGE_TAG
    from repro_hooks.links.record import COMMIT_TAG, EVIDENCE_TAG, REPO_URL_TAG

    problems = []
    if statement.run_id != run_id:
        problems.append(f"the statement is about run {statement.run_id}, not run {run_id}")
    pairs = [
        (COMMIT_TAG, statement.commit),
        (REPO_URL_TAG, statement.repo_url),
        (EVIDENCE_TAG, statement.evidence),
        (STAGE_TAG, statement.stage),
    ]
    for tag, signed in pairs:
        have = run_tags.get(tag, "")
        if have != signed:
            problems.append(
                f"tag {tag}: the run has {have or 'none'!r}, the signed statement {signed or 'none'!r}"
            )
    if outputs is not None:
        recorded = dict(outputs)
        for path in sorted(set(recorded) | set(statement.materials)):
            in_statement = statement.materials.get(path)
            in_commit = recorded.get(path)
            if in_statement != in_commit:
                problems.append(
                    f"{path}: the commit records {in_commit or 'no such output'}, the signed "
                    f"statement {in_statement or 'no such output'}"
                )
    return problems


# ---- ssh-keygen -------------------------------------------------------------------------------


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise ReproHooksError(
            "ssh-keygen: not found on PATH (OpenSSH 8.2 or later signs and verifies attestations)"
        )
    return found


def _run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            args,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=SSH_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ReproHooksError(f"ssh-keygen: no answer within {SSH_TIMEOUT:g}s") from None
    except OSError as exc:
        raise ReproHooksError(f"ssh-keygen: {exc.strerror or exc}") from None


def _first_line(data: bytes) -> str:
    lines = [x for x in data.decode("utf-8", "replace").splitlines() if x.strip()]
    return lines[-1].strip()[:200] if lines else "no message"


def sign(data: bytes, key: str) -> bytes:
    """An SSH signature of `data` in our namespace with the private key file `key` (or a
    public key whose private half the ssh-agent holds). ReproHooksError with one line."""
    keygen = _ssh_keygen()
    path = Path(os.path.expanduser(key))
    if not os.access(path, os.R_OK) or not path.is_file():
        raise ReproHooksError(f"{key}: signing key not readable")
    with tempfile.TemporaryDirectory(prefix="repro-hooks-sign-") as tmp:
        message = Path(tmp) / "statement.json"
        message.write_bytes(data)
        proc = _run([keygen, "-Y", "sign", "-n", NAMESPACE, "-f", str(path), str(message)])
        sig = Path(tmp) / "statement.json.sig"
        if proc.returncode != 0 or not sig.is_file():
            raise ReproHooksError(f"{key}: ssh-keygen could not sign: {_first_line(proc.stderr)}")
        return sig.read_bytes()


def signer_of(data: bytes, signature: bytes, allowed_signers: bytes, where: str) -> str:
    """The principal of `allowed_signers` whose key made `signature` over `data` in our
    namespace; SignatureError when none did. `where` names the allowed_signers file."""
    keygen = _ssh_keygen()
    if len(signature) > MAX_SIGNATURE or b"BEGIN SSH SIGNATURE" not in signature:
        raise SignatureError("the signature is not an SSH signature")
    with tempfile.TemporaryDirectory(prefix="repro-hooks-verify-") as tmp:
        signers = Path(tmp) / "allowed_signers"
        signers.write_bytes(allowed_signers)
        sig = Path(tmp) / "statement.sig"
        sig.write_bytes(signature)
        found = _run([keygen, "-Y", "find-principals", "-s", str(sig), "-f", str(signers)])
        principals = (
            found.stdout.decode("utf-8", "replace").split() if found.returncode == 0 else []
        )
        if not principals:
            raise SignatureError(f"signed by a key that is not in {where}")
        for principal in principals:
            proc = _run(
                [
                    keygen,
                    "-Y",
                    "verify",
                    "-f",
                    str(signers),
                    "-I",
                    principal,
                    "-n",
                    NAMESPACE,
                    "-s",
                    str(sig),
                ],
                stdin=data,
            )
            if proc.returncode == 0:
                return principal
        raise SignatureError(
            f"the signature of {principals[0]} ({where}) does not verify: "
            f"{_first_line(proc.stderr + proc.stdout)}"
        )


# ---- publishing at link time -----------------------------------------------------------------


def signing_key(git: Git, config: Config | None) -> str | None:
    """`[tool.repro-hooks.attest] signing-key`, else git's own SSH signing key
    (`user.signingkey` with `gpg.format=ssh`), else None (statements go unsigned)."""
    key = getattr(getattr(config, "attest", None), "signing_key", None)
    if key:
        return str(key)
    fmt = git.try_run("config", "--get", "gpg.format")
    if fmt is None or fmt.decode().strip() != "ssh":
        return None
    value = git.try_run("config", "--get", "user.signingkey")
    text = value.decode().strip() if value else ""
    if not text or text.startswith("key::"):
        return None  # a literal key needs git's own agent handling: not supported here
    return text


def publish_statement(
    tracker: Tracker,
    git: Git,
    run_id: str,
    tags: Mapping[str, str],
    existing: Mapping[str, str],
    outputs: Iterable[tuple[str, str]],
    record: Mapping[str, Any] | None,
    tracking_uri: str,
) -> str:
    """Write the statement (signed when a key is configured) on the run, from the stamp's
    local record of the run's files; a note for the delivery log ("" when there is no record
    of this run's files: an unstamped run, or one whose end state has no digests)."""
    from repro_hooks.links.inputs import STAGE_TAG
    from repro_hooks.links.stamp import ARTIFACTS_KEY

    files = record.get(ARTIFACTS_KEY) if record else None
    if not isinstance(files, dict) or files.get("run") != run_id:
        return ""
    digests = files.get("files")
    if not isinstance(digests, dict):
        return ""
    from repro_hooks.links.record import COMMIT_TAG, EVIDENCE_TAG, REPO_URL_TAG

    statement = Statement(
        run_id=run_id,
        commit=tags.get(COMMIT_TAG, ""),
        repo_url=tags.get(REPO_URL_TAG, ""),
        tracking_host=tracking_host(tracking_uri),
        evidence=tags.get(EVIDENCE_TAG, ""),
        stage=existing.get(STAGE_TAG, ""),
        materials=dict(outputs),
        subjects={str(k): str(v) for k, v in digests.items()},
    )
    data = statement.to_json()
    from repro_hooks.policy.config import load_config

    signature = None
    note = ""
    try:
        key = signing_key(git, load_config(Path(git.root), None) if git.root else None)
        if key is not None:
            signature = sign(data, key)
    except ReproHooksError as exc:
        note = f"; the statement is unsigned: {exc}"
    with tempfile.TemporaryDirectory(prefix="repro-hooks-statement-") as tmp:
        folder = Path(tmp) / "repro_hooks"
        folder.mkdir()
        (folder / "attestation.json").write_bytes(data)
        # always written (empty when unsigned): an earlier signature never outlives its statement
        (folder / "attestation.json.sig").write_bytes(signature or b"")
        tracker.log_artifact(run_id, folder / "attestation.json", "repro_hooks")
        tracker.log_artifact(run_id, folder / "attestation.json.sig", "repro_hooks")
    tracker.set_tags(run_id, {ATTESTATION_TAG: STATEMENT_PATH})
    if signature is not None:
        return f"; {len(digests)} file digest(s) attested (signed)"
    return f"; {len(digests)} file digest(s) recorded (statement unsigned){note}"
