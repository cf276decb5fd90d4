"""`repro-hooks install`: the plain git hooks, for repositories that do not use pre-commit."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import guarded


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

    def body() -> None:
        import subprocess

        from repro_hooks.errors import ReproHooksError
        from repro_hooks.git import Git
        from repro_hooks.shims import (
            SHIMMED_WITH_PRE_COMMIT,
            available_shims,
            configured_hook_types,
            install_shims,
            pre_commit_command,
        )

        if not repo.is_dir():
            raise ReproHooksError(f"{repo}: no such directory")
        git = Git.discover(repo)
        if git.root is None:
            raise ReproHooksError(f"{git.git_dir}: setup needs a clone with a work tree")
        types = configured_hook_types(git.root)
        command = pre_commit_command()
        if command is None:
            raise ReproHooksError(
                "pre-commit is not installed (pip install pre-commit), so the hooks cannot be set up"
            )
        proc = subprocess.run(
            [*command, "install"],
            cwd=git.root,
            capture_output=True,
            text=True,
            check=False,
        )
        output = (proc.stdout + proc.stderr).strip().splitlines()
        if proc.returncode != 0:
            reason = next((ln for ln in reversed(output) if ln.strip()), "no output")
            raise ReproHooksError(f"pre-commit install failed: {reason.strip()}")
        for line in output:
            click.echo(line)
        shimmed = [t for t in types if t in SHIMMED_WITH_PRE_COMMIT]
        if shimmed:
            for path in install_shims(git.hooks_dir(), available_shims(), shimmed):
                click.echo(f"installed {path}")
        click.echo(f"setup: hook types {', '.join(types)} (from .pre-commit-config.yaml)")
        ctx.exit(0)

    guarded(ctx, body)
