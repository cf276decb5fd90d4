"""`repro-hooks check-dvc-remote`: the data pushed commits reference must be in its DVC remote."""

from __future__ import annotations

import os
from pathlib import Path

import click

from repro_hooks.commands._common import finish, format_option, guarded
from repro_hooks.errors import ReproHooksError


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

    def body() -> None:
        import sys

        from repro_hooks.dvc.names import is_dvc_file
        from repro_hooks.dvc.remote import (
            CommitStages,
            missing_from_remotes,
            push_hint,
            referenced_outputs,
            remote_findings,
            require_dvc,
            uncached_outputs,
            uncommitted_findings,
            uncommitted_hint,
            unpushed_findings,
            unpushed_outputs,
        )
        from repro_hooks.git import Git
        from repro_hooks.history.refs import commits_to_check
        from repro_hooks.report import display_path

        if hook_args and not pre_push:
            raise ReproHooksError(
                f"unexpected argument {hook_args[0]!r} (REMOTE URL go with --pre-push)"
            )
        require_dvc()
        git = Git.discover()
        if git.root is None:
            raise ReproHooksError(f"{git.git_dir}: check-dvc-remote needs a work tree with .dvc/")
        rev_args = commits_to_check(
            git,
            rev_range=rev_range,
            all_history=all_history,
            pre_push=hook_args if pre_push else None,
            stdin_text=sys.stdin.read() if pre_push else None,
            env=os.environ,
        )
        if rev_args is None:
            finish(ctx, [], fmt)
            return
        blobs = [
            b
            for b in git.introduced_blobs(rev_args)
            if not b.is_gitlink and is_dvc_file(display_path(b.path))
        ]
        contents = git.read_blobs(b.sha for b in blobs)
        from repro_hooks.progress import on_terminal, progress_bar

        stages = CommitStages(git)  # which dvc.lock outputs are cache: false (git keeps them)
        stages.prefetch(blobs)
        outputs = referenced_outputs(blobs, contents, stages)
        if on_terminal():  # a bar on stderr; off a terminal, nothing changes
            with progress_bar("checking DVC remote", len(outputs)) as bar:
                checks = missing_from_remotes(Path(git.root), outputs, bar.advance)
        else:
            checks = missing_from_remotes(Path(git.root), outputs)
        uncommitted = uncommitted_findings(git, uncached_outputs(blobs, contents, stages))
        # push: false data is in no remote by design: a note here (the deploy gate refuses it)
        for note in unpushed_findings(unpushed_outputs(blobs, contents, stages)):
            click.echo(
                f"repro-hooks: note: {note.path}: {note.message} (check-model refuses it unless "
                "the protected branch allows push: false data)",
                err=True,
            )
        head = git.try_run("rev-parse", "--verify", "-q", "HEAD")
        hint = "\n".join(
            h
            for h in (
                push_hint(checks, head.decode().strip() if head else None),
                uncommitted_hint(uncommitted),
            )
            if h
        )
        finish(ctx, remote_findings(checks) + uncommitted, fmt, fix_hint=hint)

    guarded(ctx, body)
