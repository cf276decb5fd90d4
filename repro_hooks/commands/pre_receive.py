"""`repro-hooks pre-receive`: the server-side gate (hooks/pre-receive in a bare repository)."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import config_option, finish, format_option, user_errors


@click.command("pre-receive")
@config_option(
    "The server's policy file. Default: `git config repro-hooks.policy`, else built-ins."
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Baseline file on the server. Default: `git config repro-hooks.baseline`, if set.",
)
@format_option
@click.pass_context
def pre_receive(
    ctx: click.Context, config_file: Path | None, baseline: Path | None, fmt: str
) -> None:
    """Reject a push whose new commits break the policy.

    Reads git's `<old> <new> <ref>` lines on stdin and scans only the commits no existing ref
    reaches (deletions: nothing; a tag: the commits it brings; any ref, `refs/replace/*` and
    notes included). A ref to a tag, tree or blob is judged by its target; commit and tag
    messages by the message limit. Replace refs are never followed. The policy comes from the
    server's configuration, never from the pushed content. Exit 1 rejects the push; what this
    prints reaches the pusher as `remote: ...` lines.
    """

    from repro_hooks.history.run import pre_receive as check_push

    with user_errors(ctx):
        verdict = check_push(config_file=config_file, baseline=baseline)
        if verdict.findings and fmt == "text":
            click.echo(
                f"repro-hooks: push rejected: {len(verdict.findings)} problem(s) in the pushed "
                "commits"
            )
        finish(ctx, verdict.findings, fmt, fix_hint=verdict.hint)
