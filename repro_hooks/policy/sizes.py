"""Size parsing and formatting.

Units follow GNU coreutils: `KB`, `MB`, `GB`, `TB` are powers of 1000; `K`, `M`, `G`, `T` and
`KiB`, `MiB`, `GiB`, `TiB` are powers of 1024. Case does not matter; a plain number (or `B`) is bytes.
Fractions are allowed (`1.5MiB`); the result is rounded down to whole bytes.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """Parse `500KB`, `1.5MiB`, `2G` or `1048576` into bytes. Raises ValueError with a reason."""
    if isinstance(text, bool):
        raise ValueError("expected a size such as 500KiB, 2MB or 1048576")
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a size cannot be negative")
        return text
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 500KiB, 2MB, 1.5G or plain bytes)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(
            f"unknown size unit {unit!r} in {text!r} (use B, KB, KiB, K, MB, MiB, M, ...)"
        )
    if number.isdigit():
        return int(number) * factor
    from fractions import Fraction  # exact: 1.5MiB is 1572864 bytes, not a float's guess

    return int(Fraction(number) * factor)


def format_size(n: int) -> str:
    """Human-readable binary size: `512 B`, `500 KiB`, `2.3 MiB`."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
