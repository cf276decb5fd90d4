"""The deploy gate's core: is a model version reproducible? Pure checks over plain data.

A model version passes when its run is linked to a commit (`git.commit`), that commit is in
this repository and on the protected branch, the run's `dvc.*` tags and `dvc.fingerprint` are
what the commit records, every DVC object the commit references is in its DVC remote, and the
commit's tree passes the repository policy. The facts come from the model registry's port
(tracking/port.py) and the commit evidence (deploy/evidence.py); this module asks nobody.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from repro_hooks.errors import ReproHooksError
from repro_hooks.links.record import (
    BRANCH_TAG,
    COMMIT_TAG,
    DVC_PREFIX,
    EVIDENCE_TAG,
    FINGERPRINT_TAG,
    REPO_URL_TAG,
    RecordedOutput,
    dvc_tag_key,
    fingerprint,
)
from repro_hooks.report import Finding

DEFAULT_VERDICT_TAG = "pre_deploy_checks"
PASSED = "PASSED"
FAILED = "FAILED"
MAX_REASON = 500
_SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

# Rule ids (declared in repro_hooks.rules): run-missing, run-unlinked, commit-missing,
# commit-unprotected, data-mismatch; and the policy and DVC-remote rules reused as they are.


# ---- model URIs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """`models:/<name>/<version>` or `models:/<name>@<alias>`."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version}"


def parse_model_uri(text: str) -> ModelRef:
    """Parse a model URI; ReproHooksError (exit 2) for anything else."""
    if not text.startswith("models:/"):
        raise ReproHooksError(
            f"{text}: not a model URI (expected models:/<name>/<version> or models:/<name>@<alias>)"
        )
    rest = text[len("models:/") :]
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and _ALIAS_RE.match(alias) and "/" not in name:
            return ModelRef(name, alias=alias)
    else:
        name, _, version = rest.rpartition("/")
        if name and version.isdigit() and int(version) > 0 and "/" not in name:
            return ModelRef(name, version=str(int(version)))
        if name and version and not version.isdigit():
            raise ReproHooksError(
                f"{text}: version {version!r} is not a number "
                "(stages are deprecated in MLflow: use an alias, models:/<name>@<alias>)"
            )
    raise ReproHooksError(
        f"{text}: not a model URI (expected models:/<name>/<version> or models:/<name>@<alias>)"
    )


def valid_alias(alias: str) -> bool:
    return (
        bool(_ALIAS_RE.match(alias)) and not re.fullmatch(r"[vV]\d+", alias) and alias != "latest"
    )


# ---- facts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionFacts:
    """One model version and its run, as the registry and tracking store answered."""

    name: str
    version: str
    run_id: str | None
    run_state: str  # active, deleted, missing (or none: registered without a run)
    run_tags: Mapping[str, str] = field(default_factory=dict)
    # the bytes: what the version serves and where its run keeps its artifacts
    source: str = ""
    artifact_uri: str = ""
    experiment_id: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def commit(self) -> str | None:
        value = self.run_tags.get(COMMIT_TAG, "").strip().lower()
        return value or None


@dataclass(frozen=True)
class CommitFacts:
    """What this repository says about one commit."""

    commit: str
    present: bool
    on_branch: bool = False
    branch: str = ""  # the protected branch's name, for messages
    outputs: tuple[RecordedOutput, ...] = ()
    remote_findings: tuple[Finding, ...] = ()
    policy_findings: tuple[Finding, ...] = ()
    unpushed: tuple[Finding, ...] = ()  # `push: false` outputs: in no DVC remote
    allow_push_false: bool = False  # the protected branch's policy allows them (reported)


# ---- the checks -----------------------------------------------------------------------------------


def link_findings(facts: VersionFacts) -> list[Finding]:
    """The version's run exists, is active and is linked to a commit."""
    where = facts.uri
    if facts.run_id is None:
        return [Finding(where, "run-missing", "registered without a run: nothing to reproduce")]
    if facts.run_state == "missing":
        return [Finding(where, "run-missing", f"run {facts.run_id} is not in the tracking store")]
    if facts.run_state == "deleted":
        return [Finding(where, "run-missing", f"run {facts.run_id} is deleted")]
    commit = facts.commit
    if commit is None:
        return [
            Finding(
                where,
                "run-unlinked",
                f"run {facts.run_id} is linked to no commit (no {COMMIT_TAG} tag)",
            )
        ]
    if not _SHA_RE.match(commit):
        return [
            Finding(
                where,
                "run-unlinked",
                f"run {facts.run_id}: {COMMIT_TAG} {facts.run_tags[COMMIT_TAG]!r} is no sha",
            )
        ]
    return []


def evidence_findings(facts: VersionFacts) -> list[Finding]:
    """The link was made by tag-mlflow under its evidence rules: not forced (`tag-mlflow
    --run-id --force`), not by an older `--run-id` that checked nothing, not written by hand
    (no `repro_hooks.link` tag). `check-model --allow-forced` skips this check."""
    from repro_hooks.links.given import FORCED, FORCED_BY_TAG, FORCED_REASON_TAG

    kind = facts.run_tags.get(EVIDENCE_TAG, "").strip()
    if kind == FORCED:
        who = facts.run_tags.get(FORCED_BY_TAG) or "someone"
        why = facts.run_tags.get(FORCED_REASON_TAG) or "no reason recorded"
        what = f"run {facts.run_id}'s link was forced by {who} against the evidence rules ({why})"
    elif kind == "run-id":
        what = (
            f"run {facts.run_id} was linked by an older `tag-mlflow --run-id` that checked no "
            "evidence"
        )
    elif not kind:
        what = (
            f"run {facts.run_id}'s link was not made by tag-mlflow (no {EVIDENCE_TAG} tag: "
            "written by hand?)"
        )
    elif kind == UNSTAMPED_KIND:
        what = (
            f"run {facts.run_id} is unstamped: its link rests on tags MLflow sets "
            "(mlflow.source.*), which anyone who can write a run can set too"
        )
    elif kind not in STAMPED_KINDS:
        what = (
            f"run {facts.run_id}: {EVIDENCE_TAG}={kind[:40]!r} is no value tag-mlflow writes "
            "(written by hand?)"
        )
    else:
        return []
    return [Finding(facts.uri, "link-unverified", what)]


# ---- the link's evidence level and its stamp -----------------------------------------------------

STAMPED_KINDS = {"stamp": "tree", "stage": "stage"}  # repro_hooks.link -> the stamp's evidence
UNSTAMPED_KIND = "mlflow-source"  # linked on what MLflow's own tags say (no stamp)
STAMPED = "stamped"  # evidence levels, weakest last; part A adds "attested" above "stamped"
UNSTAMPED = "unstamped"
FORCED_LEVEL = "forced"
BY_HAND = "by-hand"
_STAMP_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class StampFacts:
    """What the repository and the tracking store say about a run's stamp.

    `head`: "ancestor" when the stamp's HEAD is the linked commit or in its history, "missing"
    when this repository lacks it, "unrelated" otherwise, "" when not asked. `holders`: the ids
    of the runs that carry the same stamp id (the run's own included). `stage_recorded`: for a
    stage run, whether the linked commit's dvc.lock records that stage (None: not asked)."""

    head: str = ""
    holders: tuple[str, ...] = ()
    stage_recorded: bool | None = None


def evidence_level(facts: VersionFacts) -> str:
    """How the run's link is justified, from its tags: `stamped` (tag-mlflow's rules over a
    stamp), `unstamped` (over MLflow's own tags), `forced`, or `by-hand` (anything else)."""
    kind = facts.run_tags.get(EVIDENCE_TAG, "").strip()
    if kind in STAMPED_KINDS:
        return STAMPED
    if kind == UNSTAMPED_KIND:
        return UNSTAMPED
    return FORCED_LEVEL if kind == "forced" else BY_HAND


def stamp_findings(facts: VersionFacts, stamp: StampFacts | None) -> list[Finding]:
    """A stamped link re-checked from the tags, as the linker checked it: the stamp's tags
    are there and well formed, of the kind the link names, its HEAD is the linked commit or in
    its history, a stage run's stage is in the commit's dvc.lock, and no other run carries the
    same stamp (a copied stamp proves nothing). Tags can be forged by anyone who can write the
    run: this catches copies and careless forgeries; only an attestation survives a forger."""
    from repro_hooks.links.stamp import (
        CLONE_TAG,
        HEAD_TAG,
        KIND_TAG,
        STAGE_TAG,
        STAMP_TAG,
    )

    tags = facts.run_tags
    where = facts.uri
    kind = tags.get(EVIDENCE_TAG, "").strip()
    stamp_id = tags.get(STAMP_TAG, "").strip()
    head = tags.get(HEAD_TAG, "").strip().lower()
    problems: list[str] = []
    if not stamp_id or not tags.get(CLONE_TAG, "").strip():
        problems.append(
            f"run {facts.run_id} says {EVIDENCE_TAG}={kind} but carries no stamp "
            f"({STAMP_TAG}, {CLONE_TAG}): the run was not stamped where it trained"
        )
    elif not _STAMP_ID_RE.match(stamp_id):
        problems.append(f"run {facts.run_id}: {STAMP_TAG} {stamp_id[:40]!r} is no stamp id")
    elif tags.get(KIND_TAG, "").strip() != STAMPED_KINDS.get(kind):
        problems.append(
            f"run {facts.run_id}: {KIND_TAG}={tags.get(KIND_TAG, '')[:20]!r} does not fit "
            f"{EVIDENCE_TAG}={kind}"
        )
    elif kind == "stage" and not tags.get(STAGE_TAG, "").strip():
        problems.append(f"run {facts.run_id}: a stage link without {STAGE_TAG}")
    elif not _SHA_RE.match(head):
        problems.append(f"run {facts.run_id}: {HEAD_TAG} {head[:40]!r} is no sha")
    if problems:
        return [Finding(where, "stamp-invalid", p) for p in problems]
    commit = facts.commit or ""
    found: list[Finding] = []
    if stamp is not None:
        if stamp.head == "missing":
            found.append(
                Finding(
                    where,
                    "stamp-invalid",
                    f"run {facts.run_id}: the stamp's HEAD {head[:12]} is not in this repository",
                )
            )
        elif stamp.head == "unrelated":
            found.append(
                Finding(
                    where,
                    "stamp-invalid",
                    f"run {facts.run_id}: the stamp's HEAD {head[:12]} is not in the history of "
                    f"commit {commit[:12]}: the run did not start from it",
                )
            )
        if stamp.stage_recorded is False:
            found.append(
                Finding(
                    where,
                    "stamp-invalid",
                    f"run {facts.run_id}: stage {tags.get(STAGE_TAG, '')[:80]} is not in commit "
                    f"{commit[:12]}'s dvc.lock",
                )
            )
        others = sorted(set(stamp.holders) - {facts.run_id or ""})
        if others:
            shown = ", ".join(others[:3]) + (
                f" and {len(others) - 3} more" if len(others) > 3 else ""
            )
            found.append(
                Finding(
                    where,
                    "stamp-shared",
                    f"run {facts.run_id}'s stamp {stamp_id} is also carried by run(s) {shown}: "
                    "a copied stamp proves no link",
                )
            )
    return found


def link_notes(facts: VersionFacts) -> list[str]:
    """What an accepted link below `stamped` is (for --allow-forced), for the verdict's reason."""
    from repro_hooks.links.given import FORCED_BY_TAG, FORCED_REASON_TAG

    level = evidence_level(facts)
    if level == FORCED_LEVEL:
        who = facts.run_tags.get(FORCED_BY_TAG) or "someone"
        why = facts.run_tags.get(FORCED_REASON_TAG) or "no reason recorded"
        return [f"link forced by {who} ({why}), accepted by --allow-forced"]
    if level == BY_HAND:
        return ["link written by hand (not by tag-mlflow), accepted by --allow-forced"]
    if level == UNSTAMPED:
        return ["unstamped link (MLflow's own tags only), accepted by --allow-forced"]
    return []


def commit_findings(facts: VersionFacts, commit: CommitFacts) -> list[Finding]:
    """The commit is here and on the protected branch."""
    where = facts.uri
    short = commit.commit[:12]
    if not commit.present:
        return [
            Finding(
                where,
                "commit-missing",
                f"commit {short} (run {facts.run_id}) is not in this repository",
                commit.commit,
            )
        ]
    if not commit.on_branch:
        return [
            Finding(
                where,
                "commit-unprotected",
                f"commit {short} (run {facts.run_id}) is not on {commit.branch}",
                commit.commit,
            )
        ]
    return []


def expected_data_tags(outputs: Iterable[RecordedOutput]) -> dict[str, str]:
    """The `dvc.*` tags a link to a commit with these outputs writes."""
    outputs = list(outputs)
    tags = {dvc_tag_key(o.path): o.hash_value for o in outputs}
    if outputs:
        tags[FINGERPRINT_TAG] = fingerprint((o.path, o.hash_value) for o in outputs)
    return tags


def data_findings(facts: VersionFacts, commit: CommitFacts) -> list[Finding]:
    """The run's `dvc.*` tags and fingerprint equal what the commit records (both ways)."""
    where = facts.uri
    short = commit.commit[:12]
    expected = expected_data_tags(commit.outputs)
    have = {k: v for k, v in facts.run_tags.items() if k.startswith(DVC_PREFIX)}
    path_of = {dvc_tag_key(o.path): o.path for o in commit.outputs}
    problems: list[str] = []
    for key in sorted(set(expected) | set(have)):
        if key == FINGERPRINT_TAG:
            continue
        name = path_of.get(key, key)
        if key not in have:
            problems.append(f"{name}: the run has no {key} tag (commit records {expected[key]})")
        elif key not in expected:
            problems.append(f"{key}: on the run ({have[key]}), not recorded by commit {short}")
        elif have[key] != expected[key]:
            problems.append(
                f"{name}: the run has {have[key]}, commit {short} records {expected[key]}"
            )
    if expected.get(FINGERPRINT_TAG) != have.get(FINGERPRINT_TAG):
        problems.append(
            f"{FINGERPRINT_TAG}: the run has {have.get(FINGERPRINT_TAG) or 'none'}, "
            f"commit {short} gives {expected.get(FINGERPRINT_TAG) or 'none'}"
        )
    return [Finding(where, "data-mismatch", p, commit.commit) for p in problems]


@dataclass(frozen=True)
class Verdict:
    facts: VersionFacts
    findings: tuple[Finding, ...]
    level: str = ""  # the link's evidence level (evidence_level)
    notes: tuple[str, ...] = ()  # what passed only because it was allowed, said in the reason

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def reason(self) -> str:
        """A short reason: what passed (and what was allowed), or the failed rules with their
        counts."""
        if self.passed:
            commit = self.facts.commit or ""
            text = f"all checks passed at commit {commit[:12]}"
            if self.notes:
                text += "; " + "; ".join(self.notes)
            return text[: MAX_REASON - 3] + "..." if len(text) > MAX_REASON else text
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.rule] = counts.get(f.rule, 0) + 1
        text = ", ".join(f"{r} ({n})" if n > 1 else r for r, n in sorted(counts.items()))
        first = sorted(self.findings)[0]
        text = f"{text}: {first.path}: {first.message}"
        return text[: MAX_REASON - 3] + "..." if len(text) > MAX_REASON else text


def judge(
    facts: VersionFacts,
    commit: CommitFacts | None,
    *,
    allow_forced: bool = False,
    stamp: StampFacts | None = None,
) -> Verdict:
    """Every check for one version; `commit` is None when the link check already failed.
    `allow_forced` accepts a link below `stamped` (forced, by hand, unstamped), and says so in
    the reason; a stamped link's stamp is always re-checked (`stamp`: what the repository and
    the store say about it)."""
    findings = link_findings(facts)
    linked = not findings
    level = evidence_level(facts) if linked else ""
    notes: list[str] = []
    if linked and level == STAMPED:
        findings += stamp_findings(facts, stamp)
    elif linked and allow_forced:
        notes += link_notes(facts)
    elif linked:
        findings += evidence_findings(facts)
    if linked and commit is not None:
        findings += commit_findings(facts, commit)
        if commit.present:
            findings += data_findings(facts, commit)
            findings += commit.remote_findings
            findings += commit.policy_findings
            if commit.allow_push_false:
                notes += [f"{f.path}: {f.message} (allowed by policy)" for f in commit.unpushed]
            else:
                findings += commit.unpushed
    return Verdict(facts, tuple(sorted(set(findings))), level, tuple(notes))


def verdict_tags(verdict: Verdict, key: str = DEFAULT_VERDICT_TAG) -> dict[str, str]:
    """What `--record` writes on the version: the verdict, a short reason, and the run link's
    commit and data tags."""
    tags = {
        key: PASSED if verdict.passed else FAILED,
        f"{key}.reason": verdict.reason,
    }
    for name in (COMMIT_TAG, BRANCH_TAG, REPO_URL_TAG, FINGERPRINT_TAG):
        value = verdict.facts.run_tags.get(name)
        if value and verdict.facts.run_state == "active":
            tags[name] = value
    return tags


def valid_tag_key(key: str) -> bool:
    """MLflow's tag key rules, for --tag."""
    return (
        0 < len(key) <= 200
        and re.fullmatch(r"[/\w.\- ]+", key) is not None
        and ".." not in key
        and "//" not in key
        and not key.startswith("/")
    )


def fix_hint(verdicts: Sequence[Verdict], branch: str) -> str:
    rules = {f.rule for v in verdicts for f in v.findings}
    lines = []
    if rules & {"run-missing", "run-unlinked"}:
        lines.append(
            "Register versions from runs the tag-mlflow hook linked to their commit (train from "
            "a committed tree). `repro-hooks tag-mlflow --run-id <id>` links a run to HEAD only "
            "if HEAD records the code and data the run used, and says why not otherwise."
        )
    if "link-unverified" in rules:
        lines.append(
            "The link was forced, written by hand or made without a stamp: train from a "
            "commit with repro-hooks installed and let tag-mlflow link the run (or pass "
            "--allow-forced to accept such links; the verdict's reason then says so)."
        )
    if "commit-missing" in rules:
        lines.append(
            "Fetch the commit (git fetch origin); a commit that was never pushed cannot be deployed."
        )
    if "commit-unprotected" in rules:
        lines.append(f"Merge the commit into {branch} (and fetch) before deploying.")
    if "data-mismatch" in rules:
        lines.append(
            "The run's tags differ from its commit's records: relink it (repro-hooks tag-mlflow "
            "--run-id <id>, from a checkout of the commit the run used) or register a version "
            "from a run of this commit."
        )
    if rules & {"stamp-invalid", "stamp-shared"}:
        lines.append(
            "The run's stamp does not prove its link (missing, malformed, from another history, "
            "or copied onto several runs): register a version from a run trained with "
            "repro-hooks installed and linked by tag-mlflow."
        )
    if "dvc-push-false" in rules:
        lines.append(
            "push: false data is in no DVC remote: push it (drop push: false, dvc push), or "
            "allow such data in the protected branch's policy ([tool.repro-hooks.deploy] "
            "allow-push-false = true)."
        )
    if "dvc-not-pushed" in rules:
        lines.append("Push the data the commit references: dvc push (from a checkout of it).")
    if "uncommitted-output" in rules:
        lines.append(
            "A cache: false output (metrics, plots) lives in git: the commit must hold it; "
            "commit it with its dvc.lock and train again."
        )
    if rules & {"large-file", "lfs-pointer", "data-in-git", "malformed-dvc"}:
        lines.append("The commit breaks the repository policy: fix it and train again.")
    return "\n".join(lines)


# ---- the bytes and the evidence behind them ---------------------------------------------------
# Rules: model-source (the version serves something that is not its run's own artifact),
# model-bytes (a served file differs from what the run recorded, or the run recorded nothing),
# attestation-missing (required and absent, or unsigned), attestation-invalid (a signature that
# does not verify against the protected branch's signers, or a statement that disagrees).

ATTESTED = "attested"  # a statement signed by a signer the protected branch trusts
RECORDED = "recorded"  # the run's statement of its files, unsigned (or signers not configured)
NO_EVIDENCE = "none"  # the run recorded no digests of its files


@dataclass(frozen=True)
class ServedFile:
    """One file the version serves: its name (deploy/artifacts.py), sha256 and md5."""

    name: str
    sha256: str
    md5: str


@dataclass(frozen=True)
class ByteFacts:
    """What the version serves and what evidence says the run made."""

    source: str
    refused: str | None = None  # why the source is not the run's own artifact
    prefix: str = ""  # the served files' common name prefix (runs:/<run>/<path>, models:/<id>)
    served: tuple[ServedFile, ...] = ()
    recorded: Mapping[str, str] | None = None  # name -> sha256, from the statement
    level: str = NO_EVIDENCE
    signer: str = ""
    attestation: str = "missing"  # valid, unsigned, unverifiable, invalid, missing
    problems: tuple[str, ...] = ()  # attestation-invalid: what did not verify or differed
    required: bool = False  # the protected branch's policy requires attestation


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + "/")


def bytes_findings(
    facts: VersionFacts,
    found: ByteFacts,
    outputs: Iterable[RecordedOutput] = (),
    *,
    allow_unrecorded: bool = False,
) -> list[Finding]:
    """The version serves its run's own files, byte for byte what the run recorded (and what
    the commit records for a served file that is a DVC output); the attestation policy.
    `allow_unrecorded` (check-model --allow-forced) accepts a run that recorded nothing."""
    from repro_hooks.deploy.artifacts import artifact_path

    where = facts.uri
    if found.refused is not None:
        return [Finding(where, "model-source", found.refused)]
    out = [Finding(where, "attestation-invalid", p) for p in found.problems]
    if found.required and found.attestation in ("missing", "unsigned"):
        what = "no statement" if found.attestation == "missing" else "an unsigned statement"
        out.append(
            Finding(
                where,
                "attestation-missing",
                f"run {facts.run_id} has {what} of its files; the protected branch requires "
                "a signed one",
            )
        )
    recorded = found.recorded
    if recorded is None and found.attestation != "invalid" and not allow_unrecorded:
        out.append(
            Finding(
                where,
                "model-bytes",
                f"run {facts.run_id} recorded no digests of its files: the bytes served "
                "cannot be checked",
            )
        )
    elif recorded is not None:
        served = {f.name: f for f in found.served}
        if not served:
            out.append(Finding(where, "model-bytes", f"{found.source}: the version has no files"))
        for name, file in sorted(served.items()):
            have = recorded.get(name)
            if have is None:
                out.append(
                    Finding(
                        where,
                        "model-bytes",
                        f"{name}: served by the version (sha256 {file.sha256}), not a file "
                        f"run {facts.run_id} recorded",
                    )
                )
            elif have != file.sha256:
                out.append(
                    Finding(
                        where,
                        "model-bytes",
                        f"{name}: the version serves sha256 {file.sha256}, run "
                        f"{facts.run_id} recorded {have}",
                    )
                )
        for name in sorted(recorded):
            if found.prefix and _within(name, found.prefix) and name not in served:
                out.append(
                    Finding(
                        where,
                        "model-bytes",
                        f"{name}: recorded by run {facts.run_id}, missing from the version",
                    )
                )
    by_path = {o.path: o for o in outputs}
    for file in found.served:
        output = by_path.get(artifact_path(file.name))
        if output is None or output.hash_value.endswith(".dir"):
            continue
        if output.hash_value != file.md5:
            out.append(
                Finding(
                    where,
                    "model-bytes",
                    f"{file.name}: the version serves md5 {file.md5}, {output.source} records "
                    f"{output.hash_value} for the DVC output {output.path}",
                )
            )
    return out


def judge_bytes(
    verdict: Verdict,
    found: ByteFacts,
    outputs: Iterable[RecordedOutput] = (),
    *,
    allow_unrecorded: bool = False,
) -> Verdict:
    """The verdict with the byte and attestation findings added. A statement signed by a
    trusted key names its run, so a stamp copied onto other runs (`stamp-shared`) no longer
    leaves the real run unprovable: with an attestation it is reported, not failed (without
    one the gate cannot tell the real run from a copy, and fails them all)."""
    more = bytes_findings(verdict.facts, found, outputs, allow_unrecorded=allow_unrecorded)
    findings = set(verdict.findings) | set(more)
    notes = verdict.notes
    if found.level == ATTESTED:
        shared = {f for f in findings if f.rule == "stamp-shared"}
        findings -= shared
        notes += tuple(
            f"{f.message.split(': a copied stamp')[0]}: the signed statement names this run"
            for f in sorted(shared)
        )
    return replace(verdict, findings=tuple(sorted(findings)), notes=notes)


def evidence_text(level: str, found: ByteFacts | None) -> str:
    """What the verdict line says the decision rested on: the link's evidence level
    (`(evidence: stamped)`) and the bytes' (`(bytes: attested by <signer>)`, `recorded`,
    `none`); '' for a version with neither (no run, or not linked)."""
    parts = []
    if level:
        parts.append(f"(evidence: {level})")
    if found is not None:
        signer = f" by {found.signer}" if found.level == ATTESTED else ""
        parts.append(f"(bytes: {found.level}{signer})")
    return (" " + " ".join(parts)) if parts else ""


def evidence_tags(
    level: str, found: ByteFacts | None, key: str = DEFAULT_VERDICT_TAG
) -> dict[str, str]:
    """What `--record` adds: the link's evidence level, the bytes' level, the files and digests
    compared, the signer."""
    from repro_hooks.deploy.artifacts import compact_digests

    tags = {f"{key}.evidence": level} if level else {}
    if found is not None:
        tags[f"{key}.bytes"] = found.level
        if found.served:
            tags[f"{key}.digests"] = compact_digests({f.name: f.sha256 for f in found.served})
        if found.signer:
            tags[f"{key}.signer"] = found.signer[:250]
    return tags


def bytes_hint(verdicts: Sequence[Verdict]) -> str:
    rules = {f.rule for v in verdicts for f in v.findings}
    lines = []
    if "model-source" in rules:
        lines.append(
            "Register the version from its run's own files (runs:/<run>/<path> or the run's "
            "logged model, models:/m-<id>), never from a bucket or another run."
        )
    if "model-bytes" in rules:
        lines.append(
            "The served files are not what the run made (or the run recorded nothing): train "
            "with repro-hooks installed (the stamp records the run's files at its end), commit "
            "so that tag-mlflow links it, and register the run's model as it was logged."
        )
    if rules & {"attestation-missing", "attestation-invalid"}:
        lines.append(
            "Attested mode: configure a signing key ([tool.repro-hooks.attest] signing-key, or "
            "git's user.signingkey with gpg.format=ssh) whose public key is in the protected "
            "branch's allowed_signers, and let tag-mlflow link the run again."
        )
    return "\n".join(lines)
