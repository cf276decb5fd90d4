"""`repro-hooks check-model`: the deploy gate. Is a registered model version reproducible?"""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import config_option, fail, finish, format_option
from repro_hooks.errors import ReproHooksError


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

    from repro_hooks.deploy.run import GateRequest, check_models

    request = GateRequest(
        model_uris,
        branch,
        tracking_uri,
        registry_uri,
        timeout,
        record,
        verdict_tag,
        promote,
        allow_forced,
        config_file,
    )
    try:
        outcome = check_models(request)
    except ReproHooksError as exc:
        fail(ctx, exc)
        return
    for line in outcome.lines():
        click.echo(line, err=True)
    finish(ctx, outcome.findings, fmt, fix_hint=outcome.hint())
