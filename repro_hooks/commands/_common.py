"""Shared pieces of the thin click commands: the --format option and the exit protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from repro_hooks.errors import ReproHooksError
from repro_hooks.report import FORMATS, Finding, render

F = TypeVar("F", bound=Callable[..., Any])

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format: text for people, json (versioned schema), sarif 2.1.0, github annotations.",
)


def fail(ctx: click.Context, error: ReproHooksError) -> None:
    """One line on stderr and the error's exit code (2): never a traceback."""
    click.echo(f"repro-hooks: {error}", err=True)
    ctx.exit(error.exit_code)


def finish(
    ctx: click.Context,
    findings: Sequence[Finding],
    fmt: str,
    *,
    fix_hint: str = "",
    exit_code: int | None = None,
) -> None:
    """Print findings in the chosen format and exit 1 if there are any, else 0."""
    out = render(findings, fmt, command=ctx.info_name or "", fix_hint=fix_hint)
    if out or fmt != "text":
        click.echo(out)
    ctx.exit(exit_code if exit_code is not None else (1 if findings else 0))


def guarded(ctx: click.Context, fn: Callable[[], None]) -> None:
    """Run a command body, turning user-caused errors into one line and exit 2."""
    try:
        fn()
    except ReproHooksError as exc:
        fail(ctx, exc)
