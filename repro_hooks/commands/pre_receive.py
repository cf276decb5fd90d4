"""`repro-hooks pre-receive`: the server-side gate (hooks/pre-receive in a bare repository)."""

from __future__ import annotations

from pathlib import Path

import click

from repro_hooks.commands._common import config_option, finish, format_option, guarded


@click.command("pre-receive")
@config_option(
    "The server's policy file. Default: `git config repro-hooks.policy`, else built-ins."
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Baseline file on the server. Default: `git config repro-hooks.baseline`, if set.",
)
@format_option
@click.pass_context
def pre_receive(
    ctx: click.Context, config_file: Path | None, baseline: Path | None, fmt: str
) -> None:
    """Reject a push whose new commits break the policy.

    Reads git's `<old> <new> <ref>` lines on stdin and scans only the commits no existing ref
    reaches (deletions: nothing; a tag: the commits it brings; any ref, `refs/replace/*` and
    notes included). A ref to a tag, tree or blob is judged by its target; commit and tag
    messages by the message limit. Replace refs are never followed. The policy comes from the
    server's configuration, never from the pushed content. Exit 1 rejects the push; what this
    prints reaches the pusher as `remote: ...` lines.
    """

    def body() -> None:
        import sys

        from repro_hooks.git import Git
        from repro_hooks.history.baseline import baseline_keys, load_baseline, without_baselined
        from repro_hooks.history.refs import (
            parse_pre_receive_lines,
            pre_receive_rev_args,
            ref_name_findings,
        )
        from repro_hooks.history.review import (
            BASELINE_GIT_CONFIG,
            scan_commits,
            scan_fix_hint,
            server_policy,
        )

        git = Git.discover()
        policy = server_policy(git, config_file).policy
        baseline_file = baseline
        if baseline_file is None and (configured := git.config_value(BASELINE_GIT_CONFIG)):
            baseline_file = git.git_dir / Path(configured).expanduser()
        known = load_baseline(baseline_file) if baseline_file is not None else set()
        updates = parse_pre_receive_lines(sys.stdin.read())
        refused = ref_name_findings(updates)
        rev_args = pre_receive_rev_args(updates)
        if rev_args is None:
            finish(ctx, refused, fmt)
            return
        names = {u.new: u.ref for u in reversed(updates) if not u.is_deletion}
        findings, sha_of = scan_commits(git, policy, rev_args, names, push_total=True)
        findings = without_baselined(baseline_keys(findings, sha_of), known) + refused
        if findings and fmt == "text":
            click.echo(
                f"repro-hooks: push rejected: {len(findings)} problem(s) in the pushed commits"
            )
        finish(ctx, findings, fmt, fix_hint=scan_fix_hint(findings, server=True))

    guarded(ctx, body)
