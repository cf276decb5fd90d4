"""Shared pieces of the thin click commands: the --format option and the exit protocol."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
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
    help="Output format: text for people; the others for machines (docs/commands.md, Output formats).",
)


def config_option(
    help: str = "Policy file to use instead of the repository's pyproject.toml.",
) -> Callable[[F], F]:
    """`--config FILE`: a policy file (keys at top level or under [tool.repro-hooks])."""
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help=help
    )


class FilesCommand(click.Command):
    """A command whose PATHS come from pre-commit, which appends file names after the hook's
    options without a `--`. A name that starts with `-` and exists (`-rf.csv`, `--help.bin`,
    even `--fix`) is a path, never an option: moved after a `--` before click parses. (So are
    all other names: click then takes 20,000 of them in one step instead of one by one.)"""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            opt
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for opt in param.opts
        }
        if args and "\0-" not in "\0" + "\0".join(args):  # no option at all: one pass in C
            return super().parse_args(ctx, ["--", *args])
        options: list[str] = []
        paths: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if not arg.startswith("-") or (len(arg) > 1 and os.path.lexists(arg)):
                paths.append(arg)  # a name, even one like `--help.bin` or `--` that exists
            elif arg == "--":
                paths.extend(args[i + 1 :])
                break
            else:
                options.append(arg)
                if arg in takes_value and i + 1 < len(args):
                    options.append(args[i + 1])
                    i += 1
            i += 1
        return super().parse_args(ctx, [*options, "--", *paths] if paths else options)


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
    error: ReproHooksError | None = None,
) -> None:
    """Print findings in the chosen format and exit 1 if there are any, else 0. With `error`
    (a refusal after the findings were made, as `--fix` may give): the findings as usual on
    stdout, then the error as one line on stderr, in every format, and its exit code (2)."""
    out = render(findings, fmt, command=ctx.info_name or "", fix_hint=fix_hint)
    if out or fmt != "text":
        click.echo(out)
    if error is not None:
        fail(ctx, error)
    ctx.exit(exit_code if exit_code is not None else (1 if findings else 0))


@contextmanager
def user_errors(ctx: click.Context) -> Iterator[None]:
    """Around a command's call into its domain: a user-caused error becomes one line and its
    exit code (2), never a traceback."""
    try:
        yield
    except ReproHooksError as exc:
        fail(ctx, exc)


def guarded(ctx: click.Context, fn: Callable[[], None]) -> None:
    """`user_errors` around a command body given as a function."""
    with user_errors(ctx):
        fn()
