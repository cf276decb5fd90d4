"""`repro-hooks install`: the plain git hooks, for repositories that do not use pre-commit."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import guarded


@click.command("install")
@click.argument("repo", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--hook", "hooks", multiple=True, metavar="NAME",
    help="Install this hook (repeatable): pre-commit, pre-push, post-commit, post-rewrite, "
    "post-merge, pre-receive. Default: pre-commit and pre-push; in a bare repository: "
    "pre-receive. The MLflow linking hooks (post-commit, post-rewrite, post-merge) are "
    "installed only when named.",
)  # fmt: skip
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

    def body() -> None:
        from repro_hooks.errors import ReproHooksError
        from repro_hooks.git import Git
        from repro_hooks.shims import available_shims, default_hooks, install_shims

        if not repo.is_dir():
            raise ReproHooksError(f"{repo}: no such directory")
        git = Git.discover(repo)
        shims = available_shims()
        names = list(hooks) or default_hooks(shims, bare=git.root is None)
        for path in install_shims(git.hooks_dir(), shims, names):
            click.echo(f"installed {path}")
        ctx.exit(0)

    guarded(ctx, body)
