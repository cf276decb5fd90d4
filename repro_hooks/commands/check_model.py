"""`repro-hooks check-model`: the deploy gate. Is a registered model version reproducible?"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from repro_hooks.commands._common import config_option, finish, format_option, guarded
from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.deploy.gate import ModelRef, VersionFacts
    from repro_hooks.tracking.port import ModelRegistry


@click.command("check-model")
@click.argument("model_uris", nargs=-1, required=True, metavar="MODEL_URI...")
@click.option(
    "--branch",
    metavar="REF",
    help="Protected branch the commit must be on. Default: [tool.repro-hooks.deploy] branch, "
    "else the remote's default branch as last fetched (refs/remotes/origin/HEAD when it is a "
    "symbolic ref, else origin/main or origin/master when only one exists; else exit 2).",
)
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="Tracking server. Default: [tool.repro-hooks.mlflow] tracking-uri, else "
    "MLFLOW_TRACKING_URI, else an existing mlflow.db or mlruns/ in the repository root.",
)
@click.option(
    "--registry-uri",
    metavar="URI",
    help="Model registry, when it is not the tracking server (default: MLFLOW_REGISTRY_URI, "
    "else the tracking URI).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600),
    metavar="SECONDS",
    help="Deadline for each model version's registry reads, and again for its writes "
    "(default: [tool.repro-hooks.mlflow] timeout, else 10).",
)
@click.option(
    "--record",
    is_flag=True,
    help="Write the verdict on each version: the --tag key = PASSED or FAILED, <key>.reason, and "
    "the run link's git.commit, git.branch, git.repo_url and dvc.fingerprint.",
)
@click.option(
    "--tag",
    "verdict_tag",
    default="pre_deploy_checks",
    show_default=True,
    metavar="KEY",
    help="Tag key of the verdict --record writes.",
)
@click.option(
    "--promote",
    metavar="ALIAS",
    help="Move ALIAS to the version, only when every check of every given version passed.",
)
@click.option(
    "--allow-forced",
    is_flag=True,
    help="Accept run links below the stamped evidence level: forced (tag-mlflow's force "
    "option), written by hand (no or an unknown repro_hooks.link tag), or unstamped (linked on "
    "MLflow's own tags). The verdict's reason says so.",
)
@config_option()
@format_option
@click.pass_context
def check_model(
    ctx: click.Context,
    model_uris: tuple[str, ...],
    branch: str | None,
    tracking_uri: str | None,
    registry_uri: str | None,
    timeout: float | None,
    record: bool,
    verdict_tag: str,
    promote: str | None,
    allow_forced: bool,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Check model versions before deployment (models:/<name>/<version>, models:/<name>@<alias>).

    Each version passes when: its run is linked to a commit (git.commit) by tag-mlflow's evidence
    rules over the run's stamp (not forced, not by hand, not unstamped: --allow-forced accepts
    those); the stamp fits the commit (its HEAD is in the commit's history) and no other run
    carries it; the commit is in this repository and on the protected branch; the run's dvc.*
    tags and dvc.fingerprint equal what the commit records; every DVC object the commit
    references is in its DVC remote (push: false data fails unless the protected branch's
    [tool.repro-hooks.deploy] allow-push-false says otherwise); the commit's tree passes the
    repository policy (size limit, LFS, data patterns, DVC files); the version serves its run's
    own files, byte for byte what the run recorded (in a statement signed by a key the protected
    branch's allowed_signers trusts, when its policy requires attestation).

    Exit 0 all passed, 1 a check failed, 2 usage (unknown model, version or alias, no
    repository, tracking server unreachable within the deadline). Nothing is written unless
    --record or --promote is given and every read succeeded.
    """

    def body() -> None:
        from repro_hooks.deploy.gate import (
            bytes_hint,
            evidence_tags,
            evidence_text,
            fix_hint,
            parse_model_uri,
            valid_alias,
            valid_tag_key,
        )
        from repro_hooks.git import Git
        from repro_hooks.policy.config import load_config

        refs = [parse_model_uri(u) for u in model_uris]
        if not valid_tag_key(verdict_tag):
            raise ReproHooksError(f"--tag {verdict_tag!r}: not a valid MLflow tag key")
        if promote is not None and not valid_alias(promote):
            raise ReproHooksError(
                f"--promote {promote!r}: not a valid alias (letters, digits, _ and -; "
                "not 'latest' nor v<number>)"
            )
        git = Git.discover()
        if git.root is None:
            raise ReproHooksError(f"{git.git_dir}: check-model needs a work tree of the repository")
        config = load_config(git.root, config_file)
        from repro_hooks.deploy.evidence import protected_branch

        protected = protected_branch(git, branch, config.deploy.branch)
        from repro_hooks.policy.at_revision import config_at

        # the deploy policy in force: the protected branch's, never the commit under review's
        deploy = config_at(git, protected[1], f"protected branch {protected[0]}").deploy
        seconds = timeout if timeout is not None else float(config.mlflow.timeout)
        registry, safe_uri = _open_registry(git.root, tracking_uri, registry_uri, config)
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
            git, facts, protected, config.policy, allow_forced, holders, deploy.allow_push_false
        )
        verdicts, evidence = _judge_bytes(
            registry, git, verdicts, protected, seconds, safe_uri, deploy, commits, allow_forced
        )
        passed = all(v.passed for v in verdicts)
        if record or promote is not None:
            extra = {
                (v.facts.name, v.facts.version): evidence_tags(
                    v.level, evidence.get((v.facts.name, v.facts.version)), verdict_tag
                )
                for v in verdicts
            }
            _write(
                registry,
                verdicts,
                seconds,
                safe_uri,
                record,
                verdict_tag,
                promote,
                passed,
                extra=extra,
            )
        for v in verdicts:
            what = "passed" if v.passed else f"FAILED ({len(v.findings)} finding(s))"
            commit = v.facts.commit[:12] if v.facts.commit else "no commit"
            level = evidence_text(v.level, evidence.get((v.facts.name, v.facts.version)))
            click.echo(
                f"repro-hooks: {v.facts.uri} (run {v.facts.run_id}, {commit}): {what}{level}",
                err=True,
            )
            for note in v.notes:
                click.echo(f"repro-hooks: {v.facts.uri}: {note}", err=True)
        if promote is not None:
            if passed:
                for v in verdicts:
                    click.echo(f"repro-hooks: {promote} -> {v.facts.uri}", err=True)
            else:
                click.echo(f"repro-hooks: alias {promote!r} not moved: a check failed", err=True)
        findings = [f for v in verdicts for f in v.findings]
        hint = "\n".join(h for h in (fix_hint(verdicts, protected[0]), bytes_hint(verdicts)) if h)
        finish(ctx, findings, fmt, fix_hint=hint)

    guarded(ctx, body)


def _open_registry(
    root: Path, option: str | None, registry_uri: str | None, config: Any
) -> tuple[ModelRegistry, str]:
    import os

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


def _guard_registry(safe_uri: str, seconds: float, what: str) -> Any:
    """A context manager: bounded time, MLflow's warnings silenced, errors as one line."""
    import contextlib
    import os
    import warnings

    from repro_hooks.links.registry import RegistryTimeout, bounded, one_line

    @contextlib.contextmanager
    def guard() -> Any:
        try:
            with bounded(os.environ, seconds), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except RegistryTimeout:
            raise ReproHooksError(
                f"{safe_uri}: no answer within {seconds:g}s while {what} (tracking server down "
                "or hanging?)"
            ) from None
        except ReproHooksError:
            raise
        except Exception as exc:
            raise ReproHooksError(f"{safe_uri}: {one_line(exc)} (while {what})") from None

    return guard()


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
    git: Any,
    facts: list[VersionFacts],
    protected: tuple[str, str],
    policy: Any,
    allow_forced: bool = False,
    holders: dict[str, tuple[str, ...]] | None = None,
    allow_push_false: bool = False,
) -> tuple[list[Any], dict[str, Any]]:
    """The verdicts, and the facts of each linked commit ({sha: CommitFacts}, read once)."""
    from repro_hooks.deploy.evidence import commit_facts, stamp_facts
    from repro_hooks.deploy.gate import STAMPED, evidence_level, judge, link_findings
    from repro_hooks.links.stamp import STAMP_TAG

    by_commit: dict[str, Any] = {}
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
    verdicts: list[Any],
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


def _signers_reader(git: Any, protected: tuple[str, str], path: str) -> Any:
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
    git: Any,
    verdicts: list[Any],
    protected: tuple[str, str],
    seconds: float,
    safe_uri: str,
    deploy: Any,
    commits: Mapping[str, Any],
    allow_forced: bool = False,
) -> tuple[list[Any], dict[tuple[str, str], Any]]:
    """Each version whose run is active: its source is the run's own artifact, its files are
    what the run recorded, and the attestation policy of the protected branch holds."""
    from repro_hooks.deploy.artifacts import version_bytes
    from repro_hooks.deploy.gate import judge_bytes, link_findings

    signers = _signers_reader(git, protected, deploy.allowed_signers)
    judged: list[Any] = []
    evidence: dict[tuple[str, str], Any] = {}
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
