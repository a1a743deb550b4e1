"""The worker's view: what a real client library reported while it sent each message.

Pure. A real client (socket.io-client in Node, python-socketio's ``AsyncClient``) is driven at
the edge (``imdiag.clients.library``), which records what the library itself reports as typed
events on one timeline: each emit and what it returned, each batch the library handed to its
transport (with the bytes its own encoder made), each connect (socket id, ``recovered``),
disconnect (reason, close code, HTTP status as the library gives them) and reconnection
attempt. ``client_view()`` turns that timeline into one ``ClientView`` per message: the
incident's "emitted, connected: true", next to the master's ledger.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from imdiag.core.units import format_bytes


class ClientKind(str, enum.Enum):
    """Which client plays the worker."""

    IMDIAG = "imdiag"  # imdiag's own Engine.IO client: exact bytes, every close code
    NODE = "node"  # socket.io-client (the pinned npm package), in a Node.js process
    PYTHON = "python"  # python-socketio's AsyncClient, in this process


LIBRARY_NAMES = {ClientKind.NODE: "socket.io-client", ClientKind.PYTHON: "python-socketio"}

# --- the timeline a library client reports (times in seconds on the client's own clock) --------


@dataclass(frozen=True)
class Connected:
    """A session began: the first connection, or the library reconnected."""

    t: float
    sid: str  # the Socket.IO socket id (socket.id / get_sid(namespace))
    recovered: bool  # socket.recovered: the server restored the session (connectionStateRecovery)
    transport: str  # "polling" or "websocket"
    extensions: str = ""  # negotiated websocket extensions, e.g. "permessage-deflate"


@dataclass(frozen=True)
class Upgraded:
    """The session moved to another transport (the default's polling -> websocket upgrade)."""

    t: float
    transport: str
    extensions: str = ""


@dataclass(frozen=True)
class Received:
    """An event from the master (with --csr, its ticks: what a client recovers a session with)."""

    t: float
    event: str
    sid: str | None  # the session it came on


@dataclass(frozen=True)
class Disconnected:
    """The session ended, as the library reported it."""

    t: float
    sid: str  # the session that ended
    reason: str  # the library's reason: "transport close", "transport error", "server disconnect"...
    description: str = ""  # the library's details, in its words
    close_code: int | None = None  # the websocket close code the library reports
    close_reason: str = ""
    http_status: int | None = None  # the HTTP status the library reports
    will_reconnect: bool | None = None  # the library's own answer (socket.active), when it gives one


@dataclass(frozen=True)
class GaveUp:
    """The library will not reconnect by itself."""

    t: float
    signal: str  # how the library said so, e.g. python-socketio's "__disconnect_final"


@dataclass(frozen=True)
class Emitted:
    """``emit()`` returned (or raised), and the socket's state just before and after."""

    t: float
    seq: int
    error: str  # what emit() raised, "" when it returned
    connected_before: bool
    sid_before: str | None
    connected_after: bool
    sid_after: str | None
    buffered: bool  # kept in the library's send buffer (it was disconnected)


@dataclass(frozen=True)
class Flushed:
    """The library handed a batch to its transport: one POST body, or one frame per packet."""

    t: float
    seqs: tuple[int, ...]  # the emitted messages in it (other packets - pongs - are not listed)
    body_bytes: int  # the POST body (polling), or the sum of the frames (websocket), by the library's encoder
    packets: int  # all packets in the batch, pongs included
    frame_bytes: tuple[int, ...]  # each listed message's own packet, in seqs order
    transport: str
    sid: str | None  # the socket id at the time


@dataclass(frozen=True)
class Written:
    """The transport took the batch: the websocket took the frames, or the POST was answered 2xx."""

    t: float
    seqs: tuple[int, ...]
    http_status: int | None = None


@dataclass(frozen=True)
class Dropped:
    """The session closed while the library still held these messages."""

    t: float
    in_flight: tuple[int, ...]  # handed to the transport, never confirmed
    unsent: tuple[int, ...]  # never handed to the transport: the library discarded them
    http_status: int | None = None  # the in-flight POST's answer, if the library got one
    error: str = ""  # how the in-flight write failed, as the library got it


@dataclass(frozen=True)
class Replaced:
    """imdiag closed the client and started a new one: the library would not come back."""

    t: float
    why: str


@dataclass(frozen=True)
class ConnectFailed:
    """A connection attempt failed (connect_error)."""

    t: float
    message: str


ClientEvent = (Connected | Upgraded | Disconnected | GaveUp | ConnectFailed | Emitted | Flushed | Written | Dropped
               | Received | Replaced)


# --- the worker's view of one message ------------------------------------------------------------


class Sent(str, enum.Enum):
    """What became of the message inside the client."""

    WRITTEN = "written"  # the transport took it
    IN_FLIGHT = "in-flight"  # handed to the transport, then the session closed
    DROPPED = "dropped"  # the session closed before the library handed it over: discarded
    PENDING = "pending"  # still in the library's send buffer when the run ended
    RAISED = "raised"  # emit() raised: nothing was queued


@dataclass(frozen=True)
class ClientView:
    """One message as the worker saw it. The JSON report's ``client`` object."""

    client: str  # "node" or "python"
    library: str  # e.g. "socket.io-client 4.8.1"
    seq: int  # the order in which the lane emitted its messages
    t: float  # when emit() was called, seconds on the client's clock
    emit: str  # "returned" or "raised"
    emit_error: str
    connected: bool  # socket.connected when emit() was called
    sid: str | None  # socket.id then
    connected_after: bool
    sid_after: str | None
    buffered: bool  # emitted while disconnected: the library kept it for later
    sent: Sent
    transport: str | None  # the transport that carried it ("polling" or "websocket")
    sent_sid: str | None  # the session it went out on
    body_bytes: int | None  # the POST body or frame that carried it, by the library's encoder
    frame_bytes: int | None  # its own packet, by the library's encoder
    model_frame_bytes: int  # the same packet by imdiag's wire model
    packets_in_body: int | None
    write_status: int | None  # the HTTP status of the POST that carried it, as the library got it
    write_error: str  # how the write failed, as the library got it
    extensions: str  # websocket extensions of the session that carried it ("permessage-deflate": compressed)
    disconnect: Disconnected | None  # the disconnect of the session it went out on (or was emitted on)
    disconnect_after_s: float | None  # from emit() to that disconnect
    reconnected: bool | None  # after that disconnect: did the client come back (None: no disconnect)
    reconnect_s: float | None  # from the disconnect to the next connect
    next_sid: str | None
    recovered: bool | None  # socket.recovered of the next session
    gave_up: bool  # the library said it would not reconnect
    replaced: bool  # imdiag replaced the client afterwards

    @property
    def bytes_agree(self) -> bool | None:
        """The library's packet against imdiag's wire model (None: nothing was encoded)."""
        return None if self.frame_bytes is None else self.frame_bytes == self.model_frame_bytes

    @property
    def new_session(self) -> bool | None:
        if self.next_sid is None:
            return None
        return self.next_sid != self.disconnect_sid

    @property
    def disconnect_sid(self) -> str | None:
        return self.disconnect.sid if self.disconnect is not None else None


def _first_disconnect(events: Sequence[ClientEvent], start: int) -> tuple[int, Disconnected | None]:
    for i in range(start, len(events)):
        event = events[i]
        if isinstance(event, Disconnected):
            return i, event
    return len(events), None


def client_view(events: Sequence[ClientEvent], seq: int, *, client: str, library: str, model_frame_bytes: int,
                pending: bool = False) -> ClientView:
    """The worker's view of message ``seq`` from its client's timeline. ``pending``: the library
    still held it when the run ended."""
    emit_at = next((i for i, e in enumerate(events) if isinstance(e, Emitted) and e.seq == seq), None)
    if emit_at is None:
        raise ValueError(f"message {seq} was never emitted")
    emitted = events[emit_at]
    assert isinstance(emitted, Emitted)
    # Node reports a flush made inside emit() before emit() returns: look on both sides of it.
    flush_at, flushed = next(((i, e) for i, e in enumerate(events) if isinstance(e, Flushed) and seq in e.seqs),
                             (None, None))
    written_by = next((e for e in events if isinstance(e, Written) and seq in e.seqs), None)
    written = written_by is not None
    dropped = next((e for e in events if isinstance(e, Dropped) and (seq in e.in_flight or seq in e.unsent)), None)
    if emitted.error:
        sent = Sent.RAISED
    elif written:
        sent = Sent.WRITTEN
    elif dropped is not None:
        sent = Sent.IN_FLIGHT if seq in dropped.in_flight else Sent.DROPPED
    elif pending or flushed is None:
        sent = Sent.PENDING
    else:
        sent = Sent.IN_FLIGHT
    # The session the message went out on (or, unsent, the one it was emitted on) and its end.
    start = max(emit_at, flush_at) if flush_at is not None else emit_at
    sent_sid = flushed.sid if flushed is not None else (emitted.sid_before if emitted.connected_before else None)
    disconnect_at, disconnect = len(events), None
    if sent is not Sent.RAISED and (emitted.connected_before or flushed is not None):
        disconnect_at, disconnect = _first_disconnect(events, start)
    reconnected = reconnect_s = next_sid = recovered = None
    gave_up = replaced = False
    if disconnect is not None:
        for e in events[disconnect_at + 1:]:
            if isinstance(e, Connected):
                reconnected, reconnect_s = True, round(e.t - disconnect.t, 3)
                next_sid, recovered = e.sid, e.recovered
                break
            if isinstance(e, GaveUp):
                gave_up = True
            if isinstance(e, Replaced):
                # A new client, not this one reconnecting: the library never came back by itself.
                replaced = True
                break
        if reconnected is None:
            reconnected = False
        gave_up = gave_up or disconnect.will_reconnect is False
    index = flushed.seqs.index(seq) if flushed is not None else -1
    own = flushed.frame_bytes[index] if flushed is not None else None
    # Over websocket each packet is a frame of its own; over polling the batch is one POST body.
    body = (own if flushed.transport == "websocket" else flushed.body_bytes) if flushed is not None else None
    packets = (1 if flushed.transport == "websocket" else flushed.packets) if flushed is not None else None
    extensions = ""
    for e in events[:start + 1]:
        if isinstance(e, (Connected, Upgraded)):
            extensions = e.extensions
    return ClientView(
        client=client, library=library, seq=seq, t=round(emitted.t, 3),
        emit="raised" if emitted.error else "returned", emit_error=emitted.error,
        connected=emitted.connected_before, sid=emitted.sid_before,
        connected_after=emitted.connected_after, sid_after=emitted.sid_after,
        buffered=emitted.buffered, sent=sent,
        transport=flushed.transport if flushed is not None else None, sent_sid=sent_sid,
        body_bytes=body,
        frame_bytes=own,
        model_frame_bytes=model_frame_bytes,
        packets_in_body=packets,
        write_status=written_by.http_status if written_by is not None else dropped.http_status if dropped else None,
        write_error=dropped.error if dropped is not None and written_by is None else "",
        extensions=extensions if flushed is not None and flushed.transport == "websocket" else "",
        disconnect=disconnect,
        disconnect_after_s=round(disconnect.t - emitted.t, 3) if disconnect is not None else None,
        reconnected=reconnected, reconnect_s=reconnect_s, next_sid=next_sid, recovered=recovered,
        gave_up=gave_up, replaced=replaced,
    )


# --- words for people ------------------------------------------------------------------------------


def worker_says(view: ClientView) -> str:
    """What the worker could have logged: ``emitted, connected: true (socket X)``."""
    if view.emit == "raised":
        return f"emit() raised {view.emit_error}"
    text = f"emitted, connected: {'true' if view.connected else 'false'}"
    if view.sid:
        text += f" (socket {view.sid})"
    if view.buffered:
        text += "; buffered by the client"
    return text


def disconnect_text(d: Disconnected) -> str:
    """``transport close (close 1009)`` / ``transport error (HTTP 413)``: the library's words."""
    details = []
    if d.close_code is not None:
        details.append(f"close {d.close_code}")
    if d.http_status is not None:
        details.append(f"HTTP {d.http_status}")
    if d.description and not details:
        details.append(d.description)
    return d.reason + (f" ({', '.join(details)})" if details else "")


def sent_says(view: ClientView) -> str:
    """How the message left the client, and whether the bytes match the model."""
    words = {
        Sent.WRITTEN: "written", Sent.IN_FLIGHT: "handed to the transport, then the session closed",
        Sent.DROPPED: "never written: the session closed first and the client discarded it",
        Sent.PENDING: "still in the client's send buffer at the end", Sent.RAISED: "not queued",
    }
    text = words[view.sent]
    if view.body_bytes is not None and view.transport:
        unit = "POST body" if view.transport == "polling" else "frame"
        text += f" ({view.transport}, {format_bytes(view.body_bytes)} {unit}"
        if "permessage-deflate" in view.extensions:
            text += ", permessage-deflate on"
        text += ")"
    if view.sent is Sent.IN_FLIGHT and view.write_status is not None:
        text += f"; the POST was answered HTTP {view.write_status}"
    elif view.sent is Sent.IN_FLIGHT and view.write_error:
        text += f"; the write failed: {view.write_error}"
    if view.bytes_agree is False and view.frame_bytes is not None:
        text += (f"; the client's packet is {format_bytes(view.frame_bytes)}, imdiag's wire model "
                 f"says {format_bytes(view.model_frame_bytes)}")
    return text


def next_says(view: ClientView) -> str:
    """What the client did after the message: disconnect, reconnect, session recovered or new."""
    if view.disconnect is None:
        return ""
    parts = [f"disconnected {view.disconnect_after_s:g} s later: {disconnect_text(view.disconnect)}"]
    if view.reconnected:
        kind = ("the same session (socket.recovered: true)" if view.recovered
                else "the same socket id" if not view.new_session else f"a new session ({view.next_sid})")
        parts.append(f"reconnected after {view.reconnect_s:g} s as {kind}")
    elif view.replaced:
        parts.append("the client did not reconnect by itself" + (" (the library gave up)" if view.gave_up else "")
                     + "; imdiag replaced it")
    elif view.gave_up:
        parts.append("the client gave up: it never reconnected")
    else:
        parts.append("not reconnected when the run ended")
    return "; ".join(parts)
