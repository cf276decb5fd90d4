"""`repro-hooks install`: the plain git hooks, for repositories that do not use pre-commit."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import fail, user_errors


@click.command("install")
@click.argument("repo", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--hook",
    "hooks",
    multiple=True,
    metavar="NAME",
    help="Install this hook (repeatable): pre-commit, pre-push, post-commit, post-rewrite, "
    "post-merge, pre-receive. Default: pre-commit and pre-push; in a bare repository: "
    "pre-receive. The MLflow linking hooks (post-commit, post-rewrite, post-merge) are "
    "installed only when named.",
)
@click.pass_context
def install(ctx: click.Context, repo: Path, hooks: tuple[str, ...]) -> None:
    """Install repro-hooks' plain git hooks into REPO (default: the current repository):
    pre-commit and pre-push in a work tree, pre-receive in a bare repository, or the ones named
    with --hook.

    Honours core.hooksPath and linked worktrees (`git rev-parse --git-path hooks`). Where the
    pre-commit framework's script holds a hook, the shim goes beside it as <hook>.legacy, which
    pre-commit runs first. A hook file that repro-hooks did not write is never overwritten:
    exit 2 naming it.
    """

    from repro_hooks.shims import install_hooks

    with user_errors(ctx):
        for path in install_hooks(repo, hooks):
            click.echo(f"installed {path}")
    ctx.exit(0)


@click.command("setup")
@click.argument("repo", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def setup(ctx: click.Context, repo: Path) -> None:
    """Set up a clone in one command: install the git hooks the repository records.

    Reads `default_install_hook_types` from REPO's .pre-commit-config.yaml (default: the current
    repository), runs `pre-commit install` (which installs exactly those hook types), and when
    pre-push is among them installs repro-hooks' pre-push shim beside pre-commit's script (as
    pre-push.legacy, which pre-commit runs first: it sees every pushed ref). Run it again at any
    time: it replaces only what pre-commit and repro-hooks wrote. Exit 2 when the file or the key
    is missing, pre-commit is not installed or refuses (core.hooksPath set, for instance).
    """

    from repro_hooks.shims import set_up_clone

    with user_errors(ctx):
        done = set_up_clone(repo)
    for line in done.pre_commit_output:
        click.echo(line)
    if done.refusal is not None:
        fail(ctx, done.refusal)
    for path in done.installed:
        click.echo(f"installed {path}")
    click.echo(f"setup: hook types {', '.join(done.hook_types)} (from .pre-commit-config.yaml)")
    ctx.exit(0)
