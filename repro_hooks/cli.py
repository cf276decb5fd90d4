"""The `repro-hooks` console script: a click group whose subcommands load lazily.

Start-up is a feature: hooks run on every commit, so importing this module must stay cheap.
Each subcommand lives in its own module and is imported only when it is invoked (or for --help).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from repro_hooks import __version__

# name -> "module:attribute" of a click.Command. Keep sorted; one line per subcommand.
COMMANDS: dict[str, str] = {
    "check-dvc": "repro_hooks.commands.check_dvc:check_dvc",
    "check-dvc-remote": "repro_hooks.commands.check_dvc_remote:check_dvc_remote",
    "check-large-files": "repro_hooks.commands.check_large_files:check_large_files",
    "check-model": "repro_hooks.commands.check_model:check_model",
    "install": "repro_hooks.commands.install:install",
    "pending": "repro_hooks.commands.tag_mlflow:pending",
    "pre-receive": "repro_hooks.commands.pre_receive:pre_receive",
    "scan": "repro_hooks.commands.scan:scan",
    "setup": "repro_hooks.commands.install:setup",
    "show": "repro_hooks.commands.show:show",
    "tag-mlflow": "repro_hooks.commands.tag_mlflow:tag_mlflow",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, package_name="repro-hooks")
def cli() -> None:
    """Keep ML work reproducible at `git commit`: large data out of git, DVC files exact,
    every commit linked to the MLflow run it produced.

    Exit codes: 0 clean, 1 findings, 2 usage or configuration error, 3 internal error.
    """


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. Returns the exit code instead of raising SystemExit."""
    from repro_hooks.entry import make_streams_safe

    make_streams_safe()
    try:
        cli.main(args=argv, prog_name="repro-hooks", standalone_mode=True)
    except SystemExit as exc:
        code: Any = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        click.echo(str(code), err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("repro-hooks: interrupted", err=True)
        return 130
    except Exception as exc:
        if os.environ.get("REPRO_HOOKS_DEBUG"):
            raise
        from repro_hooks import crash

        log = crash.write(exc, ["repro-hooks", *(sys.argv[1:] if argv is None else argv)])
        click.echo(f"repro-hooks: internal error: {crash.summary(exc)}; {log.line()}", err=True)
        return 3
    return 0  # pragma: no cover - standalone_mode always raises SystemExit
