"""`repro-hooks check-dvc`: data kept out of git must be described by DVC, exactly."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import (
    FilesCommand,
    config_option,
    finish,
    format_option,
    user_errors,
)


@click.command("check-dvc", cls=FilesCommand)
@click.argument("paths", nargs=-1)  # plain strings: click.Path would stat every name
@click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Hash everything again instead of trusting the hash cache under the git directory.",
)
@config_option()
@format_option
@click.pass_context
def check_dvc(
    ctx: click.Context,
    paths: tuple[str, ...],
    no_cache: bool,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Check that every data file is in DVC and every DVC file matches the working tree.

    Reports data stored in git, data described by no .dvc file or dvc.yaml stage, .dvc files and
    dvc.lock stages whose recorded hashes, params or cmd differ from the working tree, missing
    outputs, cached outputs git does not ignore, and malformed or unsafe DVC files. With no
    PATHS, checks the whole repository; PATHS restrict the check to them.
    """

    from repro_hooks.dvc.run import check

    with user_errors(ctx):
        verdict = check(paths, no_cache=no_cache, config_file=config_file)
        finish(ctx, verdict.findings, fmt, fix_hint=verdict.hint)
