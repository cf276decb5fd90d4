"""`repro-hooks check-dvc-remote`: the data pushed commits reference must be in its DVC remote."""

from __future__ import annotations

import click

from repro_hooks.commands._common import finish, format_option, user_errors


@click.command("check-dvc-remote")
@click.argument("hook_args", nargs=-1, metavar="[REMOTE [URL]]")
@click.option("--range", "rev_range", metavar="A..B", help="Check the commits in A..B.")
@click.option("--all-history", is_flag=True, help="Check every commit reachable from any ref.")
@click.option(
    "--pre-push",
    is_flag=True,
    help="Check what a push sends: git's pre-push lines on stdin, REMOTE and URL as arguments.",
)
@format_option
@click.pass_context
def check_dvc_remote(
    ctx: click.Context,
    hook_args: tuple[str, ...],
    rev_range: str | None,
    all_history: bool,
    pre_push: bool,
    fmt: str,
) -> None:
    """Refuse a push whose commits reference DVC data missing from its DVC remote.

    Every object the .dvc and dvc.lock files introduced by the checked commits reference (files,
    and each file a directory's `.dir` listing names) must be in the output's remote: the one its
    `remote:` names, else the default. Uses DVC's own remote code (needs the dvc extra). A
    `cache: false` output (git-tracked metrics, plots) is never asked of a remote: it must be in
    the commit that records it.
    """

    from repro_hooks.dvc.run import check_remote

    with user_errors(ctx):
        verdict = check_remote(
            hook_args=hook_args,
            rev_range=rev_range,
            all_history=all_history,
            pre_push=pre_push,
            note=_note,
        )
        finish(ctx, verdict.findings, fmt, fix_hint=verdict.hint)


def _note(text: str) -> None:
    click.echo(f"repro-hooks: {text}", err=True)
