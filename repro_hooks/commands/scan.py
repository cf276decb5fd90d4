"""`repro-hooks scan`: the large-file and DVC-file policy over commits (pre-push, CI)."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import config_option, finish, format_option, user_errors


@click.command("scan")
@click.argument("hook_args", nargs=-1, metavar="[REMOTE [URL]]")
@click.option(
    "--range", "rev_range", metavar="A..B", help="Scan the commits in A..B (git rev-list)."
)
@click.option("--all-history", is_flag=True, help="Scan every commit reachable from any ref.")
@click.option(
    "--pre-push",
    is_flag=True,
    help="Scan what a push sends: git's pre-push lines on stdin, REMOTE and URL as arguments "
    "(what hooks/pre-push passes).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Do not report findings recorded in this baseline file (rule + path + blob).",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record every finding of this scan in FILE and exit 0.",
)
@click.option("--max-size", metavar="SIZE", help="Size limit, overriding the configuration.")
@config_option("Policy file to use instead of pyproject.toml (or the server's repro-hooks.policy).")
@format_option
@click.pass_context
def scan(
    ctx: click.Context,
    hook_args: tuple[str, ...],
    rev_range: str | None,
    all_history: bool,
    pre_push: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    max_size: str | None,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Check commits, not the working tree: every blob each commit introduces against the size
    limit, the LFS pointer rule and the data patterns, and every .dvc, dvc.yaml and dvc.lock it
    introduces for validity.

    Commits come from --range, --all-history, --pre-push (stdin), or pre-commit's pre-push
    environment. A new branch counts only commits the remote does not have (as `git ls-remote`
    says, never stale remote-tracking refs); a deletion, none. Tags, trees and blobs that refs
    point at are judged too, and commit and tag messages against the message limit.

    With --range A..B the policy in force is A's pyproject.toml (the change under review cannot
    set its own policy), unless --config is given.
    """

    from repro_hooks.history.run import BaselineWritten, HandedOff, ScanOptions
    from repro_hooks.history.run import scan as scan_commits

    opts = ScanOptions(
        hook_args=hook_args,
        rev_range=rev_range,
        all_history=all_history,
        pre_push=pre_push,
        baseline=baseline,
        write_baseline=write_baseline,
        max_size=max_size,
        config_file=config_file,
        text_output=fmt == "text",
    )
    with user_errors(ctx):
        result = scan_commits(opts, note=_note)
        if isinstance(result, BaselineWritten):
            click.echo(f"repro-hooks: wrote {result.count} findings to {result.file}", err=True)
            ctx.exit(0)
        if isinstance(result, HandedOff):
            if result.findings:
                click.echo(
                    f"repro-hooks: {result.findings} finding(s), printed above by the pre-push "
                    "shim (pre-push.legacy), which scanned every ref of this push"
                )
            ctx.exit(1 if result.findings else 0)
        finish(ctx, result.findings, fmt, fix_hint=result.hint)


def _note(text: str) -> None:
    click.echo(f"repro-hooks: {text}", err=True)
