"""A loopback TCP relay that counts what the client really sends, independently of imdiag.

It parses the client-to-server byte stream only as far as needed to count: HTTP request
heads (method, Content-Length, the body bytes that really follow) and, after a websocket
upgrade, RFC 6455 frame headers (opcode, payload length). Server bytes pass through as-is.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Self


@dataclass
class Counts:
    post_bodies: list[int] = field(default_factory=list)  # bytes that followed each POST head
    ws_text_payloads: list[int] = field(default_factory=list)  # payload length of each text frame


class LoopbackRelay:
    """A TCP relay on 127.0.0.1 to ``target_port``; subclasses say what one connection does (``_relay``)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            await self._relay(client_r, client_w, server_r, server_w)
        finally:
            self._tasks.discard(task)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                     server_r: asyncio.StreamReader, server_w: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class Relay(LoopbackRelay):
    def __init__(self, target_port: int):
        super().__init__(target_port)
        self.counts = Counts()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                     server_r: asyncio.StreamReader, server_w: asyncio.StreamWriter) -> None:
        up = asyncio.create_task(self._client_to_server(client_r, server_w))
        down = asyncio.create_task(self._pipe(server_r, client_w))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            for writer in (client_w, server_w):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _forward_exactly(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> int:
        seen = 0
        while seen < n:
            chunk = await reader.read(min(65536, n - seen))
            if not chunk:
                break
            seen += len(chunk)
            writer.write(chunk)
            await writer.drain()
        return seen

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            lines = head.decode("latin-1").split("\r\n")
            method = lines[0].split(" ")[0]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if headers.get("upgrade", "").lower() == "websocket":
                await self._frames(reader, writer)
                return
            length = int(headers.get("content-length", "0"))
            body = await self._forward_exactly(reader, writer, length)
            if method == "POST":
                self.counts.post_bodies.append(body)

    async def _frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(2)
            writer.write(header)
            opcode, masked, length = header[0] & 0x0F, header[1] & 0x80, header[1] & 0x7F
            extra = b""
            if length == 126:
                extra = await reader.readexactly(2)
                length = int.from_bytes(extra, "big")
            elif length == 127:
                extra = await reader.readexactly(8)
                length = int.from_bytes(extra, "big")
            if masked:
                extra += await reader.readexactly(4)
            writer.write(extra)
            if opcode == 1:
                self.counts.ws_text_payloads.append(length)
            await self._forward_exactly(reader, writer, length)
