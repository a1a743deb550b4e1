"""Parse and format byte sizes: ``1000``, ``1e6``, ``512KB``, ``1MB`` (decimal), ``1MiB`` (binary)."""

from __future__ import annotations

import re

from imdiag.core.errors import InputError

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
}

_SIZE_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?(?:[eE]\+?\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """Return the number of bytes ``text`` names; raise InputError for anything unclear.

    Fractions are allowed only when they give a whole number of bytes (``1.5MB`` is
    1,500,000 B; ``1.5B`` is an error), so a size never silently rounds.
    """
    match = _SIZE_RE.match(text)
    unit = match.group("unit").upper() if match else ""
    if match is None or unit not in _UNITS:
        raise InputError(
            f"invalid size {text!r}: use a number of bytes with an optional unit, "
            "e.g. 1000, 1e6, 512KB, 1MB (decimal) or 1MiB (binary)"
        )
    num = match.group("num")
    mantissa, _, exponent = num.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    # Exact integer arithmetic: float('1e6') is fine, but '1.1e1' * 1000**2 must not round.
    numerator = int(whole + frac) * _UNITS[unit] * 10 ** int(exponent or 0)
    denominator = 10 ** len(frac)
    if numerator % denominator:
        raise InputError(f"invalid size {text!r}: it is not a whole number of bytes")
    return int(numerator // denominator)


def parse_limit(text: str) -> int:
    """A server buffer limit: a size of at least 1 byte."""
    value = parse_size(text)
    if value < 1:
        raise InputError(f"invalid limit {text!r}: a limit must be at least 1 byte")
    return value


def format_size(n: int) -> str:
    """Short human label for a size: ``100KB``, ``1MB``, ``1MiB``, ``999,999 B``."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n:,} B"


def format_bytes(n: int) -> str:
    """Exact byte count with thousands separators: ``1,000,014 B``."""
    return f"{n:,} B"


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "min": 60.0}


def parse_duration(text: str, option: str) -> float:
    """``2s``, ``500ms``, ``1.5`` (seconds), ``1m``."""
    raw = text.strip().lower()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):].strip()
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except (ValueError, KeyError):
        raise InputError(f"invalid duration {text!r} for {option}: use e.g. 2s, 500ms or 1.5") from None
    if value < 0:
        raise InputError(f"invalid duration {text!r} for {option}: it must not be negative")
    return value
