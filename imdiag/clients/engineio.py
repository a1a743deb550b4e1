"""imdiag's own Engine.IO v4 / Socket.IO v5 client, over aiohttp: the reference worker.

Why not python-socketio's AsyncClient: a diagnostic worker must control every byte it sends
(either encoder, exact frames, batched polling bodies) and see every observation the server
gives back: websocket close codes and reasons, HTTP statuses and bodies of each POST, errors
raised while a large frame is still being written. It must also close a polling session at
once (AsyncClient can take ~25 s to close polling gracefully). This module is that client,
kept small: handshake, namespace connect, ping/pong, send, receive, close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import os
import select
import socket
import ssl
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import aiohttp.payload
from aiohttp._websocket.helpers import websocket_mask  # aiohttp's own (C) client masking
from aiohttp.abc import AbstractStreamWriter
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_writer import StreamWriter

from imdiag.core.errors import TargetError
from imdiag.core.model import HttpAnswer
from imdiag.core.refusal import Refuser, http_refusal
from imdiag.core.urls import redact_url
from imdiag.core.wire import (
    EIO_CLOSE,
    EIO_MESSAGE,
    EIO_NOOP,
    EIO_PING,
    EIO_PONG,
    RECORD_SEPARATOR,
    SIO_CONNECT,
    SIO_CONNECT_ERROR,
    OpenInfo,
    Packet,
    SioPacket,
    Transport,
    connect_packet,
    packet_pieces,
    packet_size,
    parse_open,
    parse_sio,
    split_polling_body,
    split_v3_payload,
    v3_packet,
)


@dataclass(frozen=True)
class CloseInfo:
    """How the connection ended, as observed by the client."""

    by: str  # "server" or "client"
    code: int | None = None  # websocket close code
    reason: str = ""  # websocket close reason, or HTTP response body
    http_status: int | None = None
    server: str = ""  # the Server header of that HTTP response
    error: str = ""  # exception raised by the transport, if that is how it ended

    def describe(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(f"websocket closed with {self.code}" + (f" ({self.reason})" if self.reason else ""))
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}" + (f" {self.reason!r}" if self.reason else ""))
        if self.error:
            parts.append(self.error)
        return "; ".join(parts) or f"closed by {self.by}"


@dataclass(frozen=True)
class SendResult:
    """What happened when one frame (websocket) or one POST body (polling) was sent."""

    body_bytes: int  # bytes of the frame payload or POST body
    packets: int
    written_bytes: int  # of those, written before the server answered (all, when it answered after)
    http_status: int | None = None  # polling: the POST's status
    http_body: str = ""
    http_server: str = ""  # the Server header of the POST's answer
    error: str = ""  # raised while writing (e.g. the connection broke mid-frame)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Every byte was written: the server did not answer (close, HTTP response) before."""
        return self.written_bytes >= self.body_bytes

    @property
    def ok(self) -> bool:
        return not self.error and self.complete and self.http_status in (None, 200)

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.http_status not in (None, 200):
            return f"HTTP {self.http_status}" + (f" {self.http_body[:200]!r}" if self.http_body else "")
        if not self.complete:
            return f"the server answered after {self.written_bytes:,} of {self.body_bytes:,} B were written"
        return "sent"


# Large frames and bodies are written in chunks of this size (a multiple of 4: websocket masking
# continues from chunk to chunk); before each one the client looks for the server's answer.
WRITE_CHUNK = 1 << 16
# A POST body's first write, with the request head: a body up to this size goes out in one
# write, as aiohttp writes any body. A server that reads a body with one read() (python-engineio)
# cuts it at what has arrived, so the pace of the first bytes is part of what is measured.
FIRST_POST_WRITE = 1 << 19


def has_input(transport: asyncio.BaseTransport) -> bool:
    """The server has sent something not read yet (data, a close, a reset): a look, no read.

    Checked before each chunk: a write that meets a reset makes asyncio close the connection
    without reading what came before it (a close frame, an HTTP 413), so that is read first.
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def keep_the_answer(transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol) -> None:
    """After a write that closed the transport: hand the protocol what the server sent before
    its reset, as asyncio would have read it.

    A reset can land between the look (``has_input``) and the write. The write then fails and
    asyncio closes the connection without reading what the kernel still holds before the reset:
    the server's close frame (1009 would become 1006) or its HTTP 413. It is read here, once, from
    a duplicate of the socket (the kernel returns queued data before the reset's error).
    """
    sock = transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0 or not isinstance(protocol, asyncio.Protocol):
        return
    answer = bytearray()
    try:
        with socket.socket(fileno=os.dup(sock.fileno())) as duplicate:
            duplicate.setblocking(False)
            for _ in range(64):  # bounded: what a server sends before it resets, not a stream
                data = duplicate.recv(1 << 16)
                if not data:
                    break
                answer += data
    except OSError:  # nothing more (would block, or the reset's own error)
        pass
    if answer:
        protocol.data_received(bytes(answer))


def write_chunks(packets: Sequence[Packet], separator: bytes = b"", first: int = WRITE_CHUNK) -> Iterator[bytes | memoryview]:
    """The packets' bytes (joined by ``separator``): a chunk of ``first`` bytes, then chunks of
    ``WRITE_CHUNK``, the last one shorter; a streamed packet's pieces are made as chunks are taken."""
    pending = bytearray()
    size = first
    for piece in _joined(packets, separator):
        view = memoryview(piece)
        if pending:
            take = size - len(pending)
            pending += view[:take]
            view = view[take:]
            if len(pending) < size:
                continue
            yield bytes(pending)
            pending, size = bytearray(), WRITE_CHUNK
        while len(view) >= size:
            yield view[:size]
            view, size = view[size:], WRITE_CHUNK
        pending += view
    if pending:
        yield bytes(pending)


def _joined(packets: Sequence[Packet], separator: bytes) -> Iterator[bytes]:
    for i, packet in enumerate(packets):
        if i and separator:
            yield separator
        yield from packet_pieces(packet)


def ws_frame_header(payload_bytes: int, mask: bytes) -> bytes:
    """RFC 6455 header of one final, masked text frame announcing its whole payload length."""
    first = 0x80 | 0x1  # FIN, opcode text
    if payload_bytes < 126:
        head = bytes((first, 0x80 | payload_bytes))
    elif payload_bytes < 1 << 16:
        head = bytes((first, 0x80 | 126)) + payload_bytes.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + payload_bytes.to_bytes(8, "big")
    return head + mask


@dataclass(frozen=True)
class Endpoint:
    """Where a master listens: base URL, Engine.IO path, namespace and connection options."""

    url: str  # http(s)://host:port
    namespace: str = "/"
    path: str = "/socket.io/"
    headers: tuple[tuple[str, str], ...] = ()  # pairs, not a dict: a repeated header is sent repeated
    auth_json: str | None = None
    insecure: bool = False

    @classmethod
    def from_url(cls, url: str, path: str = "/socket.io/", **kwargs: Any) -> Endpoint:
        """``http://host:3000/worker`` -> base ``http://host:3000``, namespace ``/worker``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise TargetError(f"invalid URL {url!r}: expected http(s)://host:port[/namespace]")
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        namespace = parts.path.rstrip("/") or "/"
        return cls(url=urlunsplit((scheme, parts.netloc, "", "", "")), namespace=namespace, path=path, **kwargs)

    def engineio_url(self, transport: Transport, sid: str | None = None, eio: int = 4) -> str:
        query = {"EIO": str(eio), "transport": transport.value}
        if sid:
            query["sid"] = sid
        base = self.url
        if transport is Transport.WEBSOCKET:
            base = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{base}{engineio_path(self.path)}?{urlencode(query)}"


def engineio_path(path: str) -> str:
    """``socket.io`` -> ``/socket.io/``; ``/`` stays ``/``."""
    inner = path.strip("/")
    return f"/{inner}/" if inner else "/"


class HandshakeRefused(TargetError):
    """Opening a connection was refused by an HTTP answer: the websocket or polling handshake, the
    namespace CONNECT, or a GET while joining. ``open_info``: the OPEN packet, if one came first."""

    def __init__(self, message: str, answer: HttpAnswer, open_info: OpenInfo | None = None):
        super().__init__(message)
        self.answer = answer
        self.open_info = open_info


class NamespaceRefused(TargetError):
    """The master answered the namespace CONNECT with CONNECT_ERROR: ``message`` is its reason
    (socket.io: "Invalid namespace"; an auth middleware's own error). ``open_info``: the OPEN
    packet of the session it came on, whose handshake worked."""

    def __init__(self, message: str, reason: str, open_info: OpenInfo | None = None):
        super().__init__(message)
        self.reason = reason
        self.open_info = open_info


def _ssl(endpoint: Endpoint) -> ssl.SSLContext | bool:
    return False if endpoint.insecure else True


# A write must make progress: the time allowed for one frame or POST is twice the answer timeout
# (connect, then the answer) plus its size at this (slow) rate. A server that stops reading
# cannot hold a send forever; an unanswered POST still meets its read timeout first.
MIN_UPLOAD_BYTES_PER_S = 256_000


def send_deadline_s(timeout: float, body_bytes: int) -> float:
    return 2 * timeout + body_bytes / MIN_UPLOAD_BYTES_PER_S


def _excerpt(body: str, limit: int = 80) -> str:
    """A response body in an error line: one line, short (an HTML page would swamp it)."""
    flat = " ".join(body.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


def _error_text(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


class _Progress:
    """Bytes of one send written so far (kept when the write ends in an error)."""

    def __init__(self) -> None:
        self.written = 0

    def result(self, total: int, packets: int, start: float, **kwargs: Any) -> SendResult:
        return SendResult(total, packets, self.written, seconds=time.monotonic() - start, **kwargs)


class Connection:
    """One Engine.IO session connected to one Socket.IO namespace."""

    transport: Transport

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession, timeout: float = 10.0):
        self.endpoint = endpoint
        self.session = session
        self.timeout = timeout  # for any one answer: a POST's response, the websocket's close handshake
        self.open_info: OpenInfo | None = None
        self.sid: str | None = None  # Socket.IO sid in the namespace
        # The namespace's private session id: socket.io >= 4.6 sends it beside the sid only when
        # connectionStateRecovery is on (a client that reconnects with it gets its sid back).
        self.pid: str | None = None
        self.closed: asyncio.Future[CloseInfo] = asyncio.get_running_loop().create_future()
        self._packets: asyncio.Queue[SioPacket] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False  # we are closing: start no new request (a GET after CLOSE is an error)

    # --- to be provided by the transport -------------------------------------------------

    async def _open(self, timeout: float) -> None:
        raise NotImplementedError

    async def send(self, packets: Sequence[Packet]) -> SendResult:
        """Send encoded Engine.IO packets: one frame each (websocket), one POST (polling).

        Large ones are written in chunks, and writing stops once the server has answered (its
        close frame, the end of the connection, the POST's response): a frame refused at its
        header is not written to its end, and ``written_bytes`` says how far it got."""
        raise NotImplementedError

    async def _send_close(self) -> None:
        raise NotImplementedError

    # --- shared behaviour ----------------------------------------------------------------

    def _set_closed(self, info: CloseInfo) -> None:
        if not self.closed.done():
            self.closed.set_result(info)

    async def _on_packet(self, packet: str) -> None:
        """Handle one Engine.IO packet from the server (called by the reader loop)."""
        kind = packet[:1]
        if kind == EIO_PING:
            # Not awaited here: the reader must go on reading (a close frame, say) while a long
            # write holds the connection; the pong goes out after it.
            self._in_background(self.send([(EIO_PONG + packet[1:]).encode()]))
        elif kind == EIO_CLOSE:
            self._set_closed(CloseInfo(by="server", reason="Engine.IO CLOSE packet"))
        elif kind == EIO_MESSAGE:
            try:
                self._packets.put_nowait(parse_sio(packet[1:]))
            except ValueError:
                pass  # not ours to judge; a diagnostic client ignores what it cannot parse
        elif kind == EIO_NOOP:
            pass

    async def next_packet(self, timeout: float) -> SioPacket | None:
        """The next Socket.IO packet from the server; None on close or timeout."""
        getter = asyncio.ensure_future(self._packets.get())
        try:
            done, _ = await asyncio.wait({getter, self.closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        return getter.result() if getter in done else None

    async def connect_namespace(self, timeout: float) -> None:
        ns = self.endpoint.namespace
        sent = await self.send([connect_packet(ns, self.endpoint.auth_json).encode()])
        if sent.http_status not in (None, 200):
            raise HandshakeRefused(
                f"the CONNECT of namespace {ns!r} was not taken: {sent.describe()}",
                HttpAnswer("namespace CONNECT POST", sent.http_status, sent.http_server, sent.http_body), self.open_info,
            )
        if not sent.ok:
            raise TargetError(f"the CONNECT of namespace {ns!r} was not taken: {sent.describe()}")
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            pkt = await self.next_packet(left)
            if pkt is None:
                break
            if pkt.namespace != ns:
                continue
            if pkt.type == SIO_CONNECT:
                data = pkt.data if isinstance(pkt.data, dict) else {}
                self.sid = data.get("sid")
                pid = data.get("pid")
                self.pid = pid if isinstance(pid, str) else None
                return
            if pkt.type == SIO_CONNECT_ERROR:
                message = pkt.data.get("message") if isinstance(pkt.data, dict) else pkt.data
                raise NamespaceRefused(f"namespace {ns!r} refused the connection: {message}", str(message),
                                       self.open_info)
        if self.closed.done():
            close = self.closed.result()
            message = f"connection closed while joining namespace {ns!r}: {close.describe()}"
            if close.http_status is not None:
                raise HandshakeRefused(message, HttpAnswer("GET", close.http_status, close.server, close.reason),
                                       self.open_info)
            raise TargetError(message)
        raise TargetError(f"no answer to the CONNECT of namespace {ns!r} within {timeout:g} s")

    def _in_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        self._closing = True
        if not self.closed.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send_close(), min(2.0, self.timeout))
            self._set_closed(CloseInfo(by="client"))
        for task in self._background:
            task.cancel()
        for task in self._tasks:
            task.cancel()
        for task in [*self._background, *self._tasks]:
            with contextlib.suppress(BaseException):
                await task


class WebSocketConnection(Connection):
    transport = Transport.WEBSOCKET

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession, timeout: float = 10.0):
        super().__init__(endpoint, session, timeout)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._write_lock = asyncio.Lock()

    async def _open(self, timeout: float) -> None:
        url = self.endpoint.engineio_url(Transport.WEBSOCKET)
        # No permessage-deflate: frames cross the wire as their exact payload bytes.
        # No autoping: aiohttp would write its pong in the middle of a frame being written in
        # chunks; the reader answers pings itself, between frames (``_pong``).
        self.ws = await self.session.ws_connect(
            url, max_msg_size=0, autoping=False, compress=0, headers=self.endpoint.headers,
            ssl=_ssl(self.endpoint), timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
        )
        first = await asyncio.wait_for(self.ws.receive(), timeout)
        if first.type is not aiohttp.WSMsgType.TEXT:
            raise TargetError(f"expected an Engine.IO OPEN packet, got websocket {first.type.name}")
        self.open_info = parse_open(first.data)
        self._tasks.append(asyncio.create_task(self._reader()))

    async def _reader(self) -> None:
        assert self.ws is not None
        ws = self.ws
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await self._on_packet(msg.data)
                elif msg.type is aiohttp.WSMsgType.PING:
                    self._in_background(self._pong(msg.data))
                elif msg.type is aiohttp.WSMsgType.PONG:
                    pass
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    # The code the server wrote in its close frame. Not ws.close_code: when the
                    # server resets the TCP connection right after its close frame (it closes
                    # with our oversize frame still unread), aiohttp's automatic close reply
                    # fails and overwrites ws.close_code with 1006, losing the server's 1009.
                    # An empty close frame carries no code: RFC 6455 names that 1005.
                    reason = msg.extra if isinstance(msg.extra, str) else ""
                    self._set_closed(CloseInfo(by="server", code=int(msg.data) or 1005, reason=reason))
                    return
                elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    self._set_closed(CloseInfo(by="server", code=ws.close_code))
                    return
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    exc = ws.exception()
                    self._set_closed(CloseInfo(by="server", code=ws.close_code, error=_error_text(exc) if exc else "error"))
                    return
        except Exception as exc:  # the transport broke under us: that is an observation
            self._set_closed(CloseInfo(by="server", code=ws.close_code, error=_error_text(exc)))

    @staticmethod
    async def _read_first(transport: asyncio.BaseTransport) -> None:
        """Let the reader take what has arrived before writing on: a server that refused a frame
        sent its close frame and then reset the connection, and a write that meets the reset
        makes asyncio drop the close frame unread (1006 instead of the server's 1009)."""
        if has_input(transport):
            # Two passes: the first only re-queues this task ahead of the loop's read callback.
            await asyncio.sleep(0)  # sleep-ok: a yield to the loop, not a wait for time
            await asyncio.sleep(0)  # sleep-ok: see above

    async def _pong(self, data: bytes) -> None:
        async with self._write_lock:
            if self.ws is not None and not self.ws.closed:
                with contextlib.suppress(Exception):
                    await self.ws.pong(data)

    async def send(self, packets: Sequence[Packet]) -> SendResult:
        assert self.ws is not None
        start = time.monotonic()
        total = sum(packet_size(p) for p in packets)
        progress = _Progress()
        async with self._write_lock:
            allowed = send_deadline_s(self.timeout, total)
            try:
                async with asyncio.timeout(allowed):
                    for packet in packets:
                        if not await self._write_frame(packet, progress):
                            break
            except TimeoutError:
                return progress.result(total, len(packets), start,
                                       error=f"the server did not take the frame within {allowed:g} s")
            except Exception as exc:
                return progress.result(total, len(packets), start, error=_error_text(exc))
        return progress.result(total, len(packets), start)

    async def _write_frame(self, packet: Packet, progress: _Progress) -> bool:
        """One frame: a header announcing its whole length, then its payload in chunks, as a
        sender's socket takes them. Stops once the server has answered; True if written whole.

        aiohttp's ``send_frame`` writes a frame in one go (and its 16 MB copy, masked), so the
        frame goes to aiohttp's transport directly, with aiohttp's own flow control."""
        assert self.ws is not None
        writer = self.ws._writer  # aiohttp's WebSocketWriter: its transport and protocol
        transport, protocol = writer.transport, writer.protocol
        mask = os.urandom(4)
        header = ws_frame_header(packet_size(packet), mask)
        for i, chunk in enumerate(write_chunks([packet])):
            # Masked before the look at the socket: from the look to the write, as little time
            # as can be (a reset landing in between would still lose a close frame).
            masked = bytearray(chunk)
            websocket_mask(mask, masked)
            await self._read_first(transport)
            if self.closed.done() or transport.is_closing():
                if i or progress.written:
                    return False  # answered: the rest would only be discarded
                raise ConnectionResetError("the server closed the connection before this frame")
            transport.write(header + masked if i == 0 else masked)
            if transport.is_closing():  # this write met a reset
                keep_the_answer(transport, protocol)
            progress.written += len(chunk)
            if protocol._paused:  # the kernel is full: wait until it takes more
                await protocol._drain_helper()
        if not packet_size(packet):
            transport.write(header)  # an empty frame: no chunk carried the header
        return True

    async def _send_close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()


# A namespace no application uses: a CONNECT to it makes the server answer (CONNECT_ERROR).
FLUSH_NAMESPACE = "/imdiag-flush"
FLUSH_TIMEOUT_S = 1.0


class _ChunkedBody(aiohttp.payload.Payload):
    """A POST body written in chunks as fast as the kernel takes them (as aiohttp writes any
    body: a server's cut read of a body under its limit depends on that pace), its whole length
    announced (Content-Length). An HTTP server says nothing before its response, so the body
    stops once the server has sent anything (a 400/413 at the head, a 200 after a cut read, a
    close); the connection is then not reused."""

    def __init__(self, packets: Sequence[Packet], separator: bytes, size: int, progress: _Progress):
        super().__init__(None, content_type=None)
        self._size = self._total = size  # aiohttp announces it as the Content-Length
        self._packets = packets
        self._separator = separator
        self._progress = progress

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(_joined(self._packets, self._separator)).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        assert isinstance(writer, StreamWriter)  # aiohttp's client writes bodies through one
        progress = self._progress
        try:
            for i, chunk in enumerate(write_chunks(self._packets, self._separator, FIRST_POST_WRITE)):
                transport = writer.transport
                if transport is None or transport.is_closing() or (i and has_input(transport)):
                    break
                await writer.write(chunk, drain=False)  # written at once (no wait inside) ...
                if transport.is_closing():  # ... so a close now is this write meeting a reset
                    keep_the_answer(transport, writer.protocol)
                progress.written += len(chunk)
                await writer.drain()  # aiohttp's flow control: wait while the kernel is full
        except ConnectionError:  # closed under the write: the response (or its absence) tells why
            pass
        if progress.written < self._total:
            # Half a body is on this connection: it must not carry another request.
            protocol = writer.protocol
            if isinstance(protocol, ResponseHandler):
                protocol.force_close()


class PollingConnection(Connection):
    transport = Transport.POLLING

    def __init__(self, endpoint: Endpoint, session: aiohttp.ClientSession, timeout: float = 10.0):
        super().__init__(endpoint, session, timeout)
        # Engine.IO servers reject overlapping POSTs; real clients send one at a time too.
        self._post_lock = asyncio.Lock()
        self._get_in_flight = False
        self._unanswered_post = False  # a server that did not answer one POST gets no CLOSE POST

    async def _get(self, timeout: float | None) -> tuple[int, str, str]:
        """One GET: status, body, Server header."""
        assert self.open_info is not None or timeout is not None
        sid = self.open_info.sid if self.open_info else None
        url = self.endpoint.engineio_url(Transport.POLLING, sid)
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with self.session.get(url, headers=self.endpoint.headers, ssl=_ssl(self.endpoint), timeout=client_timeout) as resp:
            return resp.status, await resp.text(), resp.headers.get("Server", "")

    async def _open(self, timeout: float) -> None:
        for packet in await self.handshake(timeout):
            await self._on_packet(packet)
        self._tasks.append(asyncio.create_task(self._poller()))

    async def handshake(self, timeout: float) -> Sequence[str]:
        """The handshake GET alone, no long poll started: sets ``open_info``, returns the packets after OPEN."""
        status, body, server = await self._get(timeout)
        if status != 200:
            raise HandshakeRefused(f"Engine.IO handshake failed: HTTP {status} {_excerpt(body)}",
                                   HttpAnswer("handshake GET", status, server, body[:500]))
        packets = split_polling_body(body)
        if not packets:
            raise TargetError("Engine.IO handshake failed: empty response")
        self.open_info = parse_open(packets[0])
        return packets[1:]

    async def _poller(self) -> None:
        assert self.open_info is not None
        # A poll is held by the server for up to pingInterval; allow the ping timeout on top.
        hold = (self.open_info.ping_interval_ms + self.open_info.ping_timeout_ms) / 1000 + 5
        try:
            while not self.closed.done() and not self._closing:
                self._get_in_flight = True
                try:
                    status, body, server = await self._get(hold)
                finally:
                    self._get_in_flight = False
                if status != 200:
                    self._set_closed(CloseInfo(by="server", http_status=status, reason=body[:500], server=server))
                    return
                for packet in split_polling_body(body):
                    await self._on_packet(packet)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._set_closed(CloseInfo(by="server", error=_error_text(exc)))

    async def send(self, packets: Sequence[Packet]) -> SendResult:
        start = time.monotonic()
        separator = RECORD_SEPARATOR.encode()
        total = sum(packet_size(p) for p in packets) + len(separator) * max(len(packets) - 1, 0)
        progress = _Progress()
        url = self.endpoint.engineio_url(Transport.POLLING, self.open_info.sid if self.open_info else None)
        headers = list(self.endpoint.headers)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.insert(0, ("Content-Type", "text/plain;charset=UTF-8"))
        body: bytes | _ChunkedBody
        if total <= FIRST_POST_WRITE:
            body = b"".join(_joined(packets, separator))  # one write, with the request head
            progress.written = total
        else:
            body = _ChunkedBody(packets, separator, total, progress)
        # The read timeout starts once the whole body is written: a slow upload is not a timeout.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
        allowed = send_deadline_s(self.timeout, total)  # also bounds a body the server stops reading
        async with self._post_lock:
            try:
                async with asyncio.timeout(allowed):
                    async with self.session.post(url, data=body, headers=headers, ssl=_ssl(self.endpoint),
                                                 timeout=timeout) as resp:
                        text = await resp.text(errors="replace")
                        status, server = resp.status, resp.headers.get("Server", "")
            except TimeoutError as exc:
                self._unanswered_post = True
                if isinstance(exc, aiohttp.ConnectionTimeoutError):
                    error = f"could not connect within {self.timeout:g} s"
                elif isinstance(exc, aiohttp.ServerTimeoutError):
                    error = f"no answer to the POST within {self.timeout:g} s"
                else:
                    error = f"the POST was not done within {allowed:g} s (the server stopped reading its body?)"
                return progress.result(total, len(packets), start, error=error)
            except Exception as exc:
                return progress.result(total, len(packets), start, error=_error_text(exc))
        return progress.result(total, len(packets), start, http_status=status, http_body=text[:500],
                               http_server=server)

    async def _send_close(self) -> None:
        if self.open_info is None or self._unanswered_post:
            return  # no session to close, or a server that would not answer the CLOSE either
        # A GET sent just before our CLOSE can reach the server after it (another TCP
        # connection), and the server then logs an error for an unknown session. So first
        # have the pending GET answered: a CONNECT to an unused namespace makes the server
        # send a CONNECT_ERROR on it. The poller, seeing we are closing, sends no other GET.
        poller = self._tasks[0] if self._tasks else None
        if poller is not None and self._get_in_flight and not poller.done():
            flushed = await self.send([connect_packet(FLUSH_NAMESPACE).encode()])
            if flushed.ok:  # refused (another node?): no answer will come to the GET, do not wait for one
                # At most half of close()'s bound, so that the CLOSE itself still goes out.
                await asyncio.wait({poller}, timeout=min(FLUSH_TIMEOUT_S, self.timeout / 2))
        await self.send([EIO_CLOSE.encode()])


async def open_connection(
    endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession, timeout: float, *, join: bool = True
) -> Connection:
    """Handshake and join the endpoint's namespace; raise TargetError with the reason if not.

    ``join=False`` (polling only): the handshake GET alone, no long poll, no namespace: a bare
    Engine.IO session, for checks of the path.
    """
    cls = WebSocketConnection if transport is Transport.WEBSOCKET else PollingConnection
    conn = cls(endpoint, session, timeout)
    try:
        if join:
            await asyncio.wait_for(conn._open(timeout), timeout)
            await conn.connect_namespace(timeout)
        else:
            assert isinstance(conn, PollingConnection)
            await asyncio.wait_for(conn.handshake(timeout), timeout)
    except TargetError:
        await conn.close()
        raise
    except aiohttp.WSServerHandshakeError as exc:
        await conn.close()
        server = exc.headers.get("Server", "") if exc.headers else ""
        answer = HttpAnswer("websocket handshake", exc.status, server, await _refused_upgrade_body(endpoint, session, timeout))
        raise HandshakeRefused(_describe_upgrade_refusal(endpoint, answer), answer) from None
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        await conn.close()
        raise TargetError(_describe_connect_error(endpoint, transport, exc, timeout)) from None
    return conn


async def engineio_v3_handshake(endpoint: Endpoint, session: aiohttp.ClientSession,
                                timeout: float) -> tuple[HttpAnswer, OpenInfo | None]:
    """One Engine.IO v3 handshake GET (``EIO=3``: what socket.io-client 2.x sends): the answer, and
    the OPEN packet when the server speaks v3. A session it opened is closed at once (a CLOSE
    packet), so the master keeps no half-open client. TargetError when nothing answers."""
    url = endpoint.engineio_url(Transport.POLLING, eio=3)
    try:
        async with session.get(url, headers=endpoint.headers, ssl=_ssl(endpoint),
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            status, server = resp.status, resp.headers.get("Server", "")
            body = (await resp.content.read(2000)).decode(errors="replace")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise TargetError(_describe_connect_error(endpoint, Transport.POLLING, exc, timeout)) from None
    info = None
    if status == 200:
        with contextlib.suppress(ValueError, IndexError):
            info = parse_open(split_v3_payload(body)[0])
    if info is not None:
        close_url = endpoint.engineio_url(Transport.POLLING, info.sid, eio=3)
        headers = list(endpoint.headers)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.insert(0, ("Content-Type", "text/plain;charset=UTF-8"))
        with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
            async with session.post(close_url, data=v3_packet(EIO_CLOSE).encode(), headers=headers,
                                    ssl=_ssl(endpoint), timeout=aiohttp.ClientTimeout(total=timeout)) as closed:
                await closed.read()
    return HttpAnswer("EIO=3 handshake GET", status, server, body[:500]), info


async def _refused_upgrade_body(endpoint: Endpoint, session: aiohttp.ClientSession, timeout: float) -> str:
    """The body of a refused websocket handshake, which aiohttp does not keep: the same request
    once more, read as plain HTTP. Empty if it cannot be read (or is accepted this time)."""
    url = endpoint.engineio_url(Transport.POLLING).replace("transport=polling", "transport=websocket")
    key = base64.b64encode(os.urandom(16)).decode()
    headers = [*endpoint.headers, ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key)]
    try:
        async with session.get(url, headers=headers, ssl=_ssl(endpoint), timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status == 101:
                return ""
            return (await resp.content.read(2000)).decode(errors="replace")
    except (TimeoutError, aiohttp.ClientError, OSError):
        return ""


def _describe_upgrade_refusal(endpoint: Endpoint, answer: HttpAnswer) -> str:
    where = f"{redact_url(endpoint.url)}{engineio_path(endpoint.path)} (websocket)"
    refusal = http_refusal(answer.status, answer.body, answer.server)
    text = f"cannot reach {where}: websocket handshake refused ({refusal.evidence()})"
    if refusal.by is not Refuser.MASTER:
        text += "; is this a Socket.IO server and path?"
    return text


def _describe_connect_error(endpoint: Endpoint, transport: Transport, exc: BaseException, timeout: float) -> str:
    where = f"{redact_url(endpoint.url)}{engineio_path(endpoint.path)} ({transport.value})"
    if isinstance(exc, asyncio.TimeoutError):
        return f"cannot reach {where}: no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"cannot reach {where}: TLS certificate not trusted ({exc.certificate_error}); use --insecure for self-signed certificates"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno == errno.ECONNREFUSED:  # asyncio words it "Connect call failed"
            return f"cannot reach {where}: connection refused (nothing listens on port {exc.port}?)"
        return f"cannot reach {where}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, ValueError):
        return f"{where} did not answer like an Engine.IO v4 server: {exc}"
    return f"cannot reach {where}: {_error_text(exc)}"
