"""One run of `check-model` short of printing: read each model version and its run through the
model registry's port, judge the link, the commit and the bytes (deploy/gate.py over the facts of
deploy/evidence.py and deploy/artifacts.py), and write the verdicts when asked. The click command
(commands/check_model.py) parses the options, calls `check_models` and renders its outcome."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.deploy.gate import ByteFacts, CommitFacts, ModelRef, Verdict, VersionFacts
    from repro_hooks.git import Git
    from repro_hooks.policy.config import Config, DeployConfig, Policy
    from repro_hooks.report import Finding
    from repro_hooks.tracking.port import ModelRegistry


@dataclass(frozen=True)
class GateRequest:
    """What `check-model` was asked (its options, parsed)."""

    model_uris: tuple[str, ...]
    branch: str | None = None
    tracking_uri: str | None = None
    registry_uri: str | None = None
    timeout: float | None = None
    record: bool = False
    verdict_tag: str = "pre_deploy_checks"
    promote: str | None = None
    allow_forced: bool = False
    config_file: Path | None = None


@dataclass(frozen=True)
class GateOutcome:
    """The verdicts, the byte evidence per (name, version), and what was written."""

    verdicts: list[Verdict]
    evidence: dict[tuple[str, str], ByteFacts]
    branch: str  # the protected branch's name
    promote: str | None
    passed: bool

    @property
    def findings(self) -> list[Finding]:
        return [f for v in self.verdicts for f in v.findings]

    def lines(self) -> list[str]:
        """One line per version (and its notes), then what became of the alias."""
        from repro_hooks.deploy.gate import evidence_text

        out: list[str] = []
        for v in self.verdicts:
            what = "passed" if v.passed else f"FAILED ({len(v.findings)} finding(s))"
            commit = v.facts.commit[:12] if v.facts.commit else "no commit"
            level = evidence_text(v.level, self.evidence.get((v.facts.name, v.facts.version)))
            out.append(
                f"repro-hooks: {v.facts.uri} (run {v.facts.run_id}, {commit}): {what}{level}"
            )
            out.extend(f"repro-hooks: {v.facts.uri}: {note}" for note in v.notes)
        if self.promote is not None:
            if self.passed:
                out.extend(f"repro-hooks: {self.promote} -> {v.facts.uri}" for v in self.verdicts)
            else:
                out.append(f"repro-hooks: alias {self.promote!r} not moved: a check failed")
        return out

    def hint(self) -> str:
        from repro_hooks.deploy.gate import bytes_hint, fix_hint

        hints = (fix_hint(self.verdicts, self.branch), bytes_hint(self.verdicts))
        return "\n".join(h for h in hints if h)


def check_models(request: GateRequest) -> GateOutcome:
    """Check each model version; write the verdicts (--record) and move the alias (--promote,
    only when every check passed). Nothing is written unless every read succeeded."""
    from repro_hooks.deploy.evidence import protected_branch
    from repro_hooks.deploy.gate import (
        evidence_tags,
        parse_model_uri,
        valid_alias,
        valid_tag_key,
    )
    from repro_hooks.git import Git
    from repro_hooks.policy.at_revision import config_at
    from repro_hooks.policy.config import load_config

    promote = request.promote
    refs = [parse_model_uri(u) for u in request.model_uris]
    if not valid_tag_key(request.verdict_tag):
        raise ReproHooksError(f"--tag {request.verdict_tag!r}: not a valid MLflow tag key")
    if promote is not None and not valid_alias(promote):
        raise ReproHooksError(
            f"--promote {promote!r}: not a valid alias (letters, digits, _ and -; "
            "not 'latest' nor v<number>)"
        )
    git = Git.discover()
    if git.root is None:
        raise ReproHooksError(f"{git.git_dir}: check-model needs a work tree of the repository")
    config = load_config(git.root, request.config_file)
    protected = protected_branch(git, request.branch, config.deploy.branch)
    # the deploy policy in force: the protected branch's, never the commit under review's
    deploy = config_at(git, protected[1], f"protected branch {protected[0]}").deploy
    seconds = request.timeout if request.timeout is not None else float(config.mlflow.timeout)
    registry, safe_uri = _open_registry(
        git.root, request.tracking_uri, request.registry_uri, config
    )
    facts = _read_versions(registry, refs, seconds, safe_uri)
    holders = _stamp_holders(registry, facts, seconds, safe_uri)
    if promote is not None:
        names = [f.name for f in facts]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ReproHooksError(
                f"--promote {promote}: one alias cannot point at two versions of {twice[0]!r}"
            )
    verdicts, commits = _judge(
        git,
        facts,
        protected,
        config.policy,
        request.allow_forced,
        holders,
        deploy.allow_push_false,
    )
    verdicts, evidence = _judge_bytes(
        registry,
        git,
        verdicts,
        protected,
        seconds,
        safe_uri,
        deploy,
        commits,
        request.allow_forced,
    )
    passed = all(v.passed for v in verdicts)
    if request.record or promote is not None:
        extra = {
            (v.facts.name, v.facts.version): evidence_tags(
                v.level, evidence.get((v.facts.name, v.facts.version)), request.verdict_tag
            )
            for v in verdicts
        }
        _write(
            registry,
            verdicts,
            seconds,
            safe_uri,
            request.record,
            request.verdict_tag,
            promote,
            passed,
            extra=extra,
        )
    return GateOutcome(verdicts, evidence, protected[0], promote, passed)


def _open_registry(
    root: Path, option: str | None, registry_uri: str | None, config: Config
) -> tuple[ModelRegistry, str]:
    from repro_hooks.tracking.mlflow import store_to_open

    uri, safe_uri = store_to_open(root, option, config.mlflow.tracking_uri, os.environ)
    from repro_hooks.tracking.adapters import open_registry

    try:
        registry = open_registry(uri, registry_uri)
    except ImportError:
        from repro_hooks.snippets import pip_install

        raise ReproHooksError(
            f"check-model needs MLflow, which is not installed ({pip_install('mlflow')})"
        ) from None
    return registry, safe_uri


def _guard_registry(
    safe_uri: str, seconds: float, what: str
) -> contextlib.AbstractContextManager[None]:
    """Bounded time, MLflow's warnings silenced, errors as one line (links.registry.asking)."""
    from repro_hooks.links.registry import asking

    return asking(safe_uri, seconds, what)


def _read_versions(
    registry: ModelRegistry, refs: list[ModelRef], seconds: float, safe_uri: str
) -> list[VersionFacts]:
    from repro_hooks.deploy.gate import VersionFacts

    facts: dict[tuple[str, str], VersionFacts] = {}
    for ref in refs:
        with _guard_registry(safe_uri, seconds, f"reading {ref.uri}"):
            if ref.alias is not None:
                version = registry.by_alias(ref.name, ref.alias, ref.uri)
            else:
                assert ref.version is not None
                version = registry.version(ref.name, ref.version, ref.uri)
            key = (version.name, version.version)
            if key in facts:
                continue
            if version.run_id is None:
                facts[key] = VersionFacts(version.name, version.version, None, "none")
                continue
            run = registry.run(version.run_id)
            facts[key] = VersionFacts(
                version.name,
                version.version,
                run.run_id,
                run.state,
                run.tags,
                version.source,
                run.artifact_uri,
                run.experiment_id,
            )
    return list(facts.values())


def _stamp_holders(
    registry: ModelRegistry, facts: list[VersionFacts], seconds: float, safe_uri: str
) -> dict[str, tuple[str, ...]]:
    """{stamp id: ids of the runs carrying it} for the stamped runs among `facts`."""
    from repro_hooks.deploy.gate import STAMPED, evidence_level
    from repro_hooks.links.stamp import STAMP_TAG

    holders: dict[str, tuple[str, ...]] = {}
    for version in facts:
        stamp = version.run_tags.get(STAMP_TAG, "").strip()
        if not stamp or stamp in holders or evidence_level(version) != STAMPED:
            continue
        with _guard_registry(safe_uri, seconds, f"searching the runs stamped {stamp}"):
            holders[stamp] = registry.runs_with_stamp(stamp)
    return holders


def _judge(
    git: Git,
    facts: list[VersionFacts],
    protected: tuple[str, str],
    policy: Policy,
    allow_forced: bool = False,
    holders: dict[str, tuple[str, ...]] | None = None,
    allow_push_false: bool = False,
) -> tuple[list[Verdict], dict[str, CommitFacts]]:
    """The verdicts, and the facts of each linked commit ({sha: CommitFacts}, read once)."""
    from repro_hooks.deploy.evidence import commit_facts, stamp_facts
    from repro_hooks.deploy.gate import STAMPED, evidence_level, judge, link_findings
    from repro_hooks.links.stamp import STAMP_TAG

    by_commit: dict[str, CommitFacts] = {}
    verdicts = []
    for version in facts:
        commit = None
        stamp = None
        if not link_findings(version) and version.commit is not None:
            if version.commit not in by_commit:
                by_commit[version.commit] = commit_facts(
                    git, version.commit, protected, policy, allow_push_false=allow_push_false
                )
            commit = by_commit[version.commit]
            if evidence_level(version) == STAMPED and commit.present:
                held = (holders or {}).get(version.run_tags.get(STAMP_TAG, "").strip(), ())
                stamp = stamp_facts(git, dict(version.run_tags), version.commit, held)
        verdicts.append(judge(version, commit, allow_forced=allow_forced, stamp=stamp))
    return verdicts, by_commit


def _write(
    registry: ModelRegistry,
    verdicts: list[Verdict],
    seconds: float,
    safe_uri: str,
    record: bool,
    key: str,
    promote: str | None,
    passed: bool,
    *,
    extra: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
) -> None:
    """Propagate each run's link to its versions and logged models, record the verdicts, then
    move the alias if everything passed."""
    from repro_hooks.deploy.gate import verdict_tags
    from repro_hooks.links.registry import propagate_link, tag_version

    done: set[str] = set()
    for v in verdicts:
        facts = v.facts
        with _guard_registry(safe_uri, seconds, f"writing to {facts.uri}"):
            if facts.run_state == "active" and facts.run_id and facts.run_id not in done:
                propagate_link(registry, facts.run_id, facts.run_tags)
                done.add(facts.run_id)
            if record:
                more = (extra or {}).get((facts.name, facts.version), {})
                tag_version(registry, facts.name, facts.version, {**verdict_tags(v, key), **more})
    if promote is not None and passed:
        for v in verdicts:
            with _guard_registry(safe_uri, seconds, f"moving {promote} to {v.facts.uri}"):
                registry.set_alias(v.facts.name, promote, v.facts.version)


# ---- the bytes and the evidence (deploy/artifacts.py, deploy/attest.py) ------------------------


def _signers_reader(
    git: Git, protected: tuple[str, str], path: str
) -> Callable[[], tuple[bytes, str] | None]:
    """A function giving (content, where) of the allowed_signers file in the protected
    branch's tree (never the working tree, never the checked commit), or None; read once."""
    from repro_hooks.deploy.attest import MAX_SIGNERS_FILE

    cache: list[tuple[bytes, str] | None] = []

    def read() -> tuple[bytes, str] | None:
        if not cache:
            clean = path.lstrip("/")
            spec = f"{protected[1]}:{clean}"
            where = f"{protected[0]}:{clean}"
            content, size = git.small_blob(spec, MAX_SIGNERS_FILE)
            if content is None and size:
                raise ReproHooksError(f"{where}: {size} bytes, more than allowed_signers needs")
            cache.append(None if content is None else (content, where))
        return cache[0]

    return read


def _judge_bytes(
    registry: ModelRegistry,
    git: Git,
    verdicts: list[Verdict],
    protected: tuple[str, str],
    seconds: float,
    safe_uri: str,
    deploy: DeployConfig,
    commits: Mapping[str, CommitFacts],
    allow_forced: bool = False,
) -> tuple[list[Verdict], dict[tuple[str, str], ByteFacts]]:
    """Each version whose run is active: its source is the run's own artifact, its files are
    what the run recorded, and the attestation policy of the protected branch holds."""
    from repro_hooks.deploy.artifacts import version_bytes
    from repro_hooks.deploy.gate import judge_bytes, link_findings

    signers = _signers_reader(git, protected, deploy.allowed_signers)
    judged: list[Verdict] = []
    evidence: dict[tuple[str, str], ByteFacts] = {}
    for v in verdicts:
        facts = v.facts
        if link_findings(facts):  # no run, or not linked: nothing to compare the bytes with
            judged.append(v)
            continue
        # the commit's DVC outputs as _judge read them (None: the commit is not here)
        known = commits.get(facts.commit or "")
        recorded = list(known.outputs) if known is not None and known.present else None
        pairs = [(o.path, o.hash_value) for o in recorded] if recorded is not None else None
        with _guard_registry(safe_uri, seconds, f"reading the files of {facts.uri}"):
            found = version_bytes(registry, facts, signers, deploy.require_attestation, pairs)
        evidence[(facts.name, facts.version)] = found
        judged.append(judge_bytes(v, found, recorded or (), allow_unrecorded=allow_forced))
    return judged, evidence
