"""Follow the Engine.IO sessions a tap relays, and say what happened to each message. Pure.

The relay (``imdiag.relays.tap``) forwards bytes unchanged and reports here what crossed it:
HTTP heads and bodies, websocket frames and close frames, the end of each connection. The
``Tracker`` turns that into sessions (handshake, namespaces, upgrade, who closed them and how)
and messages (namespace, event, ack id, attachments, ``type``, exact sizes), and decides what
happened to each message from what the upstream did next, never from the message's size:

- *passed*: the upstream took it and refused nothing. Proof, in the order the upstream reads a
  connection: the POST that carried it was answered 200; the upstream answered a later packet of
  the same session (a CONNECT, an ACK, its next PING after the worker's PONG, the close reply);
  it refused a later frame; or, over websocket, it kept the session open ``SETTLE_S`` after
  taking the whole frame (websocket servers refuse at the frame header).
- *acked*: the master acknowledged it (the only proof of delivery a tap can see).
- *refused*: a 1009 close, an HTTP 413/400... with who answered it (``imdiag.core.refusal``).
- *lost*: the session ended (for another frame, or the upstream died) before anything showed
  it passed.

Each message becomes a ``Cell`` through the one judge (``imdiag.core.judge``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from imdiag.core.entries import message_id_of
from imdiag.core.frames import FrameHeader
from imdiag.core.http1 import Request, Response
from imdiag.core.judge import WS_MESSAGE_TOO_BIG, close_text, judged_cell
from imdiag.core.model import (
    Ack,
    Barrier,
    Cell,
    Observation,
    Outcome,
    TapDetails,
    TapMessage,
    TapSession,
    TypeStats,
)
from imdiag.core.refusal import Refusal, close_refusal, http_refusal
from imdiag.core.units import format_bytes
from imdiag.core.wire import (
    EIO_CLOSE,
    EIO_MESSAGE,
    EIO_OPEN,
    EIO_PING,
    EIO_PONG,
    EIO_UPGRADE,
    RECORD_SEPARATOR,
    SIO_ACK,
    SIO_BINARY_ACK,
    SIO_BINARY_EVENT,
    SIO_CONNECT,
    SIO_CONNECT_ERROR,
    SIO_DISCONNECT,
    SIO_EVENT,
    Encoder,
    OpenInfo,
    Transport,
    parse_event,
    parse_event_head,
    parse_open,
    parse_sio,
)

SETTLE_S = 1.0  # websocket: no refusal this long after the upstream took the whole frame
RECONNECT_WINDOW_S = 120.0  # a worker's new session this soon after a refused one is its reconnect
MAX_KEPT_MESSAGES = 100_000  # messages kept for the report; more are counted, not kept
NO_TYPE = "(no type)"
_SESSION_QUERY_KEYS = {"eio", "transport", "sid", "t", "b64", "j"}
_SERVER_DECODE_LIMIT = 1 << 20  # a master's frame or GET body is decoded up to this size
_CLOSED_KEPT = 10_000
_SEPARATOR = RECORD_SEPARATOR.encode()
_HEAD_BYTES = 4096  # a CONNECT's namespace and auth are read from this many bytes


@dataclass(frozen=True)
class TapSettings:
    """``imdiag tap``'s options, parsed."""

    upstream_host: str
    upstream_port: int
    tls: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = 3001
    path: str = "/socket.io/"
    duration_s: float | None = None  # None: until Ctrl-C
    hold_oversize: bool = False
    insecure: bool = False
    record_path: str | None = None

    @property
    def upstream(self) -> str:
        host = f"[{self.upstream_host}]" if ":" in self.upstream_host else self.upstream_host
        return f"{'https' if self.tls else 'http'}://{host}:{self.upstream_port}"

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream, "listen": self.listen, "path": self.path, "duration_s": self.duration_s,
            "hold_oversize": self.hold_oversize, "insecure": self.insecure, "record": self.record_path,
            "settle_s": SETTLE_S,
        }


# --- events: what the tap shows as it happens ---------------------------------------------------


@dataclass(frozen=True)
class _Event:
    t: float  # seconds since the tap started


@dataclass(frozen=True)
class SessionOpened(_Event):
    session: TapSession


@dataclass(frozen=True)
class SessionClosed(_Event):
    session: TapSession  # closed_by, close_reason, close_code say how


@dataclass(frozen=True)
class NamespaceJoined(_Event):
    sid: str
    namespace: str
    accepted: bool
    detail: str  # the socket's id, or the master's refusal


@dataclass(frozen=True)
class Upgraded(_Event):
    sid: str
    detail: str = ""  # why it failed, when it did


@dataclass(frozen=True)
class Reconnected(_Event):
    sid: str
    previous: TapSession
    candidates: int  # refused sessions of workers that look the same (1 = unambiguous)


@dataclass(frozen=True)
class Oversize(_Event):
    """A frame or POST body over the session's maxPayload, flagged as it arrives."""

    sid: str
    transport: Transport
    frame_bytes: int
    max_payload: int
    held: bool


@dataclass(frozen=True)
class Settled(_Event):
    """What happened to a message is known: the tap's record of it and its cell, judged."""

    message: TapMessage
    cell: Cell  # the verdict of the one judge, from what the tap observed


@dataclass(frozen=True)
class LateAck(_Event):
    """The master acknowledged a message that had already passed."""

    message: TapMessage


@dataclass(frozen=True)
class Unreachable(_Event):
    """A worker connected and the upstream could not be reached: the worker was reset."""

    peer: str  # the worker's address
    error: str


@dataclass(frozen=True)
class Captured(_Event):
    """A worker's message as it arrived whole, for ``--record``."""

    message: Any
    event: str
    namespace: str


TapEvent = (SessionOpened | NamespaceJoined | Upgraded | SessionClosed | Reconnected | Oversize | Settled
            | LateAck | Unreachable | Captured)


@dataclass(frozen=True)
class Hold:
    """``--hold-oversize``: what the relay answers the worker instead of forwarding."""

    close_code: int | None = None  # websocket: close the worker's connection with this code
    status: int | None = None  # polling: answer the POST with this response
    response: bytes = b""


# --- internal state ---------------------------------------------------------------------------


@dataclass
class _Message:
    index: int
    t: float
    sid: str
    conn: int
    transport: Transport
    namespace: str
    event: str
    ack_id: int | None
    type: str
    message_id: str | None
    encoder: Encoder
    json_bytes: int
    js_length: int
    packet_bytes: int
    wire_bytes: int
    packets_in_body: int
    max_payload: int | None
    attachments_expected: int
    attachment_bytes: list[int] = field(default_factory=list)
    over_limit: bool = False
    seq: int = 0  # order among the session's worker packets (its last frame)
    forwarded_at: float | None = None
    exchange: int | None = None  # the POST that carried it
    outcome: Outcome = Outcome.IN_FLIGHT
    proof: str = ""
    acked: bool = False
    refused_by: tuple[str, str] | None = None  # who refused (master, proxy, unknown, tap) and the evidence
    answer: Observation | None = None  # the transport-level part of its observation
    cut: str = ""  # the worker stopped sending the POST inside this message: what is known of its size

    def key(self) -> tuple[str, str, str]:
        return self.namespace, self.event, self.type


@dataclass
class _Session:
    sid: str
    peer: str
    key: tuple[Any, ...]
    transport: Transport
    opened_t: float
    open_info: OpenInfo
    server_header: str
    upgraded_t: float | None = None
    namespaces: dict[str, str] = field(default_factory=dict)
    messages: int = 0
    closed_t: float | None = None
    closed_by: str = ""
    close_reason: str = ""
    close_code: int | None = None
    refused: bool = False
    reconnect_of: str = ""
    reconnected: bool = False  # a later session was matched to this one
    seq: int = 0
    inflight: list[_Message] = field(default_factory=list)
    assembling: _Message | None = None  # a binary event waiting for its attachments
    acks: dict[tuple[str, int], _Message] = field(default_factory=dict)
    connect_seq: dict[str, int] = field(default_factory=dict)
    pong_seq: int | None = None
    worker_close_seq: int | None = None
    ws_conn: int | None = None  # the websocket that carries it (direct, or once upgraded)

    def record(self) -> TapSession:
        info = self.open_info
        return TapSession(
            sid=self.sid, peer=self.peer, transport=self.transport, opened_t=self.opened_t,
            max_payload=info.max_payload, ping_interval_ms=info.ping_interval_ms, upgrades=info.upgrades,
            upgraded_t=self.upgraded_t, namespaces=tuple(self.namespaces), messages=self.messages,
            closed_t=self.closed_t, closed_by=self.closed_by, close_reason=self.close_reason,
            close_code=self.close_code, refused=self.refused, reconnect_of=self.reconnect_of,
        )


@dataclass
class _Conn:
    peer: str
    sid: str | None = None  # websocket: the session it carries
    websocket: bool = False
    request: Request | None = None  # the websocket's handshake
    response: Response | None = None
    frame_bytes: int = 0  # the worker's message being received: bytes announced so far
    flagged: bool = False  # that message was flagged oversize
    in_progress: bool = False  # a worker data frame is being forwarded
    holding: bool = False  # --hold-oversize answered for the message in progress
    refusal: tuple[int, str] | None = None  # the upstream refused the message in progress
    upstream_closed: tuple[int | None, str] | None = None  # close code/reason (None: no close frame)
    worker_ended: bool = False


@dataclass
class _Exchange:
    """One POST of a polling session: its messages and the upstream's answer to it."""

    sid: str
    messages: list[_Message] = field(default_factory=list)
    decoded: bool = False
    answer: tuple[int, str, str] | None = None  # status, body, Server header
    held: bool = False


@dataclass
class _Stats:
    namespace: str
    event: str
    type: str
    count: int = 0
    sizes: Counter[int] = field(default_factory=Counter)
    over_limit: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    max_payload: int | None = None
    last_refusal: str = ""

    def median(self) -> int:
        """The lower median of the sizes seen (a Counter: heartbeats come in few sizes)."""
        half, seen = (self.count + 1) // 2, 0
        for size in sorted(self.sizes):
            seen += self.sizes[size]
            if seen >= half:
                return size
        return 0

    def snapshot(self) -> TypeStats:
        return TypeStats(
            namespace=self.namespace, event=self.event, type=self.type, count=self.count,
            bytes_min=min(self.sizes, default=0), bytes_p50=self.median(), bytes_max=max(self.sizes, default=0),
            over_limit=self.over_limit, outcomes={k: n for k, n in self.outcomes.items() if n},
            max_payload=self.max_payload,
            last_refusal=self.last_refusal,
        )


def _worker_key(request: Request, peer: str) -> tuple[Any, ...]:
    """What tells one worker from another across its sessions: its address (without the port),
    its User-Agent and the query it adds (e.g. a worker id), nothing Engine.IO sets itself."""
    host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer.rpartition("]:")[0] or peer
    query = tuple(sorted((k, v) for k, v in parse_qsl(urlsplit(request.target).query, keep_blank_values=True)
                         if k.lower() not in _SESSION_QUERY_KEYS))
    return host, request.headers.get("user-agent"), query


def _hold_answer(server_header: str) -> Hold:
    """A refused POST as the master itself answers it: python-engineio (on aiohttp) 400, engine.io 413."""
    if "aiohttp" in server_header.lower() or "python" in server_header.lower():
        body = b'"Bad Request"'
        head = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
        return Hold(status=400, response=head + body)
    return Hold(status=413, response=b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


_BY = {"master": "the master", "proxy": "a proxy", "tap": "the tap", "unknown": "an unknown party"}
HELD_BY_TAP = ("tap", "held by imdiag tap (--hold-oversize), answered as the master would")


def refusal_text(outcome: Outcome, by: str, observed: Observation) -> str:
    """``close 1009 from the master``, ``HTTP 413 from a proxy``, ``held by the tap``: a refusal in a few words."""
    if outcome is Outcome.HELD:
        return "held by the tap (--hold-oversize)"
    signal = f"close {observed.close_code}" if observed.close_code is not None else \
        f"HTTP {observed.http_status}" if observed.http_status is not None else "the session ended"
    return f"{signal} from {_BY.get(by, by)}" if by else signal


def _by(refusal: Refusal) -> tuple[str, str]:
    return refusal.by.value, f"{refusal.evidence()}: {refusal.how}"


class Tracker:
    """The tap's state machine: fed by the relay, it emits ``TapEvent``s through ``emit``."""

    def __init__(self, *, path: str = "/socket.io/", clock: Callable[[], float], emit: Callable[[TapEvent], None],
                 hold_oversize: bool = False, record: bool = False, settle_s: float = SETTLE_S,
                 max_kept: int = MAX_KEPT_MESSAGES):
        self.path = "/" + path.strip("/") + "/" if path.strip("/") else "/"
        self._clock = clock
        self._start = clock()
        self._emit = emit
        self.hold_oversize = hold_oversize
        self.record = record
        self.settle_s = settle_s
        self._max_kept = max_kept
        self._conns: dict[int, _Conn] = {}
        self._sessions: dict[str, _Session] = {}
        self._closed: dict[str, _Session] = {}  # insertion order: the order they closed
        self._exchanges: dict[int, _Exchange] = {}
        self._kept: list[_Message] = []
        self._not_kept = 0
        self._count = 0
        self._stats: dict[tuple[str, str, str], _Stats] = {}
        self.binary_not_recorded = 0

    def now(self) -> float:
        return round(self._clock() - self._start, 6)

    # --- connections -------------------------------------------------------------------------

    def connection(self, conn: int, peer: str) -> None:
        self._conns[conn] = _Conn(peer)

    def unreachable(self, peer: str, error: str) -> None:
        self._emit(Unreachable(self.now(), peer, error))

    def _session(self, sid: str) -> _Session | None:
        return self._sessions.get(sid) or self._closed.get(sid)

    def _is_engineio(self, request: Request) -> bool:
        return request.path == self.path or request.path == self.path.rstrip("/")

    # --- HTTP: polling and the websocket handshake -----------------------------------------------

    def request_head(self, conn: int, exchange: int, request: Request) -> Hold | None:
        """A worker's request head, before its body. A POST over maxPayload is flagged here."""
        sid = request.query("sid")
        if request.method != "POST" or sid is None or not self._is_engineio(request):
            return None
        session = self._sessions.get(sid)
        record = self._exchanges[exchange] = _Exchange(sid)
        length = request.headers.get("content-length")
        limit = session.open_info.max_payload if session else None
        if session is None or limit is None or not length.isdigit() or int(length) <= limit:
            return None
        record.held = self.hold_oversize
        self._emit(Oversize(self.now(), sid, Transport.POLLING, int(length), limit, record.held))
        return _hold_answer(session.server_header) if record.held else None

    def request_body(self, conn: int, exchange: int, request: Request, body: bytes | None, size: int,
                     whole: bool = True) -> None:
        """A worker's POST body (``body`` is None when it was too large to keep a copy). Not
        ``whole``: the worker stopped sending it after ``size`` B, once the master had answered
        (aiohttp's client stops a body when its response is released); its last packet is then
        known by its head and by the length the request announced."""
        record = self._exchanges.get(exchange)
        if record is None:
            return
        session = self._session(record.sid)
        if session is None:
            self._exchanges.pop(exchange, None)
            return
        # Records split on the separator byte: it never occurs inside a UTF-8 character.
        records: list[bytes | None] = list(body.split(_SEPARATOR)) if body is not None else [None]
        announced = request.headers.get("content-length", "")
        wire_bytes = int(announced) if not whole and announced.isdigit() else size
        for i, packet in enumerate(records):
            if whole or i < len(records) - 1:
                self._worker_packet(session, conn, Transport.POLLING, packet, wire_bytes, len(records), exchange)
                continue
            # The packet the body was cut in: the rest of the POST, from its first byte, holds it
            # and whatever followed it; only that sum is known (when the length was announced).
            before = len(body) - len(packet) if body is not None and packet is not None else 0
            rest = wire_bytes - before
            of, known = (f" of {wire_bytes:,}", f"with what followed it in the POST, {rest:,} B") if announced.isdigit() \
                else ("", f"at least {rest:,} B: the POST's length was not announced")
            cut = f"the worker stopped sending the POST after {size:,}{of} B: this message's own size is not known ({known})"
            self._cut_packet(session, conn, packet, rest, wire_bytes, len(records), exchange, cut)
        record.decoded = True
        if record.held:
            self._hold_post(session, record)
        else:
            self._settle_exchange(exchange)

    def response(self, conn: int, exchange: int, request: Request, response: Response, body: bytes | None) -> None:
        """The upstream's answer to a request (not the websocket handshake's 101: ``ws_opened``)."""
        if not self._is_engineio(request):
            return
        sid = request.query("sid")
        text = body.decode("utf-8", "replace") if body is not None else ""
        if sid is None:
            if request.method == "GET" and request.query("transport") == "polling" and response.status == 200:
                self._handshake(conn, request, response, text.split(RECORD_SEPARATOR)[0], Transport.POLLING)
            return
        session = self._session(sid)
        if session is None:
            return
        if request.is_upgrade:
            self._emit(Upgraded(self.now(), sid, f"refused: HTTP {response.status} {text[:80]!r}"))
            return
        server = response.headers.get("server")
        if request.method == "POST" and exchange in self._exchanges:
            self._exchanges[exchange].answer = (response.status, text[:500], server)
            if self._exchanges[exchange].decoded:
                self._settle_exchange(exchange)
        elif request.method == "GET" and response.status == 200 and body is not None:
            for packet in text.split(RECORD_SEPARATOR):
                self._server_packet(session, packet)
        if response.status != 200:
            refused = request.method == "POST" and response.status in (400, 413)
            session.refused = session.refused or refused
            if session.closed_t is None:
                status = f"HTTP {response.status}" + (f" {text[:80]!r}" if text else "")
                by = http_refusal(response.status, text, server).by.value
                self._close(session, by, f"the {request.method} was answered {status}", refused=refused)

    def exchange_failed(self, exchange: int, error: str) -> None:
        """A POST got no answer: the connection ended first."""
        record = self._exchanges.pop(exchange, None)
        if record is None:
            return
        for msg in record.messages:
            if msg.outcome is Outcome.IN_FLIGHT:
                self._settle(msg, Outcome.LOST, f"the POST got no answer: {error}",
                             Observation(body_bytes=msg.wire_bytes, closed=True, close_error=error,
                                         barrier=Barrier.CLOSED))

    def _handshake(self, conn: int, request: Request, response: Response, packet: str,
                   transport: Transport) -> _Session | None:
        try:
            info = parse_open(packet)
        except ValueError:
            return None
        peer = self._conns[conn].peer if conn in self._conns else ""
        session = _Session(sid=info.sid, peer=peer, key=_worker_key(request, peer), transport=transport,
                           opened_t=self.now(), open_info=info, server_header=response.headers.get("server"))
        self._sessions[info.sid] = session
        self._emit(SessionOpened(session.opened_t, session.record()))
        previous = self._reconnect_of(session)
        if previous is not None:
            candidates = sum(1 for s in self._closed.values() if s.key == session.key and s.refused and not s.reconnected) + 1
            session.reconnect_of = previous.sid
            self._emit(Reconnected(self.now(), session.sid, previous.record(), candidates))
        return session

    def _reconnect_of(self, session: _Session) -> _Session | None:
        """The latest refused session of the same worker not yet matched to a reconnect."""
        for previous in reversed(self._closed.values()):
            if session.opened_t - (previous.closed_t or 0) > RECONNECT_WINDOW_S:
                return None
            if previous.key == session.key and previous.refused and not previous.reconnected:
                previous.reconnected = True
                return previous
        return None

    # --- websocket --------------------------------------------------------------------------------

    def ws_opened(self, conn: int, request: Request, response: Response) -> None:
        state = self._conns.setdefault(conn, _Conn(""))
        state.websocket, state.request, state.response = True, request, response
        sid = request.query("sid")
        if sid is not None and sid in self._sessions and self._is_engineio(request):
            state.sid = sid

    def ws_frame(self, conn: int, header: FrameHeader) -> Hold | None:
        """A worker's data frame header, before its payload: flag (and hold) a message over maxPayload."""
        state = self._conns.get(conn)
        session = self._session(state.sid) if state and state.sid else None
        if state is None or session is None:
            return None
        if header.opcode != 0:  # the first frame of a message
            state.frame_bytes, state.flagged = 0, False
        state.frame_bytes += header.length
        state.in_progress = True
        limit = session.open_info.max_payload
        if header.rsv1 or limit is None or state.frame_bytes <= limit or state.flagged:
            return None  # compressed: its size is known once inflated
        state.flagged = True
        state.holding = self.hold_oversize
        self._emit(Oversize(self.now(), session.sid, Transport.WEBSOCKET, state.frame_bytes, limit, state.holding))
        return Hold(close_code=WS_MESSAGE_TOO_BIG) if state.holding else None

    def ws_message(self, conn: int, from_worker: bool, opcode: int, payload: bytes | None, wire_bytes: int) -> None:
        """A whole websocket message (text or binary), as forwarded; ``payload`` inflated if it was
        compressed, None when it was not kept."""
        state = self._conns.get(conn)
        if state is None:
            return
        if not from_worker:
            self._master_ws_message(conn, state, opcode, payload)
            return
        state.in_progress = False
        session = self._session(state.sid) if state.sid else None
        if session is None:
            return
        size = len(payload) if payload is not None else wire_bytes
        limit = session.open_info.max_payload
        if limit is not None and size > limit and not state.flagged:
            self._emit(Oversize(self.now(), session.sid, Transport.WEBSOCKET, size, limit, False))
        if opcode == 2:
            completed = self._attachment(session, size, wire_bytes)
        else:
            completed = self._worker_packet(session, conn, Transport.WEBSOCKET, payload, wire_bytes, 1, None)
        if completed is not None:
            self._after_forward(state, completed)
        state.flagged = state.holding = False

    def _after_forward(self, state: _Conn, msg: _Message) -> None:
        """A worker's message has been forwarded whole: held, refused already, or in flight."""
        if state.holding:
            self._settle(msg, Outcome.HELD, "held by the tap (--hold-oversize); the worker was answered close 1009",
                         Observation(body_bytes=msg.wire_bytes, held=self._held_text(msg)), HELD_BY_TAP)
        elif state.refusal is not None:
            code, reason = state.refusal
            state.refusal = None
            self._refuse_ws(msg, code, reason)
        elif state.upstream_closed is not None:
            self._lose(msg, "sent after the upstream had closed the connection")

    def _held_text(self, msg: _Message) -> str:
        return (f"held by imdiag tap (--hold-oversize): {format_bytes(msg.wire_bytes)} > maxPayload "
                f"{format_bytes(msg.max_payload or 0)}; the worker was answered as the master would")

    def _master_ws_message(self, conn: int, state: _Conn, opcode: int, payload: bytes | None) -> None:
        if opcode != 1 or payload is None:
            return
        text = payload.decode("utf-8", "replace")
        if state.sid is None and text.startswith(EIO_OPEN):
            if state.request is not None and state.response is not None and self._is_engineio(state.request):
                session = self._handshake(conn, state.request, state.response, text, Transport.WEBSOCKET)
                if session is not None:
                    state.sid, session.ws_conn = session.sid, conn
            return
        session = self._session(state.sid) if state.sid else None
        if session is not None:
            self._server_packet(session, text)

    def ws_close(self, conn: int, from_worker: bool, code: int, reason: str) -> None:
        """A close frame, as forwarded."""
        state = self._conns.get(conn)
        session = self._session(state.sid) if state and state.sid else None
        if state is None or session is None:
            return
        if from_worker:
            session.worker_close_seq = session.seq
            if session.closed_t is None and self._carries(session, conn):
                self._close(session, "worker", f"the worker {close_text(code, reason, 'closed')}", code=code)
            return
        state.upstream_closed = (code, reason)
        if session.worker_close_seq is not None:
            self._prove(session, session.worker_close_seq, "the master answered the worker's close frame", conn)
            return
        if code == WS_MESSAGE_TOO_BIG:
            self._refusal_on_close(session, state, conn, code, reason)
        else:
            self._lose_all(session, conn, f"the master {close_text(code, reason, 'closed')}")
        if self._carries(session, conn) and session.closed_t is None:
            self._close(session, "master", f"the master {close_text(code, reason, 'closed')}", code=code,
                        refused=code == WS_MESSAGE_TOO_BIG)

    def conn_ended(self, conn: int, side: str, error: str = "") -> None:
        """One side of a connection ended: ``side`` is "worker" or "master"; ``error`` when it broke."""
        state = self._conns.get(conn)
        if state is None:
            return
        session = self._session(state.sid) if state.sid else None
        if side == "worker":
            state.worker_ended = True
        if session is None or not state.websocket:
            return
        how = error or "ended the connection without a close frame (1006)"
        if side == "master":
            if state.upstream_closed is None and state.worker_ended and not error:
                self._prove(session, session.seq, "the master closed its side after the worker's end", conn)
            elif state.upstream_closed is None:
                state.upstream_closed = (None, how)
                self._lose_all(session, conn, f"the master {how}")
        if self._carries(session, conn) and session.closed_t is None:
            self._close(session, side, f"the {side} {how}", code=1006 if not error else None)

    def connection_closed(self, conn: int) -> None:
        """Both sides are done: forget the connection."""
        state = self._conns.pop(conn, None)
        session = self._session(state.sid) if state and state.sid else None
        if state is not None and session is not None and state.websocket and session.upgraded_t is None \
                and session.transport is Transport.POLLING and session.closed_t is None:
            self._emit(Upgraded(self.now(), session.sid, "the websocket ended before the upgrade completed"))

    @staticmethod
    def _carries(session: _Session, conn: int) -> bool:
        """Whether this websocket carries the session (direct, or upgraded), not just an upgrade probe."""
        return session.ws_conn == conn

    # --- packets ------------------------------------------------------------------------------------

    def _worker_packet(self, session: _Session, conn: int, transport: Transport, packet: bytes | None,
                       wire_bytes: int, packets: int, exchange: int | None) -> _Message | None:
        """One Engine.IO packet from the worker (its bytes, None when not kept); the message it
        completes, if it does."""
        session.seq += 1
        if packet is None:
            return self._new_message(session, conn, transport, None, wire_bytes, wire_bytes, packets, exchange)
        kind = packet[:1].decode("ascii", "replace")
        if kind == "b" and transport is Transport.POLLING:
            return self._attachment(session, len(packet), None)
        if kind == EIO_MESSAGE:
            return self._worker_sio(session, conn, transport, packet, wire_bytes, packets, exchange)
        if packet == EIO_PONG.encode():
            session.pong_seq = session.seq
        elif kind == EIO_UPGRADE and session.upgraded_t is None:
            session.upgraded_t, session.ws_conn = self.now(), conn
            self._emit(Upgraded(session.upgraded_t, session.sid))
        elif kind == EIO_CLOSE and session.closed_t is None:
            self._close(session, "worker", "the worker closed the session (Engine.IO CLOSE)")
        return None

    def _cut_packet(self, session: _Session, conn: int, prefix: bytes | None, rest: int, wire_bytes: int,
                    packets: int, exchange: int, cut: str) -> None:
        """The packet a POST body was cut in (``prefix``: what came of it, None when the body was
        too large to keep): a message named by its head when it is an EVENT, or one of unknown
        content when too little of it came to tell; a packet of another kind carries none."""
        session.seq += 1
        if prefix is None or len(prefix) < 2 or (
                prefix[:1] == EIO_MESSAGE.encode() and prefix[1:2].decode("ascii", "replace") in (SIO_EVENT, SIO_BINARY_EVENT)):
            self._new_message(session, conn, Transport.POLLING, prefix, wire_bytes, rest, packets, exchange, cut=cut)

    def _worker_sio(self, session: _Session, conn: int, transport: Transport, packet: bytes, wire_bytes: int,
                    packets: int, exchange: int | None) -> _Message | None:
        kind = packet[1:2].decode("ascii", "replace")
        if kind in (SIO_EVENT, SIO_BINARY_EVENT):
            return self._new_message(session, conn, transport, packet, wire_bytes, len(packet), packets, exchange)
        text = packet[:_HEAD_BYTES].decode("utf-8", "replace")  # a CONNECT or DISCONNECT: its head is enough
        if kind == SIO_CONNECT:
            with contextlib.suppress(ValueError):
                session.connect_seq[parse_sio(text[1:].split("{", 1)[0]).namespace] = session.seq
        elif kind == SIO_DISCONNECT:
            with contextlib.suppress(ValueError):
                namespace = parse_sio(text[1:]).namespace
                self._emit(NamespaceJoined(self.now(), session.sid, namespace, False, "the worker left it"))
        return None

    def _server_packet(self, session: _Session, packet: str) -> None:
        kind = packet[:1]
        if packet == EIO_PING and session.pong_seq is not None:
            # Both engine.io and python-engineio schedule their next PING when a PONG arrives.
            self._prove(session, session.pong_seq, "the master sent its next PING after the worker's PONG")
        elif kind == EIO_CLOSE and session.closed_t is None:
            self._close(session, "master", "the master closed the session (Engine.IO CLOSE)")
        elif kind == EIO_MESSAGE and len(packet) <= _SERVER_DECODE_LIMIT:
            try:
                sio = parse_sio(packet[1:])
            except ValueError:
                return
            if sio.type in (SIO_CONNECT, SIO_CONNECT_ERROR):
                accepted = sio.type == SIO_CONNECT
                data = sio.data if isinstance(sio.data, dict) else {}
                detail = str(data.get("sid", "")) if accepted else str(data.get("message", sio.data))
                if accepted:
                    session.namespaces[sio.namespace] = detail
                self._emit(NamespaceJoined(self.now(), session.sid, sio.namespace, accepted, detail))
                if sio.namespace in session.connect_seq:
                    self._prove(session, session.connect_seq[sio.namespace],
                                f"the master answered a later CONNECT to {sio.namespace}")
            elif sio.type in (SIO_ACK, SIO_BINARY_ACK) and sio.ack_id is not None:
                self._ack(session, sio.namespace, sio.ack_id)
            elif sio.type == SIO_DISCONNECT:
                session.namespaces.pop(sio.namespace, None)
                self._emit(NamespaceJoined(self.now(), session.sid, sio.namespace, False, "the master disconnected it"))

    # --- messages ----------------------------------------------------------------------------------

    def _new_message(self, session: _Session, conn: int, transport: Transport, packet: bytes | None,
                     wire_bytes: int, packet_bytes: int, packets: int, exchange: int | None,
                     cut: str = "") -> _Message | None:
        """``cut``: ``packet`` is the first part of a packet whose rest never came (why, and what
        is known of its size): it is named by its head, its own sizes unknown (0)."""
        event, namespace, ack_id, attachments, type_, message_id = "?", "/", None, 0, "(not decoded)", None
        json_bytes = js_len = 0
        encoder = Encoder.NODE
        message: Any = None
        if packet is not None:
            try:
                parsed = parse_event_head(packet[1:]) if cut else parse_event(packet[1:])
            except (ValueError, UnicodeDecodeError):
                type_ = "(not decoded)" if cut else "(invalid packet)"
            else:
                event, namespace, ack_id, attachments = parsed.event or "?", parsed.namespace, parsed.ack_id, \
                    parsed.attachments
                type_ = parsed.type or ("(not decoded)" if cut else NO_TYPE)  # cut: its type may not have come
                message = parsed.message
                message_id = message_id_of(message)
                json_bytes, js_len, encoder = parsed.json_bytes, parsed.js_length, parsed.encoder
        limit = session.open_info.max_payload
        msg = _Message(
            index=self._count, t=self.now(), sid=session.sid, conn=conn, transport=transport, namespace=namespace,
            event=event, ack_id=ack_id, type=type_, message_id=message_id, encoder=encoder, json_bytes=json_bytes,
            js_length=js_len, packet_bytes=packet_bytes, wire_bytes=wire_bytes, packets_in_body=packets,
            max_payload=limit, attachments_expected=attachments,
            over_limit=limit is not None and (packet_bytes > limit or wire_bytes > limit), cut=cut,
        )
        self._count += 1
        session.messages += 1
        if exchange is not None and exchange in self._exchanges:
            msg.exchange = exchange
            self._exchanges[exchange].messages.append(msg)
        if self.record and not cut:  # a message cut short is not the message: it is not recorded
            if attachments:
                self.binary_not_recorded += 1
            else:
                self._emit(Captured(msg.t, message, event, namespace))
        if attachments and not cut:  # (the attachments of a cut message never come)
            session.assembling = msg
            return None
        self._complete(session, msg)
        return msg

    def _attachment(self, session: _Session, size: int, wire_bytes: int | None) -> _Message | None:
        msg = session.assembling
        if msg is None:
            return None
        msg.attachment_bytes.append(size)
        if wire_bytes is not None:  # websocket: each attachment is a frame of its own
            msg.wire_bytes += wire_bytes
        limit = msg.max_payload
        msg.over_limit = msg.over_limit or (limit is not None and size > limit)
        if len(msg.attachment_bytes) < msg.attachments_expected:
            return None
        session.assembling = None
        self._complete(session, msg)
        return msg

    def _complete(self, session: _Session, msg: _Message) -> None:
        msg.seq = session.seq
        msg.forwarded_at = self._clock()
        if msg.ack_id is not None:
            session.acks[(msg.namespace, msg.ack_id)] = msg
        if msg.transport is Transport.WEBSOCKET:
            session.inflight.append(msg)
        if len(self._kept) < self._max_kept:
            self._kept.append(msg)
        else:
            self._not_kept += 1
        stats = self._stats.get(msg.key())
        if stats is None:
            stats = self._stats[msg.key()] = _Stats(msg.namespace, msg.event, msg.type)
        stats.count += 1
        stats.sizes[msg.wire_bytes] += 1
        stats.over_limit += msg.over_limit
        stats.outcomes[Outcome.IN_FLIGHT.value] += 1
        stats.max_payload = msg.max_payload

    def _observation(self, msg: _Message, *, final: bool) -> Observation:
        base = msg.answer or Observation(body_bytes=msg.wire_bytes)
        ack = Ack.NOT_ASKED
        if msg.ack_id is not None and (msg.acked or final):
            ack = Ack.RECEIVED if msg.acked else Ack.MISSING
        return dataclasses.replace(
            base, body_bytes=msg.wire_bytes, packets_in_body=msg.packets_in_body,
            message_bytes=msg.packet_bytes + sum(msg.attachment_bytes), advertised_max_payload=msg.max_payload, ack=ack,
        )

    def _cell(self, msg: _Message, *, final: bool) -> Cell:
        return judged_cell(
            self._observation(msg, final=final), type=msg.type, transport=msg.transport, limit=msg.max_payload or 0,
            encoder=msg.encoder, master="live", label="tap", json_bytes=msg.json_bytes, js_length=msg.js_length,
            predicted_delivered=None, index=msg.index, message_id=msg.message_id,
        )

    def _record(self, msg: _Message) -> TapMessage:
        who = msg.refused_by
        return TapMessage(
            index=msg.index, t=msg.t, sid=msg.sid, namespace=msg.namespace, event=msg.event, ack_id=msg.ack_id,
            packet_bytes=msg.packet_bytes, attachment_bytes=tuple(msg.attachment_bytes), max_payload=msg.max_payload,
            over_limit=msg.over_limit, outcome=msg.outcome, proof=msg.proof,
            refused_by=who[0] if who else "", refused_by_evidence=who[1] if who else "",
        )

    def _settle(self, msg: _Message, outcome: Outcome, proof: str, answer: Observation,
                who: tuple[str, str] | None = None) -> None:
        previous = msg.outcome
        if msg.cut:
            proof = f"{proof}; {msg.cut}"
        msg.outcome, msg.proof, msg.answer, msg.refused_by = outcome, proof, answer, who
        session = self._session(msg.sid)
        if session is not None and msg in session.inflight:
            session.inflight.remove(msg)
        cell = self._cell(msg, final=False)
        stats = self._stats.get(msg.key())
        if stats is not None:
            stats.outcomes[previous.value] -= 1
            stats.outcomes[outcome.value] += 1
            if outcome in (Outcome.REFUSED, Outcome.HELD):
                stats.last_refusal = refusal_text(msg.outcome, who[0] if who else "", cell.observed)
        self._emit(Settled(self.now(), self._record(msg), cell))

    def _pass(self, msg: _Message, proof: str, http_status: int | None = None) -> None:
        self._settle(msg, Outcome.PASSED, proof, Observation(body_bytes=msg.wire_bytes, http_status=http_status,
                                                              barrier=Barrier.RELAYED, barrier_answer=proof))

    def _lose(self, msg: _Message, why: str) -> None:
        self._settle(msg, Outcome.LOST, f"lost with the session: {why}",
                     Observation(body_bytes=msg.wire_bytes, closed=True, close_error=f"lost with the session: {why}",
                                 barrier=Barrier.CLOSED))

    def _refuse_ws(self, msg: _Message, code: int, reason: str) -> None:
        self._settle(msg, Outcome.REFUSED, f"the master {close_text(code, reason, 'closed')}",
                     Observation(body_bytes=msg.wire_bytes, close_code=code, close_reason=reason, closed=True,
                                 barrier=Barrier.CLOSED),
                     _by(close_refusal(code, reason, msg.wire_bytes, msg.max_payload)))

    def _prove(self, session: _Session, seq: int, proof: str, conn: int | None = None) -> None:
        """The upstream answered the worker's packet number ``seq``: everything before it was read."""
        for msg in list(session.inflight):
            if msg.seq <= seq and msg.outcome is Outcome.IN_FLIGHT and (conn is None or msg.conn == conn):
                self._pass(msg, proof)

    def _lose_all(self, session: _Session, conn: int, why: str) -> None:
        for msg in list(session.inflight):
            if msg.conn == conn and msg.outcome is Outcome.IN_FLIGHT:
                self._lose(msg, why)

    def _refusal_on_close(self, session: _Session, state: _Conn, conn: int, code: int, reason: str) -> None:
        """A 1009 close: the refused frame is the first one over maxPayload (else the largest) among those
        in flight and the one still arriving; the ones before it were read, the ones after are lost."""
        inflight = [m for m in session.inflight if m.conn == conn and m.outcome is Outcome.IN_FLIGHT]
        limit = session.open_info.max_payload
        over = [m for m in inflight if limit is not None and m.over_limit]
        target: _Message | None = None  # None: the frame still arriving
        if over:
            target = over[0]
        elif inflight and not state.in_progress:
            target = max(inflight, key=lambda m: m.wire_bytes)
        for msg in inflight:
            if target is None or msg.index < target.index:
                self._pass(msg, "the master read past it: it refused a later frame")
            elif msg is target:
                self._refuse_ws(msg, code, reason)
            else:
                self._lose(msg, f"the master closed it with {code} for an earlier frame (#{target.index})")
        if target is None and state.in_progress:
            state.refusal = (code, reason)

    def _ack(self, session: _Session, namespace: str, ack_id: int) -> None:
        msg = session.acks.pop((namespace, ack_id), None)
        if msg is None:
            return
        msg.acked = True
        self._prove(session, msg.seq - 1, "the master answered a later packet (an ACK)")
        if msg.outcome in (Outcome.IN_FLIGHT, Outcome.PASSED):
            proof = "the master acknowledged it (Socket.IO ACK)"
            was_settled = msg.outcome is Outcome.PASSED
            self._settle(msg, Outcome.ACKED, proof, Observation(body_bytes=msg.wire_bytes, barrier=Barrier.RELAYED,
                                                                 barrier_answer=proof))
            if was_settled:
                self._emit(LateAck(self.now(), self._record(msg)))

    def _settle_exchange(self, exchange: int) -> None:
        record = self._exchanges.get(exchange)
        if record is None or record.answer is None or not record.decoded:
            return
        del self._exchanges[exchange]
        status, body, server = record.answer
        for msg in record.messages:
            if msg.outcome is not Outcome.IN_FLIGHT:
                continue
            if status == 200:
                self._pass(msg, f"the POST was answered HTTP 200 {body[:20]!r}", http_status=200)
            else:
                self._settle(msg, Outcome.REFUSED, f"the POST was answered HTTP {status} {body[:80]!r}",
                             Observation(body_bytes=msg.wire_bytes, http_status=status, http_body=body,
                                         http_server=server, closed=True, barrier=Barrier.CLOSED),
                             _by(http_refusal(status, body, server)))

    def _hold_post(self, session: _Session, record: _Exchange) -> None:
        for msg in record.messages:
            self._settle(msg, Outcome.HELD, "held by the tap (--hold-oversize)",
                         Observation(body_bytes=msg.wire_bytes, held=self._held_text(msg)), HELD_BY_TAP)
        if session.closed_t is None:
            self._close(session, "tap", "held an oversize POST (--hold-oversize): answered the worker as the master "
                        "would and closed the session upstream", refused=True)

    def _close(self, session: _Session, by: str, reason: str, *, code: int | None = None, refused: bool = False) -> None:
        session.closed_t, session.closed_by, session.close_reason = self.now(), by, reason
        session.close_code, session.refused = code, refused
        self._sessions.pop(session.sid, None)
        self._closed[session.sid] = session
        while len(self._closed) > _CLOSED_KEPT:  # bounded: reconnects look back RECONNECT_WINDOW_S anyway
            self._closed.pop(next(iter(self._closed)))
        self._emit(SessionClosed(session.closed_t, session.record()))

    # --- time ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """Settle websocket messages that the upstream kept taking for ``settle_s`` without refusing."""
        now = self._clock()
        for session in [*self._sessions.values(), *self._closed.values()]:
            for msg in list(session.inflight):
                state = self._conns.get(msg.conn)
                if state is not None and state.upstream_closed is not None:
                    continue
                if msg.forwarded_at is not None and now - msg.forwarded_at >= self.settle_s:
                    self._pass(msg, f"the upstream took the whole frame and refused nothing for {self.settle_s:g} s")

    def finish(self, *, upstream: str, listen: str, stopped_by: str) -> tuple[list[Cell], TapDetails]:
        """Every message kept, judged; the sessions; the per-type figures. Messages still in flight stay so."""
        cells = [self._cell(m, final=True) for m in self._kept]
        for msg in self._kept:
            if msg.outcome is Outcome.IN_FLIGHT:
                msg.proof = "still in flight when the tap stopped"
        sessions = [s.record() for s in [*self._closed.values(), *self._sessions.values()]]
        details = TapDetails(
            upstream=upstream, listen=listen, hold_oversize=self.hold_oversize, stopped_by=stopped_by,
            sessions=tuple(sorted(sessions, key=lambda s: s.opened_t)),
            messages=tuple(self._record(m) for m in self._kept),
            by_type=self.by_type(), messages_not_kept=self._not_kept,
        )
        return cells, details

    def by_type(self) -> tuple[TypeStats, ...]:
        return tuple(s.snapshot() for s in sorted(self._stats.values(), key=lambda s: (s.namespace, s.event, s.type)))

    def sessions(self) -> Iterable[TapSession]:
        return (s.record() for s in self._sessions.values())

