"""The `repro-hooks` console script.

The commit-stage hook's call, `repro-hooks check-large-files [NAMES...]` with no option (as
pre-commit and the plain pre-commit shim make it, on every commit), runs without importing click: click's import is over half
of the hook's own imports. Everything else, and every run of that call that does not end in
findings or a clean pass (a usage or configuration error, an internal error, a name the text
output would show differently), goes through the click CLI (`repro_hooks.cli`), which then says
it exactly as ever. That is sound because the check only reads: running it again changes nothing.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing's own import is not on the hook's path
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from repro_hooks.report import Finding


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. Returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["check-large-files"]:
        code = _plain_check_large_files(args[1:])
        if code is not None:
            return code
    if args == ["scan", "--all-history"]:
        code = _plain_scan_all_history()
        if code is not None:
            return code
    from repro_hooks.cli import main as cli_main

    return cli_main(argv)


def _plain_check_large_files(names: list[str]) -> int | None:
    """`check-large-files [NAMES...]` when no name starts with `-` (click would read no option
    either): print the text output and return the exit code; None to leave the call to click."""
    if "\0-" in "\0" + "\0".join(names):
        return None

    def check() -> tuple[Sequence[Finding], str]:
        from repro_hooks.large_files.run import run

        outcome = run(tuple(names))
        return outcome.findings, outcome.hint

    return _plain("check-large-files", check)


def _plain_scan_all_history() -> int | None:
    """`scan --all-history` and nothing else: print the text output and return the exit code;
    None to leave the call to click (which runs the scan again, and says it as ever). Off a
    terminal only: on one, click's path draws a progress bar."""
    import gc

    from repro_hooks.progress import on_terminal

    if on_terminal():
        return None

    def scan() -> tuple[Sequence[Finding], str]:
        from repro_hooks.history.all_history import scan_all_history

        return scan_all_history()

    # The scan's objects (a tuple per blob, 20,000 for 10,000 commits) form no cycles and die
    # by reference count: the cycle collector would walk them some 80 times for nothing.
    gc.disable()
    try:
        return _plain("scan", scan)
    finally:
        gc.enable()


def _plain(command: str, check: Callable[[], tuple[Sequence[Finding], str]]) -> int | None:
    """Run `check`, print its findings as `command`'s text output, return the exit code; None
    (having printed nothing) to leave the call to click, which says any error as ever (one
    line, or the crash log)."""
    try:
        findings, hint = check()
        from repro_hooks.report import render

        out = render(findings, "text", command=command, fix_hint=hint)
    except KeyboardInterrupt:
        make_streams_safe()
        sys.stderr.write("repro-hooks: interrupted\n")
        return 130
    except Exception:
        return None
    if not _write_plain(out):
        return None
    return 1 if findings else 0


def _write_plain(out: str) -> bool:
    """Print `out` (nothing when empty) as click.echo would; False, having printed nothing,
    where click might print it otherwise: it strips ANSI sequences off a terminal and may
    re-encode a misconfigured stream (plain ASCII text is written the same either way), and it
    reports a closed pipe its own way."""
    if not out.isascii() or "\x1b" in out:
        return False
    if out:
        make_streams_safe()
        try:
            sys.stdout.write(out + "\n")
            sys.stdout.flush()
        except Exception:
            return False
    return True


def make_streams_safe() -> None:
    """Hooks often run under LANG=C; a non-ASCII path must never turn into a
    UnicodeEncodeError. (What `cli.main` does first, without importing click.)"""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
