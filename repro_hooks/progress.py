"""Progress for long work, on a terminal only: a bar on stderr when stderr is a TTY.

Anything else (a pipe, a file, CI logs, pre-commit's captured output) gets nothing, so output
that is not a terminal stays byte for byte what it was. Cores take an optional callback and
never know about terminals; commands and the few long loops open a bar with `progress_bar`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Advance by steps (`advance`) or move to an absolute position (`to`); no-op when off."""

    def __init__(self, bar: object | None = None, total: int = 0) -> None:
        self._bar = bar
        self.total = total
        self.pos = 0

    def advance(self, steps: int = 1) -> None:
        self.to(self.pos + steps)

    def to(self, pos: int) -> None:
        pos = max(self.pos, min(pos, self.total))
        if self._bar is not None and pos > self.pos:
            self._bar.update(pos - self.pos)  # type: ignore[attr-defined]
        self.pos = pos


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress_bar(
    label: str, total: int, *, min_total: int = 1, unit: str = ""
) -> Iterator[Progress]:
    """A progress bar on stderr for `total` steps, shown only on a terminal and only for work
    of at least `min_total` steps."""
    stream = sys.stderr
    if total < max(1, min_total) or not on_terminal(stream):
        yield Progress()
        return
    import click

    if unit == "bytes":
        from repro_hooks.policy.sizes import format_size

        label = f"{label} ({format_size(total)})"
    with click.progressbar(
        length=total, label=f"repro-hooks: {label}", file=stream, show_pos=unit != "bytes"
    ) as bar:
        yield Progress(bar, total)
