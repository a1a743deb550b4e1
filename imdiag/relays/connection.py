"""One worker connection relayed to one upstream connection, byte for byte, in both directions.

Two pumps run side by side. Each reads HTTP/1.1 messages (then, after a ``101``, RFC 6455
frames) from one side and writes the same bytes to the other, chunk by chunk, awaiting the
other side's ``drain()`` before reading more: a side that stops reading stops the pump, so the
relay holds only the bytes in flight. Only the ``Host`` line of a request is rewritten, for the
upstream. A copy of what the observer needs to decode is kept: a worker's message whole (up to
``DECODE_MAX``), a master's up to ``SERVER_DECODE_MAX``; the forwarded bytes are never those
copies. The end of a side is passed on as it came: a FIN as a FIN, a reset as a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from imdiag.core.frames import (
    DATA_OPCODES,
    MIN_HEADER,
    OP_CLOSE,
    OP_CONTINUATION,
    Deflate,
    FrameHeader,
    Inflater,
    close_header,
    header_size,
    parse_close,
    parse_extensions,
    parse_header,
    unmask,
)
from imdiag.core.http1 import (
    CRLF,
    HEAD_END,
    SWITCHING_PROTOCOLS,
    BadHead,
    BodyFraming,
    Request,
    Response,
    chunk_size,
    decode_body,
    parse_request,
    parse_response,
    request_framing,
    response_framing,
    with_host,
)
from imdiag.core.tap import Hold
from imdiag.relays.streams import lost_error

CHUNK = 256 * 1024
SMALL_FRAME = 64 * 1024  # a frame up to this size is read whole and written in one go
WRITE_HIGH_WATER = 256 * 1024  # drain() waits above this: the bound on what waits for a slow reader
DECODE_MAX = 64 * 1024 * 1024  # a worker's message is decoded up to this size (sizes are always exact)
SERVER_DECODE_MAX = 1024 * 1024  # a master's message or response body, likewise
AFTER_END_S = 10.0  # once one side is gone, the other gets this long to finish what it was sending
MAX_HEAD = 64 * 1024


class RelayObserver(Protocol):
    """What the relay reports (``imdiag.core.tap.Tracker`` is one); ``Hold`` answers come back."""

    def connection(self, conn: int, peer: str) -> None: ...

    def unreachable(self, peer: str, error: str) -> None: ...

    def request_head(self, conn: int, exchange: int, request: Request) -> Hold | None: ...

    def request_body(self, conn: int, exchange: int, request: Request, body: bytes | None, size: int,
                     whole: bool = True) -> None: ...

    def response(self, conn: int, exchange: int, request: Request, response: Response, body: bytes | None) -> None: ...

    def exchange_failed(self, exchange: int, error: str) -> None: ...

    def ws_opened(self, conn: int, request: Request, response: Response) -> None: ...

    def ws_frame(self, conn: int, header: FrameHeader) -> Hold | None: ...

    def ws_message(self, conn: int, from_worker: bool, opcode: int, payload: bytes | None, wire_bytes: int) -> None: ...

    def ws_close(self, conn: int, from_worker: bool, code: int, reason: str) -> None: ...

    def conn_ended(self, conn: int, side: str, error: str = "") -> None: ...

    def connection_closed(self, conn: int) -> None: ...


class Sink:
    """One side's writer: bytes go out in order; a broken side swallows the rest (the pump goes on
    reading its source to the end of the message, which the observer still needs)."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.lock = asyncio.Lock()  # a frame or message is written whole before anything else
        self.broken = ""
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def write(self, data: bytes) -> None:
        if not self.broken and data and self.writer.transport.is_closing():
            self.broken = str(lost_error(self.writer) or "the connection is closed")
        if not self.broken and data:
            try:
                self.writer.write(data)
            except (ConnectionError, RuntimeError) as exc:
                self.broken = _error_text(exc)

    async def drain(self) -> None:
        if self.broken:
            return
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.broken = _error_text(exc)

    def end(self, reset: bool) -> None:
        """Pass on the other side's end: a reset as a reset, a FIN as a FIN (or a close)."""
        transport = self.writer.transport
        if transport.is_closing():
            return
        if reset:
            abort(self.writer)
        elif transport.can_write_eof() and not self.broken:
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
        else:
            transport.close()

    @property
    def buffered(self) -> int:
        return self.writer.transport.get_write_buffer_size()


def abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a peer that vanished would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, BodyCut) and exc.__cause__ is not None:
        exc = exc.__cause__  # what cut the body is the error
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class _Pending:
    """A request forwarded upstream, waiting for its response."""

    exchange: int
    request: Request
    swallow: bool = False  # the tap's own request (--hold-oversize): its answer is not the worker's
    answered: asyncio.Future[None] | None = None  # set once its response has been read


class Closed(Exception):
    """A side ended in the middle of a message."""


class BodyCut(Closed):
    """A body's source ended (or went quiet past its time) before the body's end: what had come of
    it (``body`` when kept) and its size."""

    def __init__(self, cause: BaseException, body: bytes | None, size: int):
        super().__init__(str(cause) or type(cause).__name__)
        self.body = body
        self.size = size


class RelayedConnection:
    """A worker's connection and the upstream connection opened for it."""

    def __init__(self, conn: int, worker: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], authority: str,
                 observer: RelayObserver, next_exchange: Callable[[], int]):
        self.conn = conn
        self.worker_in, self.upstream_in = worker[0], upstream[0]
        self.to_worker, self.to_upstream = Sink(worker[1]), Sink(upstream[1])
        self.authority = authority
        self.observer = observer
        self._next_exchange = next_exchange
        self._pending: deque[_Pending] = deque()
        self._upgrade: asyncio.Future[bool] | None = None
        self._deflate: Deflate | None = None
        # Set while the worker is between messages. When the master ends the connection while a
        # worker's message is still arriving (a refusal), that end is passed on once the message is
        # in (bounded): its close frame or status went on at once, and the message can be named.
        self._worker_idle = asyncio.Event()
        self._worker_idle.set()

    @property
    def buffered(self) -> int:
        """Bytes this connection holds in user space right now (read buffers and write buffers)."""
        readers = len(getattr(self.worker_in, "_buffer", b"")) + len(getattr(self.upstream_in, "_buffer", b""))
        return readers + self.to_worker.buffered + self.to_upstream.buffered

    async def run(self) -> None:
        from_worker = asyncio.create_task(self._from_worker())
        from_upstream = asyncio.create_task(self._from_upstream())
        try:
            _, pending = await asyncio.wait({from_worker, from_upstream}, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                # One side is done: the other may finish what it is sending, for a while.
                await asyncio.wait(pending, timeout=AFTER_END_S)
        finally:
            for task in (from_worker, from_upstream):
                if not task.done():
                    task.cancel()
            for task in (from_worker, from_upstream):
                with contextlib.suppress(BaseException):
                    await task
            for sink in (self.to_worker, self.to_upstream):
                if not sink.writer.transport.is_closing():
                    sink.writer.transport.close()
            for exchange in self._pending:
                self.observer.exchange_failed(exchange.exchange, "the connection ended before the answer")
            self._pending.clear()
            self.observer.connection_closed(self.conn)

    def close(self) -> None:
        """Stop relaying (the tap is stopping): close both sides now. A side that stopped reading
        would hold a close until its buffer drains, so that side is aborted instead."""
        self._worker_idle.set()  # nothing more will arrive: no end waits for a message to finish
        for sink in (self.to_worker, self.to_upstream):
            if sink.buffered:
                sink.writer.transport.abort()
            else:
                sink.writer.transport.close()

    # --- worker -> upstream --------------------------------------------------------------------

    async def _from_worker(self) -> None:
        await self._pump("worker", self.to_worker, self.to_upstream, self._worker_messages)

    async def _from_upstream(self) -> None:
        try:
            await self._pump("master", self.to_upstream, self.to_worker, self._upstream_messages)
        finally:
            if self._upgrade is not None and not self._upgrade.done():
                self._upgrade.set_result(False)

    async def _pump(self, side: str, source: Sink, sink: Sink, relay: Callable[[], Awaitable[None]]) -> None:
        """Run one direction; report how its source ended and pass that end on to ``sink``: a reset
        as a reset, an end as an end."""
        error = ""
        try:
            await relay()
        except (ConnectionError, OSError, BadHead, Closed, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            error = _error_text(exc)
        lost = lost_error(source.writer)
        if lost is not None and not error:
            error = _error_text(lost)
        if side == "worker":
            self._worker_idle.set()  # the worker's side is over: no message of it is still arriving
        self.observer.conn_ended(self.conn, side, error)
        if side == "master":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._worker_idle.wait(), AFTER_END_S)
        sink.end(reset=lost is not None)

    async def _worker_messages(self) -> None:
        while (head := await _read_head(self.worker_in)) is not None:
            request = parse_request(head)
            exchange = self._next_exchange()
            hold = self.observer.request_head(self.conn, exchange, request)
            if hold is not None:
                await self._hold_request(exchange, request, hold)
                return
            self._pending.append(_Pending(exchange, request))
            if request.is_upgrade:
                self._upgrade = asyncio.get_running_loop().create_future()
            self._worker_idle.clear()
            async with self.to_upstream.lock:
                self.to_upstream.write(with_host(head, self.authority))
                try:
                    body, size = await self._body(self.worker_in, self.to_upstream, request_framing(request), DECODE_MAX)
                except BodyCut as cut:
                    # The worker stopped sending the body (aiohttp's client stops one once its
                    # response is released): what came is reported, and the master's answer, or
                    # the connection's end without one (lost), settles it.
                    self.observer.request_body(self.conn, exchange, request, cut.body, cut.size, whole=False)
                    raise
            self.observer.request_body(self.conn, exchange, request, body, size)
            self._worker_idle.set()
            if self._upgrade is not None and await self._upgrade:
                await self._frames(from_worker=True)
                return
            self._upgrade = None

    async def _hold_request(self, exchange: int, request: Request, hold: Hold) -> None:
        """--hold-oversize over polling, in the master's order: close the worker's session upstream (an
        Engine.IO CLOSE: the master answers the worker's pending GET with its own close), then answer
        the POST as the master would, and read its body (never forwarded) for the observer."""
        close = (f"POST {request.target} HTTP/1.1\r\nHost: {self.authority}\r\n"
                 "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1").encode()
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(self._next_exchange(), request, swallow=True, answered=answered))
        async with self.to_upstream.lock:
            self.to_upstream.write(close)
            await self.to_upstream.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(answered), AFTER_END_S)
        async with self.to_worker.lock:
            self.to_worker.write(hold.response)
            await self.to_worker.drain()
        try:
            body, size = await self._body(self.worker_in, None, request_framing(request), DECODE_MAX, AFTER_END_S)
        except BodyCut as cut:
            # The worker stopped sending the body once answered, or went quiet: held all the same.
            self.observer.request_body(self.conn, exchange, request, cut.body, cut.size, whole=False)
        else:
            self.observer.request_body(self.conn, exchange, request, body, size)
        self.to_worker.end(reset=False)

    # --- upstream -> worker --------------------------------------------------------------------

    async def _upstream_messages(self) -> None:
        while (head := await _read_head(self.upstream_in)) is not None:
            response = parse_response(head)
            if not self._pending:
                raise BadHead(f"a response to no request: {head[:60]!r}")
            pending = self._pending[0]
            informational = response.status < 200 and response.status != SWITCHING_PROTOCOLS
            if not informational:
                self._pending.popleft()
            if response.status == SWITCHING_PROTOCOLS and pending.request.is_upgrade:
                await self._switch(head, pending.request, response)
                return
            if self._upgrade is not None and pending.request.is_upgrade and not self._upgrade.done():
                self._upgrade.set_result(False)
            sink = None if pending.swallow else self.to_worker
            framing = BodyFraming(0) if informational else response_framing(response, pending.request.method)
            async with self.to_worker.lock:
                if sink is not None:
                    sink.write(head)
                body, _ = await self._body(self.upstream_in, sink, framing, SERVER_DECODE_MAX)
            if pending.answered is not None and not informational and not pending.answered.done():
                pending.answered.set_result(None)
            if not informational and not pending.swallow:
                body = decode_body(body, response.headers.get("content-encoding"), SERVER_DECODE_MAX)
                self.observer.response(self.conn, pending.exchange, pending.request, response, body)
            if framing.until_close:
                return

    async def _switch(self, head: bytes, request: Request, response: Response) -> None:
        """The upstream accepted the websocket: from here on, frames both ways."""
        self._deflate = parse_extensions(response.headers.get("sec-websocket-extensions"))
        self.observer.ws_opened(self.conn, request, response)
        async with self.to_worker.lock:
            self.to_worker.write(head)
            await self.to_worker.drain()
        assert self._upgrade is not None
        self._upgrade.set_result(True)
        await self._frames(from_worker=False)

    # --- bodies and frames ---------------------------------------------------------------------

    async def _body(self, source: asyncio.StreamReader, sink: Sink | None, framing: BodyFraming, keep: int,
                    timeout: float | None = None) -> tuple[bytes | None, int]:
        """Forward one body as it is framed; the copy (when at most ``keep`` bytes) and its size."""
        parts: list[bytes] | None = [] if framing.length is None or framing.length <= keep else None
        size = 0

        async def framing_bytes(data: bytes) -> None:
            if sink is not None:
                sink.write(data)

        async def content(data: bytes) -> None:
            nonlocal parts, size
            if sink is not None:
                await _yield()
                sink.write(data)
                await sink.drain()
            size += len(data)
            if parts is not None:
                parts.append(data)
                if size > keep:
                    parts = None

        try:
            async with asyncio.timeout(timeout):
                await _read_body(source, framing, framing_bytes, content)
        except (Closed, asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
            raise BodyCut(exc, b"".join(parts) if parts is not None else None, size) from exc
        if sink is not None:
            await sink.drain()
        return (b"".join(parts) if parts is not None else None), size

    async def _frames(self, *, from_worker: bool) -> None:
        """Relay websocket frames from one side until it ends; report each message and close frame."""
        source = self.worker_in if from_worker else self.upstream_in
        sink = self.to_upstream if from_worker else self.to_worker
        inflater = None
        if self._deflate is not None:
            deflate = self._deflate
            inflater = Inflater(deflate.client_no_context_takeover if from_worker else deflate.server_no_context_takeover)
        keep = DECODE_MAX if from_worker else SERVER_DECODE_MAX
        parts: list[bytes] | None = []
        opcode, wire, compressed = 0, 0, False
        while (raw := await _read_frame_header(source)) is not None:
            header = parse_header(raw)
            is_data = header.opcode in DATA_OPCODES
            hold = self.observer.ws_frame(self.conn, header) if from_worker and is_data else None
            if hold is not None and hold.close_code is not None:
                await self._hold_frame(header, hold.close_code, wire)
                return
            if is_data and header.opcode != OP_CONTINUATION:
                opcode, wire, compressed, parts = header.opcode, 0, header.rsv1, []
            kept = not is_data or (parts is not None and wire + header.length <= keep)
            if from_worker:
                self._worker_idle.clear()
            payload = await self._frame(source, sink, raw, header, kept)
            if not is_data:
                if header.opcode == OP_CLOSE:
                    code, reason = parse_close(payload or b"")
                    self.observer.ws_close(self.conn, from_worker, code, reason)
                self._idle(from_worker)
                continue
            wire += header.length
            parts = parts + [payload] if parts is not None and payload is not None else None
            if not header.fin:
                self._idle(from_worker)
                continue
            message = b"".join(parts) if parts is not None else None
            if message is not None and compressed:
                message = inflater.inflate(message, keep) if inflater is not None else None
            self.observer.ws_message(self.conn, from_worker, opcode, message, wire)
            self._idle(from_worker)
            parts = []

    def _idle(self, from_worker: bool) -> None:
        if from_worker:
            self._worker_idle.set()

    async def _frame(self, source: asyncio.StreamReader, sink: Sink | None, raw_header: bytes,
                     header: FrameHeader, keep: bool) -> bytes | None:
        """Forward one frame (its header as read, then its payload); the unmasked payload if kept."""
        if header.length <= SMALL_FRAME:
            # Header and payload in one write: one system call per small frame, not two.
            payload = await source.readexactly(header.length)
            if sink is not None:
                async with sink.lock:
                    sink.write(raw_header + payload)
                    await sink.drain()
            return unmask(payload, header.mask) if keep else None
        parts: list[bytes] = []
        offset = 0

        async def forward(data: bytes) -> None:
            nonlocal offset
            if keep:
                parts.append(unmask(data, header.mask, offset))
            offset += len(data)
            if sink is not None:
                await _yield()
                sink.write(data)
                await sink.drain()

        async with sink.lock if sink is not None else contextlib.nullcontext():
            if sink is not None:
                sink.write(raw_header)
            await _copy(source, header.length, forward)
        return b"".join(parts) if keep else None

    async def _hold_frame(self, header: FrameHeader, code: int, wire: int) -> None:
        """--hold-oversize over websocket: close the worker with ``code`` as the master would, read the
        frame (never forwarded) for the observer, and end the upstream connection."""
        async with self.to_worker.lock:
            self.to_worker.write(close_header(code))
            await self.to_worker.drain()
        try:
            async with asyncio.timeout(AFTER_END_S):
                payload = await self._frame(self.worker_in, None, b"", header, header.length <= DECODE_MAX)
        except (TimeoutError, Closed):
            payload = None
        self.observer.ws_message(self.conn, True, header.opcode or 1, payload, wire + header.length)
        self.to_upstream.end(reset=False)
        self.to_worker.end(reset=False)


async def _yield() -> None:
    """Let the loop read what has arrived before writing more: a refusal (a close frame, a 413) that
    came in is then read before a write can meet the reset that follows it."""
    await asyncio.sleep(0)  # sleep-ok: a yield to the loop, not a wait for time


async def _read_head(source: asyncio.StreamReader) -> bytes | None:
    """An HTTP head; None at a clean end of the connection between messages."""
    try:
        return await source.readuntil(HEAD_END)
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise Closed("the connection ended inside an HTTP head") from None
        return None


async def _read_frame_header(source: asyncio.StreamReader) -> bytes | None:
    """A frame header's bytes as they came; None at a clean end of the connection between frames."""
    try:
        first = await source.readexactly(MIN_HEADER)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise Closed("the connection ended inside a frame header") from None
        return None
    return first + await source.readexactly(header_size(first) - MIN_HEADER)


async def _read_body(source: asyncio.StreamReader, framing: BodyFraming,
                     framing_bytes: Callable[[bytes], Awaitable[None]],
                     content: Callable[[bytes], Awaitable[None]]) -> None:
    """Read one body as it is framed: its framing bytes and its content, each handed on."""
    if framing.chunked:
        while length := chunk_size(line := await source.readuntil(CRLF)):
            await framing_bytes(line)
            await _copy(source, length, content)
            await framing_bytes(await source.readexactly(2))
        await framing_bytes(line)
        while (trailer := await source.readuntil(CRLF)) != CRLF:
            await framing_bytes(trailer)
        await framing_bytes(CRLF)
    elif framing.until_close:
        while data := await source.read(CHUNK):
            await content(data)
    elif framing.length:
        await _copy(source, framing.length, content)


async def _copy(source: asyncio.StreamReader, length: int, forward: Callable[[bytes], Awaitable[None]]) -> None:
    remaining = length
    while remaining:
        data = await source.read(min(CHUNK, remaining))
        if not data:
            raise Closed(f"the connection ended {remaining:,} B before the end of a {length:,} B body or frame")
        remaining -= len(data)
        await forward(data)
