"""asyncio streams for a relay: a reset never takes away bytes that already arrived.

With plain asyncio streams, a connection that breaks (a reset, or a write that meets a reset)
makes the reader raise at once, dropping what it had buffered; and a write that fails closes
the socket with bytes still unread in the kernel. That is exactly how a master refuses an
oversize frame: its close frame (1009), then a reset while the worker is still writing. A relay
must pass that close frame on, so here the bytes received before the break are read first,
then the stream ends, and ``lost`` says how it broke.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

KERNEL_RESCUE_BYTES = 1 << 20  # at most this much is read from the kernel once the socket broke


class RelayStreamProtocol(asyncio.StreamReaderProtocol):
    """``StreamReaderProtocol`` that ends its reader with EOF on a broken connection, after the
    bytes it holds, and after the bytes still in the kernel's receive buffer (plain TCP)."""

    def __init__(self, reader: asyncio.StreamReader, connected: Any = None):
        super().__init__(reader, connected)
        self._reader = reader
        self.lost: BaseException | None = None
        self._raw: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = transport
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.lost = exc
            self._rescue()
        super().connection_lost(None)

    def _rescue(self) -> None:
        """Read what the kernel still holds (the socket is not closed yet when this runs)."""
        transport = self._raw
        reader = self._reader
        if transport is None or reader is None or transport.get_extra_info("sslcontext") is not None:
            return
        sock = transport.get_extra_info("socket")
        if sock is None:
            return
        try:
            raw = socket.fromfd(sock.fileno(), sock.family, sock.type)  # a duplicate descriptor
        except OSError:
            return
        with raw:
            raw.setblocking(False)
            rescued = 0
            while rescued < KERNEL_RESCUE_BYTES:
                try:
                    data = raw.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                rescued += len(data)
                reader.feed_data(data)


def lost_error(writer: asyncio.StreamWriter) -> BaseException | None:
    """How the stream's connection broke (None: it ended normally, or has not ended)."""
    protocol = writer.transport.get_protocol()
    return protocol.lost if isinstance(protocol, RelayStreamProtocol) else None


async def open_stream(host: str, port: int, *, limit: int, **kwargs: Any) -> tuple[asyncio.StreamReader,
                                                                                   asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, protocol = await loop.create_connection(lambda: RelayStreamProtocol(reader), host, port, **kwargs)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def start_stream_server(connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                              host: str, port: int, *, limit: int, **kwargs: Any) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def factory() -> RelayStreamProtocol:
        return RelayStreamProtocol(asyncio.StreamReader(limit=limit, loop=loop), connected)

    return await loop.create_server(factory, host, port, **kwargs)

