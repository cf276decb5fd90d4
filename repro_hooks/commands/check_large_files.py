"""`repro-hooks check-large-files`: block large files and raw blobs under LFS patterns."""

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


@click.command("check-large-files", cls=FilesCommand)
@click.argument("paths", nargs=-1)  # plain strings: click.Path would stat every file
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Size limit, e.g. 500KiB, 2MB, 1.5G or plain bytes (KB=1000, K/KiB=1024). "
    "Default: [tool.repro-hooks] max-size, else 500KiB.",
)
@click.option(
    "--maxkb",
    type=click.IntRange(min=0),
    metavar="N",
    help="Size limit in KiB; drop-in alias from check-added-large-files.",
)
@click.option(
    "--all",
    "--enforce-all",
    "check_all",
    is_flag=True,
    help="Check every file in the index, not only the staged or given ones.",
)
@click.option(
    "--fix",
    is_flag=True,
    help="Move each offending file into DVC with `dvc add` (needs DVC), then exit 1.",
)
@config_option()
@format_option
@click.pass_context
def check_large_files(
    ctx: click.Context,
    paths: tuple[str, ...],
    max_size: str | None,
    maxkb: int | None,
    check_all: bool,
    fix: bool,
    config_file: Path | None,
    fmt: str,
) -> None:
    """Block files over the size limit, measured as git stores them (the staged blob).

    With no PATHS, checks what is staged, and the commit's total-size limit. With PATHS, checks
    those files' blobs in the index (a directory: every file under it; a path matching nothing
    is a usage error). Under pre-commit (PRE_COMMIT=1), PATHS are the names it passed after the
    hook's filters, plus every staged blob it cannot pass (no file on disk). At pre-push
    (PRE_COMMIT_FROM_REF/TO_REF), checks every blob any pushed commit introduces, so a file
    added and deleted again is still caught.
    """

    from repro_hooks.large_files.run import run

    with user_errors(ctx):
        outcome = run(
            paths,
            max_size=max_size,
            maxkb=maxkb,
            check_all=check_all,
            config_file=config_file,
            fix=fix,
        )
        finish(ctx, outcome.findings, fmt, fix_hint=outcome.hint, error=outcome.refusal)
