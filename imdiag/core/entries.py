"""What a master records: arrivals, errors, connects and disconnects, and the canonical digest.

Pure data. ``imdiag.masters.ledger.Ledger`` keeps these in the order the master saw them; the
renderers (``fake-master``'s live log) and the verdicts read them without loading any server.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from imdiag.core.wire import Encoder, encode_json_bytes

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
    digest: str  # sha256 of the message as canonical JSON (sorted keys), 16 hex digits ("": none)
    bytes: int | None  # the received message re-encoded as compact UTF-8 JSON (None: not counted)
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
    sid: str = ""  # the connection it happened on, when the server says (socket.io sid, else engine.io's)
    body_bytes: int | None = None  # the POST body's declared size (Content-Length), for polling


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
    cause: str = ""  # what the server gives as the reason's cause (engine.io: "payload too large")


Entry = Arrival | ServerError | Connect | Disconnect


@dataclass(frozen=True)
class MasterSide:
    """What a master's ledger says beyond arrivals, over some entries, for one connection."""

    decode_errors: tuple[str, ...] = ()  # every decode error logged meanwhile, as "message: error"
    disconnect_reason: str = ""  # the master's reason for ending that connection's session
    disconnect_cause: str = ""  # and the cause it gives for it (engine.io: "payload too large")


LedgerKey = tuple[str, str]  # ("id", message id) or ("digest", canonical digest)


def ledger_key(message_id: str | None, digest: str | None) -> LedgerKey | None:
    """How the ledger names a sent message: by its id when it has one, else by the digest of what
    the master decodes (None: neither, it cannot be found)."""
    if message_id is not None:
        return ("id", message_id)
    return ("digest", digest) if digest else None


def match_arrivals(entries: Sequence[Entry], sent: Sequence[tuple[LedgerKey | None, int]]) -> list[Arrival | None]:
    """The arrival of each message ``sent`` (its ledger key, and the ledger's position before it
    was sent), in the order they were sent: messages with the same key take successive arrivals."""
    taken: set[int] = set()
    out: list[Arrival | None] = []
    for key, mark in sent:
        found = None if key is None else next(
            (e for e in entries if isinstance(e, Arrival) and e.seq >= mark and e.seq not in taken
             and (e.message_id if key[0] == "id" else e.digest) == key[1]), None)
        if found is not None:
            taken.add(found.seq)
        out.append(found)
    return out


def ledger_fields(arrival: Arrival | None, side: MasterSide) -> dict[str, Any]:
    """What a master's ledger adds to a message's ``Observation``: its arrival (position and bytes),
    the decode errors logged meanwhile, and how the master ended the session and why."""
    return {"ledger_seq": arrival.seq if arrival else None, "ledger_bytes": arrival.bytes if arrival else None,
            "server_errors": side.decode_errors, "disconnect_reason": side.disconnect_reason,
            "disconnect_cause": side.disconnect_cause}


def master_side(entries: Sequence[Entry], sid: str | None) -> MasterSide:
    """The decode errors among ``entries``, and how the master ended the session ``sid``."""
    errors = tuple(f"{e.message}: {e.error}" if e.error else e.message
                   for e in entries if isinstance(e, ServerError) and e.decode)
    ended = next((e for e in entries if isinstance(e, Disconnect) and e.sid == sid), None)
    if ended is None:
        return MasterSide(errors)
    return MasterSide(errors, ended.reason, ended.cause)


@dataclass
class Totals:
    """What a master saw over a session, for ``fake-master``'s summary on exit."""

    arrivals: Counter[str] = field(default_factory=Counter)  # by type
    arrival_bytes: Counter[str] = field(default_factory=Counter)  # by type
    decode_errors: int = 0
    other_errors: int = 0
    connects: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)  # by reason
    last_t: float = 0.0

    def add(self, entry: Entry) -> None:
        self.last_t = max(self.last_t, entry.t)
        if isinstance(entry, Arrival):
            kind = entry.type or "(no type)"
            self.arrivals[kind] += 1
            self.arrival_bytes[kind] += entry.bytes or 0
        elif isinstance(entry, ServerError):
            if entry.decode:
                self.decode_errors += 1
            else:
                self.other_errors += 1
        elif isinstance(entry, Connect):
            self.connects += 1
        else:
            self.disconnects[entry.reason] += 1


def canonical_json(message: Any) -> bytes:
    """The canonical form of a message: ``JSON.stringify``'s text with the keys sorted by code
    point, in UTF-8. Node's master computes the same (``canonicalText()`` in master.js), so both
    masters and the sender agree for anything JSON can carry: floats written as JS writes them
    (1.0 is 1), integers past 2**53 as the double they become, lone surrogates as ``\\udXXX``."""
    return encode_json_bytes(message, Encoder.NODE, sort_keys=True)


def digest_of(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()[:16]


def canonical_digest(message: Any) -> str:
    """Digest that matches a message whatever encoder sent it (key order and escapes aside)."""
    return digest_of(canonical_json(message))


def reencoded_bytes(message: Any) -> int:
    """Bytes of ``JSON.stringify(message)`` (key order does not change the count)."""
    return len(canonical_json(message))


def digest_and_bytes(message: Any) -> tuple[str, int]:
    """``canonical_digest()`` and ``reencoded_bytes()`` from one serialization (sorted keys do
    not change its length): what a master computes for every arrival, 16 MB ones included."""
    canonical = canonical_json(message)
    return digest_of(canonical), len(canonical)


DIGEST_FAILED = "the canonical digest of an arrival failed"


def message_id_of(message: Any) -> str | None:
    """A message's id, as every sender and the ledger name it: its ``id`` when that is a string."""
    found = message.get("id") if isinstance(message, dict) else None
    return found if isinstance(found, str) else None


def arrival_digest(message: Any, *, by_id: bool = False) -> tuple[str, int | None, str | None]:
    """What a master records of an arrival's content: its digest and ``reencoded_bytes()``.

    ``by_id``: the sender finds a message with an id (``message_id_of``) by that id, its ids
    being unique, and knows every size of it (a sweep made it): such a message is recorded as
    arrived, with neither digest nor bytes ``("", None, None)``: re-encoding a large message is
    most of a master's own work. The arrival is recorded whatever this does (a message the
    handler received is delivered; without a digest it is still found by its id): ``("", 0,
    why)`` when it fails, ``why`` being the error for the ledger line next to it."""
    try:
        if by_id and message_id_of(message) is not None:
            return "", None, None
        digest, size = digest_and_bytes(message)
    except Exception as exc:  # noqa: BLE001 - never lose an arrival to its digest
        return "", 0, f"{type(exc).__name__}: {exc}"
    return digest, size, None
