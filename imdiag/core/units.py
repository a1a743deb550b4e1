"""Parse and format byte sizes: ``1000``, ``1e6``, ``512KB``, ``1MB`` (decimal), ``1MiB`` (binary)."""

from __future__ import annotations

import math
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

# ASCII digits only: Python's \d (and float()) also take full-width and other scripts' digits.
_SIZE_RE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?(?:[eE]\+?\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$", re.ASCII)

# The largest server limit (maxHttpBufferSize) imdiag takes: Node's ws reads maxPayload as a
# 32-bit signed integer and aiohttp's websocket reader as an unsigned one; from 2**31 on a server
# no longer enforces the limit it advertises (core/servers.toml).
MAX_LIMIT = 2**31 - 1
# The largest frame imdiag builds and sends (ladder sizes, probe --max-bytes): one byte over the
# largest limit, so L+1 can always be tried. Frames are made piece by piece as they are written
# (a sweep's and a probe's), so memory is not what bounds them.
MAX_FRAME = MAX_LIMIT + 1
LIMIT_BOUND_WHY = "Node's ws reads maxPayload as a 32-bit signed integer, so a larger limit is not enforced as set"
FRAME_BOUND_WHY = "one byte over the largest limit, as no server limit goes higher"
MAX_TIMEOUT_S = 3600.0  # an hour for one answer is already no answer
_MAX_DIGITS = 19  # more digits than any size imdiag takes: refused before any big arithmetic
_MAX_SIGNIFICANT = 40  # significant digits; more cannot name a whole number of bytes under the bounds


def parse_size(text: str, *, maximum: int = MAX_FRAME, why: str = FRAME_BOUND_WHY) -> int:
    """Return the number of bytes ``text`` names; raise InputError for anything unclear or
    larger than ``maximum`` (``why`` says what bounds it).

    Fractions are allowed only when they give a whole number of bytes (``1.5MB`` is
    1,500,000 B; ``1.5B`` is an error), so a size never silently rounds.
    """
    match = _SIZE_RE.match(text)
    unit = match.group("unit").upper() if match else ""
    if match is None or unit not in _UNITS:
        raise InputError(
            f"invalid size {_shown(text)}: use a number of bytes with an optional unit, "
            "e.g. 1000, 1e6, 512KB, 1MB (decimal) or 1MiB (binary)"
        )
    num = match.group("num")
    mantissa, _, exponent = num.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0")
    significant = (whole + frac).lstrip("0")
    if not significant:
        return 0
    label = format_size(maximum)
    bound = f"{maximum:,} B" + ("" if label.endswith(" B") else f" ({label})")
    too_large = InputError(f"invalid size {_shown(text)}: at most {bound}: {why}")
    # Bound the magnitude before computing it: 1e999999999 must not build a billion-digit int.
    exp = exponent.lstrip("+").lstrip("0") or "0"
    if len(significant) > _MAX_SIGNIFICANT:
        raise InputError(f"invalid size {_shown(text)}: more than {_MAX_SIGNIFICANT} significant digits")
    if len(exp) > 6 or len(significant) - len(frac) + int(exp) + len(str(_UNITS[unit])) - 1 > _MAX_DIGITS:
        raise too_large
    # Exact integer arithmetic: float('1e6') is fine, but '1.1e1' * 1000**2 must not round.
    numerator = int(significant) * _UNITS[unit] * 10 ** int(exp)
    denominator = 10 ** len(frac)
    if numerator % denominator:
        raise InputError(f"invalid size {_shown(text)}: it is not a whole number of bytes")
    value = int(numerator // denominator)
    if value > maximum:
        raise too_large
    return value


def _shown(text: str, limit: int = 40) -> str:
    """The user's text in an error line, cut short: a typo can be a megabyte long."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def parse_limit(text: str) -> int:
    """A server buffer limit: a size of at least 1 byte and at most ``MAX_LIMIT``."""
    value = parse_size(text, maximum=MAX_LIMIT, why=LIMIT_BOUND_WHY)
    if value < 1:
        raise InputError(f"invalid limit {_shown(text)}: a limit must be at least 1 byte")
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
# A plain decimal number in ASCII digits: no inf, nan, exponent or other scripts' digits.
_DURATION_RE = re.compile(r"^[0-9]+(?:\.[0-9]*)?$|^\.[0-9]+$", re.ASCII)
MAX_DURATION_S = 604_800.0


def parse_duration(text: str, option: str) -> float:
    """``2s``, ``500ms``, ``1.5`` (seconds), ``1m``."""
    raw = text.strip().lower()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):].strip()
    try:
        if not _DURATION_RE.match(number):
            raise ValueError(number)
        value = float(number) * _DURATION_UNITS[unit]
    except (ValueError, KeyError):
        raise InputError(f"invalid duration {_shown(text)} for {option}: use e.g. 2s, 500ms or 1.5") from None
    if value > MAX_DURATION_S:
        raise InputError(f"invalid duration {_shown(text)} for {option}: at most {MAX_DURATION_S:,.0f} s (a week)")
    if value < 0:
        raise InputError(f"invalid duration {_shown(text)} for {option}: it must not be negative")
    return value


def timeout_problem(seconds: float) -> str | None:
    """What is wrong with a timeout (``--timeout``, a gate file's ``timeout``), or None: it must be
    a finite number of seconds, more than 0 (not inf, not nan) and at most MAX_TIMEOUT_S."""
    if not math.isfinite(seconds) or seconds <= 0:
        return "use a number of seconds more than 0, e.g. 10"
    if seconds > MAX_TIMEOUT_S:
        return f"at most {MAX_TIMEOUT_S:g} seconds"
    return None
