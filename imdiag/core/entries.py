"""What a master records: arrivals, errors, connects and disconnects, and the canonical digest.

Pure data. ``imdiag.masters.ledger.Ledger`` keeps these in the order the master saw them; the
renderers (``fake-master``'s live log) and the verdicts read them without loading any server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import orjson

BARRIER_TYPE = "imdiag:barrier"


@dataclass(frozen=True)
class Arrival:
    """The master's handler ran for one event."""

    seq: int
    t: float  # seconds since the ledger started
    sid: str
    namespace: str
    event: str
    type: str | None
    message_id: str | None
    digest: str  # sha256 of the message as canonical JSON (sorted keys), 16 hex digits
    bytes: int  # the received message re-encoded as compact UTF-8 JSON
    message: Any = None  # kept only when the ledger records messages (``keep_messages``)


@dataclass(frozen=True)
class ServerError:
    """The master logged an error (e.g. a JSON decode error while dispatching a packet)."""

    seq: int
    t: float
    logger: str
    message: str
    error: str  # the exception as the server saw it, or ""
    decode: bool  # the server says it received bytes it could not decode or dispatch


@dataclass(frozen=True)
class Connect:
    seq: int
    t: float
    sid: str
    namespace: str


@dataclass(frozen=True)
class Disconnect:
    seq: int
    t: float
    sid: str
    namespace: str
    reason: str


Entry = Arrival | ServerError | Connect | Disconnect


def _canonical(message: Any) -> bytes:
    try:
        return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # ints past 64 bits, which orjson refuses
        return json.dumps(message, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def canonical_digest(message: Any) -> str:
    """Digest that matches a message whatever encoder sent it (key order and escapes aside)."""
    return hashlib.sha256(_canonical(message)).hexdigest()[:16]


def reencoded_bytes(message: Any) -> int:
    try:
        return len(orjson.dumps(message))
    except TypeError:
        return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())


def digest_and_bytes(message: Any) -> tuple[str, int]:
    """``canonical_digest()`` and ``reencoded_bytes()`` from one serialization (sorted keys do
    not change its length): what a master computes for every arrival, 16 MB ones included."""
    canonical = _canonical(message)
    return hashlib.sha256(canonical).hexdigest()[:16], len(canonical)
