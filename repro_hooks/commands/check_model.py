"""`repro-hooks check-model`: the deploy gate. Is a registered model version reproducible?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from repro_hooks.commands._common import config_option, finish, format_option, guarded
from repro_hooks.errors import ReproHooksError

if TYPE_CHECKING:
    from repro_hooks.deploy.gate import ModelRef, VersionFacts
    from repro_hooks.links.registry import Registry


@click.command("check-model")
@click.argument("model_uris", nargs=-1, required=True, metavar="MODEL_URI...")
@click.option(
    "--branch", metavar="REF",
    help="Protected branch the commit must be on. Default: the remote's default branch as last "
    "fetched (refs/remotes/origin/HEAD, else origin/main, else origin/master).",
)  # fmt: skip
@click.option(
    "--tracking-uri", metavar="URI",
    help="Tracking server. Default: [tool.repro-hooks.mlflow] tracking-uri, else "
    "MLFLOW_TRACKING_URI, else an existing mlflow.db or mlruns/ in the repository root.",
)  # fmt: skip
@click.option(
    "--registry-uri", metavar="URI",
    help="Model registry, when it is not the tracking server (default: MLFLOW_REGISTRY_URI, "
    "else the tracking URI).",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(min=0.1, max=3600), metavar="SECONDS",
    help="Deadline for each model version's registry reads, and again for its writes "
    "(default: [tool.repro-hooks.mlflow] timeout, else 10).",
)  # fmt: skip
@click.option(
    "--record", is_flag=True,
    help="Write the verdict on each version: the --tag key = PASSED or FAILED, <key>.reason, and "
    "the run link's git.commit, git.branch, git.repo_url and dvc.fingerprint.",
)  # fmt: skip
@click.option(
    "--tag", "verdict_tag", default="pre_deploy_checks", show_default=True, metavar="KEY",
    help="Tag key of the verdict --record writes.",
)  # fmt: skip
@click.option(
    "--promote", metavar="ALIAS",
    help="Move ALIAS to the version, only when every check of every given version passed.",
)  # fmt: skip
@click.option(
    "--allow-forced",
    is_flag=True,
    help="Accept run links the evidence rules did not make: forced (tag-mlflow's force "
    "option) or written by hand (no repro_hooks.link tag).",
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
    rules (not forced, not by hand: --allow-forced accepts those); the commit is in this
    repository and on the protected branch; the run's dvc.* tags and dvc.fingerprint equal what
    the commit records; every DVC object the commit references is in its DVC remote; the commit's
    tree passes the repository policy (size limit, LFS, data patterns, DVC files).

    Exit 0 all passed, 1 a check failed, 2 usage (unknown model, version or alias, no
    repository, tracking server unreachable within the deadline). Nothing is written unless
    --record or --promote is given and every read succeeded.
    """

    def body() -> None:
        from repro_hooks.deploy.gate import fix_hint, parse_model_uri, valid_alias, valid_tag_key
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

        protected = protected_branch(git, branch)
        seconds = timeout if timeout is not None else float(config.mlflow.timeout)
        registry, safe_uri = _open_registry(git.root, tracking_uri, registry_uri, config)
        facts = _read_versions(registry, refs, seconds, safe_uri)
        if promote is not None:
            names = [f.name for f in facts]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ReproHooksError(
                    f"--promote {promote}: one alias cannot point at two versions of {twice[0]!r}"
                )
        verdicts = _judge(git, facts, protected, config.policy, allow_forced)
        passed = all(v.passed for v in verdicts)
        if record or promote is not None:
            _write(registry, verdicts, seconds, safe_uri, record, verdict_tag, promote, passed)
        for v in verdicts:
            what = "passed" if v.passed else f"FAILED ({len(v.findings)} finding(s))"
            commit = v.facts.commit[:12] if v.facts.commit else "no commit"
            click.echo(
                f"repro-hooks: {v.facts.uri} (run {v.facts.run_id}, {commit}): {what}", err=True
            )
        if promote is not None:
            if passed:
                for v in verdicts:
                    click.echo(f"repro-hooks: {promote} -> {v.facts.uri}", err=True)
            else:
                click.echo(f"repro-hooks: alias {promote!r} not moved: a check failed", err=True)
        findings = [f for v in verdicts for f in v.findings]
        finish(ctx, findings, fmt, fix_hint=fix_hint(verdicts, protected[0]))

    guarded(ctx, body)


def _open_registry(
    root: Path, option: str | None, registry_uri: str | None, config: Any
) -> tuple[Registry, str]:
    import os

    from repro_hooks.links.core import store_to_open

    uri, safe_uri = store_to_open(root, option, config.mlflow.tracking_uri, os.environ)
    from repro_hooks.links.registry import Registry

    try:
        registry = Registry(uri, registry_uri)
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
    registry: Registry, refs: list[ModelRef], seconds: float, safe_uri: str
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
            facts[key] = VersionFacts(version.name, version.version, run.run_id, run.state,
                                      run.tags)  # fmt: skip
    return list(facts.values())


def _judge(
    git: Any,
    facts: list[VersionFacts],
    protected: tuple[str, str],
    policy: Any,
    allow_forced: bool = False,
) -> list[Any]:
    from repro_hooks.deploy.evidence import commit_facts
    from repro_hooks.deploy.gate import judge, link_findings

    by_commit: dict[str, Any] = {}
    verdicts = []
    for version in facts:
        commit = None
        if not link_findings(version) and version.commit is not None:
            if version.commit not in by_commit:
                by_commit[version.commit] = commit_facts(git, version.commit, protected, policy)
            commit = by_commit[version.commit]
        verdicts.append(judge(version, commit, allow_forced=allow_forced))
    return verdicts


def _write(
    registry: Registry,
    verdicts: list[Any],
    seconds: float,
    safe_uri: str,
    record: bool,
    key: str,
    promote: str | None,
    passed: bool,
) -> None:
    """Propagate each run's link to its versions and logged models, record the verdicts, then
    move the alias if everything passed."""
    from repro_hooks.deploy.gate import verdict_tags
    from repro_hooks.links.registry import propagate_link

    done: set[str] = set()
    for v in verdicts:
        facts = v.facts
        with _guard_registry(safe_uri, seconds, f"writing to {facts.uri}"):
            if facts.run_state == "active" and facts.run_id and facts.run_id not in done:
                propagate_link(registry.client, facts.run_id, facts.run_tags)
                done.add(facts.run_id)
            if record:
                registry.tag_version(facts.name, facts.version, verdict_tags(v, key))
    if promote is not None and passed:
        for v in verdicts:
            with _guard_registry(safe_uri, seconds, f"moving {promote} to {v.facts.uri}"):
                registry.set_alias(v.facts.name, promote, v.facts.version)
