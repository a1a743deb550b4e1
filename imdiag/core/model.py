"""The result model: what was observed for one message, and the cell that holds its verdict.

Pure. Edges (the sweep, the replay, the probe) record an ``Observation``; ``imdiag.core.judge``
alone turns it into a verdict and a cause. The wire model only *predicts*; a verdict never
comes from it. Results stay typed until the JSON renderer.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imdiag.core.refusal import Refuser, SizeClose
from imdiag.core.sizing import Recommendation
from imdiag.core.wire import Encoder, LimitUnit, Transport
from imdiag.core.worker import ClientView


class Cause(str, enum.Enum):
    """Why a message did not reach the master's handler, as observed."""

    OVERSIZE_CLOSE = "oversize-close"  # websocket close 1009, HTTP 413, or 400 over maxPayload
    BATCHED_OVERSIZE = "batched-oversize"  # polling: fits alone, the POST that batched it did not
    SERVER_DECODE_ERROR = "server-decode-error"  # bytes arrived, the server failed to decode them
    SESSION_UNKNOWN = "session-unknown"  # a request reached a master node that does not know the session
    UPGRADE_BLOCKED = "upgrade-blocked"  # the websocket handshake is refused, polling works and offers it
    PROXY_ERROR = "proxy-error"  # a proxy or gateway refused, with no size signal (502, 504, its own page)
    HTTP_ERROR = "http-error"  # the master answered another non-200 status
    CONNECTION_CLOSED = "connection-closed"  # closed with another code, or reset, no size signal
    EMIT_ERROR = "emit-error"  # the sender could not encode or write the message
    TIMEOUT = "timeout"  # no answer from the master within the time allowed
    UNKNOWN = "unknown"  # the master saw later messages, not this one, and said nothing


# Causes that are a size signal: only these move a measured limit.
SIZE_CAUSES = frozenset({Cause.OVERSIZE_CLOSE, Cause.BATCHED_OVERSIZE})
# Causes that are about the path between client and master, not the message: a transport that
# meets one is diagnosed (with the fix), never measured from it.
PATH_CAUSES = frozenset({Cause.SESSION_UNKNOWN, Cause.UPGRADE_BLOCKED, Cause.PROXY_ERROR})


class Barrier(str, enum.Enum):
    """How the packet sent after a message was answered: what proves the message was parsed."""

    PASSED = "passed"  # the master's ledger recorded a later message on this connection
    PARSED = "parsed"  # a live server answered a later protocol packet (no ledger to ask)
    TIMEOUT = "timeout"  # no answer within the time allowed
    CLOSED = "closed"  # the connection ended first
    RELAYED = "relayed"  # a tap saw the upstream take it and refuse nothing (``barrier_answer`` says how)
    NONE = "none"  # no barrier was sent (nothing was sent, or the connection never opened)


class Ack(str, enum.Enum):
    NOT_ASKED = "not-asked"
    RECEIVED = "received"  # the master's handler called the ack callback
    MISSING = "missing"  # asked, never came


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP refusal of one request of the session other than the message's own POST."""

    request: str  # "websocket handshake", "handshake GET", "namespace CONNECT POST", "GET", "barrier POST"
    status: int
    server: str = ""  # the Server header
    body: str = ""


@dataclass(frozen=True)
class Observation:
    """Everything seen while one message (or probe frame) was sent, as plain data."""

    body_bytes: int  # bytes of the frame or POST body that carried the message
    body_chars: int | None = None  # the same in characters (code points), when known
    # Of those, written before the server answered: all of them unless its answer (a close, a
    # refused POST) came first and the client stopped writing. None: nothing was written.
    written_bytes: int | None = None
    packets_in_body: int = 1
    message_bytes: int | None = None  # this message's frame alone (differs when batched)
    message_chars: int | None = None  # that frame in characters (code points), when known
    advertised_max_payload: int | None = None  # from the Engine.IO handshake
    connect_error: str = ""  # no connection could be opened for this message
    encode_error: str = ""
    send_error: str = ""  # raised by the client transport while writing
    emit_error: str = ""  # a client library's emit() raised: nothing was queued
    client_kept: str = ""  # a client library never wrote it: "dropped" (its session closed) or "pending"
    http_status: int | None = None
    http_body: str = ""
    http_server: str = ""  # the Server header of the POST's answer
    close_code: int | None = None  # websocket close code sent by the server
    close_reason: str = ""
    close_error: str = ""  # how the transport broke, if it did
    closed: bool = False  # the connection ended before the barrier answered
    ended_by: HttpAnswer | None = None  # another request of the session was refused: a GET, the handshake...
    upgrade_offered: bool = False  # websocket: the polling handshake on this URL works and offers the upgrade
    barrier: Barrier = Barrier.NONE
    barrier_answer: str = ""  # a live server's answer to the barrier, e.g. CONNECT_ERROR 'Invalid namespace'
    ack: Ack = Ack.NOT_ASKED
    ledger_seq: int | None = None  # the master recorded this message (its ledger position)
    ledger_bytes: int | None = None
    server_errors: tuple[str, ...] = ()  # errors the master logged meanwhile
    disconnect_reason: str = ""  # the master's own disconnect reason for this connection
    disconnect_cause: str = ""  # the cause the master gives for it (engine.io: "payload too large")
    held: str = ""  # why a tap kept it from the master (``--hold-oversize``)
    size_close: SizeClose | None = None  # a close that is this server's size refusal, where established
    seconds: float = 0.0  # writing the frame / POST until the transport's answer

    @property
    def acked(self) -> bool:
        return self.ack is Ack.RECEIVED

    def non_defaults(self) -> dict[str, Any]:
        """The fields that differ from their default (``barrier`` and ``packets_in_body`` always):
        the report's form."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("barrier", "packets_in_body") or value != f.default:
                if isinstance(value, enum.Enum):
                    value = value.value
                elif dataclasses.is_dataclass(value) and not isinstance(value, type):
                    value = dataclasses.asdict(value)
                out[f.name] = value
        return out


@dataclass(frozen=True)
class Verdict:
    delivered: bool
    cause: Cause | None
    evidence: str
    refused_by: Refuser | None = None  # who refused, when something answered with a refusal


@dataclass(frozen=True)
class Cell:
    """One message sent to one master at one limit over one transport, and its verdict."""

    type: str
    transport: Transport
    limit: int
    encoder: Encoder
    master: str  # "python", "node", "asgi" or "live"
    label: str  # "natural", "ladder", "L-1", "L", "L+1", "replay"...
    wire_bytes: int  # bytes of the frame / POST body that carried it
    message_bytes: int  # this message's frame alone
    json_bytes: int
    js_length: int
    predicted_delivered: bool | None
    delivered: bool
    cause: Cause | None
    evidence: str
    observed: Observation
    index: int | None = None  # replay: the message's index in its file
    message_id: str | None = None
    refused_by: Refuser | None = None  # who refused it: the master, a proxy between, or unknown
    client: ClientView | None = None  # the worker's view, when a client library was the worker
    # What the master's limit counts on this transport (its server rule; None: not known, a live master)
    limit_unit: LimitUnit | None = None

    @property
    def message_chars(self) -> int | None:
        """This message's frame in characters (code points), when known."""
        return self.observed.message_chars

    @property
    def disagrees(self) -> bool:
        """The model predicted one thing and the master did another."""
        return self.predicted_delivered is not None and self.predicted_delivered != self.delivered


@dataclass(frozen=True)
class MasterInfo:
    """A master: which server, where, at which limit, its software versions, and (once a lane
    measured it) the transport and the maxPayload it advertised."""

    server: str  # "python", "node", "asgi" or "live"
    url: str  # http://127.0.0.1:PORT
    limit: int
    versions: Mapping[str, str] = field(default_factory=dict)
    namespace: str = "/"
    path: str = "/socket.io/"
    transport: Transport | None = None
    advertised_max_payload: int | None = None
    limit_unit: LimitUnit | None = None  # what its limit counts on that transport (its server rule)


@dataclass(frozen=True)
class CaptureInfo:
    """The capture a replay read."""

    file: str
    format: str  # "json" or "jsonl"
    messages: int
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayDetails:
    """What a replay adds to its cells: the capture, notes, and the fixes as numbers."""

    capture: CaptureInfo
    notes: tuple[str, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()


class Outcome(str, enum.Enum):
    """What a tap saw happen to a message it relayed (the verdict still comes from the judge)."""

    IN_FLIGHT = "in-flight"  # nothing decided it yet (or before the tap stopped)
    PASSED = "passed"  # the upstream took it and refused nothing
    ACKED = "acked"  # the master acknowledged it
    REFUSED = "refused"  # the upstream refused it: close 1009, HTTP 413/400...
    LOST = "lost"  # the session ended before anything showed it passed
    HELD = "held"  # --hold-oversize kept it from the master


@dataclass(frozen=True)
class TapMessage:
    """What a tap adds to the cell of a message it relayed (same ``index``)."""

    index: int
    t: float  # seconds since the tap started, when the message arrived whole
    sid: str  # the Engine.IO session
    namespace: str
    event: str
    ack_id: int | None
    packet_bytes: int  # the Engine.IO packet's own bytes (text part)
    attachment_bytes: tuple[int, ...]  # each binary attachment as sent (frame, or ``b`` record)
    max_payload: int | None  # the upstream's maxPayload for this session
    over_limit: bool  # flagged: a frame or POST body over max_payload
    outcome: Outcome
    proof: str  # what decided the outcome
    refused_by: str = ""  # master, proxy or unknown (refused or held)
    refused_by_evidence: str = ""


@dataclass(frozen=True)
class TapSession:
    """One Engine.IO session that crossed the tap."""

    sid: str
    peer: str  # the worker's address
    transport: Transport  # the first one
    opened_t: float
    max_payload: int | None
    ping_interval_ms: int | None
    upgrades: tuple[str, ...]
    upgraded_t: float | None = None
    namespaces: tuple[str, ...] = ()
    messages: int = 0
    closed_t: float | None = None
    closed_by: str = ""  # master, worker, tap, or "" while open
    close_reason: str = ""
    close_code: int | None = None
    refused: bool = False  # the session ended with a refusal
    reconnect_of: str = ""  # the earlier session of the same worker, when one was refused


@dataclass(frozen=True)
class TypeStats:
    """The live table's row: one (namespace, event, type)."""

    namespace: str
    event: str
    type: str
    count: int
    bytes_min: int
    bytes_p50: int
    bytes_max: int
    over_limit: int
    outcomes: Mapping[str, int]  # Outcome value -> messages
    max_payload: int | None
    last_refusal: str = ""


@dataclass(frozen=True)
class TapDetails:
    """What a tap adds to its cells: the upstream, the sessions, each message's path."""

    upstream: str
    listen: str
    hold_oversize: bool
    stopped_by: str  # duration, ctrl-c, or the error that ended it
    sessions: tuple[TapSession, ...]
    messages: tuple[TapMessage, ...]
    by_type: tuple[TypeStats, ...]
    messages_not_kept: int = 0  # over the report's cap: counted in by_type, no cell


@dataclass(frozen=True)
class Report:
    command: str
    settings: Mapping[str, Any]
    cells: Sequence[Cell]
    masters: Sequence[MasterInfo] = ()
    interrupted: bool = False
    elapsed_s: float = 0.0
    details: ReplayDetails | TapDetails | None = None
