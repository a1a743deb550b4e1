"""The result model: what was observed for one message, and the verdict drawn from it.

Pure. Edges (the sweep, replay, probe) record an ``Observation``; ``judge()`` alone turns it
into a verdict and a cause. The wire model only *predicts*; a verdict never comes from it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imdiag.units import format_bytes
from imdiag.wire import Encoder, Transport


class Cause(str, enum.Enum):
    """Why a message did not reach the master's handler, as observed."""

    OVERSIZE_CLOSE = "oversize-close"  # websocket close 1009, HTTP 413, or 400 over maxPayload
    BATCHED_OVERSIZE = "batched-oversize"  # polling: fits alone, the POST that batched it did not
    SERVER_DECODE_ERROR = "server-decode-error"  # bytes arrived, the server failed to decode them
    HTTP_ERROR = "http-error"  # POST answered with another non-200 status
    CONNECTION_CLOSED = "connection-closed"  # closed with another code, or reset, no size signal
    EMIT_ERROR = "emit-error"  # the sender could not encode or write the message
    TIMEOUT = "timeout"  # no answer from the master within the time allowed
    UNKNOWN = "unknown"  # the master saw later messages, not this one, and said nothing


CLOSE_CODE_NAMES = {
    1000: "Normal Closure",
    1001: "Going Away",
    1002: "Protocol Error",
    1003: "Unsupported Data",
    1005: "No Status Received",
    1006: "Abnormal Closure",
    1007: "Invalid Payload",
    1008: "Policy Violation",
    1009: "Message Too Big",
    1011: "Internal Error",
}

HTTP_PAYLOAD_TOO_LARGE = 413
WS_MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True)
class Observation:
    """Everything seen while one message was sent, as plain data."""

    body_bytes: int  # bytes of the frame or POST body that carried the message
    packets_in_body: int = 1
    message_bytes: int | None = None  # this message's frame alone (differs when batched)
    advertised_max_payload: int | None = None  # from the Engine.IO handshake
    encode_error: str = ""
    send_error: str = ""  # raised by the client transport while writing
    http_status: int | None = None
    http_body: str = ""
    close_code: int | None = None  # websocket close code sent by the server
    close_reason: str = ""
    close_error: str = ""  # how the transport broke, if it did
    closed: bool = False  # the connection ended before the barrier answered
    barrier: str = "none"  # "passed" (master recorded a later message), "timeout", "closed", "none",
    # or "parsed" (a live master without a ledger answered a later protocol packet)
    ledger_seq: int | None = None  # the master recorded this message (its ledger position)
    ledger_bytes: int | None = None
    server_errors: tuple[str, ...] = ()  # errors the master logged meanwhile
    disconnect_reason: str = ""  # the master's own disconnect reason for this connection
    acked: bool = False  # a live master acknowledged it (Socket.IO ACK for its ack id)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", (), False) or k == "barrier"}


@dataclass(frozen=True)
class Verdict:
    delivered: bool
    cause: Cause | None
    evidence: str


def _close_text(code: int, reason: str) -> str:
    name = CLOSE_CODE_NAMES.get(code, "")
    label = f"{code} ({name})" if name else str(code)
    return f"the server closed the websocket with {label}" + (
        f", reason {reason!r}" if reason else ", no reason text"
    )


def judge(obs: Observation) -> Verdict:
    """The one place where observations become verdicts."""
    if obs.ledger_seq is not None:
        recorded = f"the master recorded it (ledger #{obs.ledger_seq}"
        recorded += f", {format_bytes(obs.ledger_bytes)} re-encoded)" if obs.ledger_bytes is not None else ")"
        return Verdict(True, None, recorded)
    if obs.acked:
        return Verdict(True, None, "the master acknowledged it (Socket.IO ACK): its handler ran")
    if obs.encode_error:
        return Verdict(False, Cause.EMIT_ERROR, f"not sent: {obs.encode_error}")
    sent = f"{format_bytes(obs.body_bytes)} " + ("POST body" if obs.http_status is not None else "frame")
    if obs.http_status == HTTP_PAYLOAD_TOO_LARGE:
        return Verdict(False, Cause.OVERSIZE_CLOSE, f"{sent}: HTTP 413 {obs.http_body!r}")
    if obs.close_code == WS_MESSAGE_TOO_BIG:
        return Verdict(False, Cause.OVERSIZE_CLOSE, f"{sent}: {_close_text(obs.close_code, obs.close_reason)}")
    if obs.http_status is not None and obs.http_status != 200:
        over = obs.advertised_max_payload is not None and obs.body_bytes > obs.advertised_max_payload
        text = f"{sent}: HTTP {obs.http_status} {obs.http_body!r}"
        if over:
            assert obs.advertised_max_payload is not None
            text += f"; the body is over the advertised maxPayload {format_bytes(obs.advertised_max_payload)}"
            if obs.disconnect_reason:
                text += f"; the master disconnected the client ({obs.disconnect_reason})"
            alone = obs.message_bytes if obs.message_bytes is not None else obs.body_bytes
            if obs.packets_in_body > 1 and alone <= obs.advertised_max_payload:
                text += f"; this message alone is {format_bytes(alone)}, it was batched with {obs.packets_in_body - 1} other packet(s)"
                return Verdict(False, Cause.BATCHED_OVERSIZE, text)
            return Verdict(False, Cause.OVERSIZE_CLOSE, text)
        return Verdict(False, Cause.HTTP_ERROR, text)
    if obs.server_errors:
        shown = obs.server_errors[0]
        more = f" (+{len(obs.server_errors) - 1} more)" if len(obs.server_errors) > 1 else ""
        status = f"; the POST was answered HTTP {obs.http_status}" if obs.http_status is not None else ""
        return Verdict(False, Cause.SERVER_DECODE_ERROR, f"{sent}{status}; the master logged: {shown}{more}")
    if obs.close_code is not None or obs.close_error or obs.closed:
        parts = [_close_text(obs.close_code, obs.close_reason)] if obs.close_code is not None else []
        if obs.close_error:
            parts.append(obs.close_error)
        if obs.send_error:
            parts.append(f"while writing: {obs.send_error}")
        if obs.disconnect_reason:
            parts.append(f"master's reason: {obs.disconnect_reason}")
        return Verdict(False, Cause.CONNECTION_CLOSED, f"{sent}: " + ("; ".join(parts) or "the connection ended"))
    if obs.send_error:
        return Verdict(False, Cause.EMIT_ERROR, f"{sent}: write failed: {obs.send_error}")
    if obs.barrier == "timeout":
        return Verdict(False, Cause.TIMEOUT, f"{sent}: the master answered nothing in time")
    if obs.barrier == "parsed":
        return Verdict(
            False, Cause.UNKNOWN,
            f"{sent}: the server parsed past it (it answered a later packet) and closed nothing, but a live "
            "master has no ledger: delivery cannot be proven (use --ack if the master acknowledges)",
        )
    if obs.barrier == "passed":
        return Verdict(
            False, Cause.UNKNOWN,
            f"{sent}: the master recorded the next message on this connection but not this one, and logged no error",
        )
    return Verdict(False, Cause.UNKNOWN, f"{sent}: no observation decided it")


@dataclass(frozen=True)
class Cell:
    """One message sent to one master at one limit over one transport, and its verdict."""

    type: str
    transport: Transport
    limit: int
    encoder: Encoder
    master: str  # "python" or "node"
    label: str  # "natural", "ladder", "L-1", "L", "L+1", "replay"...
    wire_bytes: int  # bytes of the frame / POST body that carried it
    message_bytes: int  # this message's frame alone
    json_bytes: int
    js_length: int
    predicted_delivered: bool | None
    delivered: bool
    cause: Cause | None
    evidence: str
    observed: Mapping[str, Any] = field(default_factory=dict)
    index: int | None = None  # replay: the message's index in its file
    message_id: str | None = None

    @property
    def disagrees(self) -> bool:
        """The model predicted one thing and the master did another."""
        return self.predicted_delivered is not None and self.predicted_delivered != self.delivered


@dataclass(frozen=True)
class MasterRun:
    """A master a report measured: which server, at which limit, and its software versions."""

    server: str
    limit: int
    transport: Transport | None
    url: str
    versions: Mapping[str, str]
    advertised_max_payload: int | None = None


@dataclass(frozen=True)
class Report:
    command: str
    settings: Mapping[str, Any]
    cells: Sequence[Cell]
    masters: Sequence[MasterRun] = ()
    interrupted: bool = False
    elapsed_s: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
