"""Environment variables set for a while and put back as they were (standard library only: the
run stamp uses it inside training processes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager


@contextmanager
def restored(env: MutableMapping[str, str], keys: Iterable[str]) -> Iterator[None]:
    """On leaving, each of `keys` has its value of entering again (or is unset, as it was)."""
    saved = {k: env.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
