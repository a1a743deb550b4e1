"""The relay itself: byte for byte both ways, bounded buffers, a worker reset when the master is gone."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from imdiag.core.model import Outcome, TapDetails
from imdiag.core.tap import Settled, Unreachable
from imdiag.masters.kinds import NodeMaster
from imdiag.relays.connection import WRITE_HIGH_WATER

from ..clients.relay import LoopbackRelay
from ..helpers import TIMEOUT
from ..node_worker import NodeWorker, kind
from ..taps import assert_agrees_with_ledger, tapping

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Stream:
    """Everything one connection carried, each way."""

    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)


class Recorder(LoopbackRelay):
    """A plain TCP relay on loopback that records every byte of every connection, both ways."""

    def __init__(self, target_port: int):
        super().__init__(target_port)
        self.streams: list[Stream] = []
        self._open = 0
        self._idle = asyncio.Event()

    async def all_closed(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self._open:
                await self._idle.wait()
                self._idle.clear()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                     server_r: asyncio.StreamReader, server_w: asyncio.StreamWriter) -> None:
        self._open += 1
        stream = Stream()
        self.streams.append(stream)
        try:
            await asyncio.gather(self._pipe(client_r, server_w, stream.to_server),
                                 self._pipe(server_r, client_w, stream.to_client), return_exceptions=True)
        finally:
            for writer in (client_w, server_w):
                writer.close()
            self._open -= 1
            self._idle.set()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray) -> None:
        """Record everything that arrives, whether or not the other side still takes it (a worker
        that went away must not hide what the tap sent it)."""
        broken = False
        try:
            while data := await reader.read(65536):
                record += data
                if not broken:
                    try:
                        writer.write(data)
                        await writer.drain()
                    except ConnectionError:
                        broken = True
        finally:
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write_eof()


def _streams(recorder: Recorder, host_from: bytes = b"", host_to: bytes = b"") -> Counter[tuple[bytes, bytes]]:
    return Counter((bytes(s.to_server).replace(host_from, host_to), bytes(s.to_client)) for s in recorder.streams)


def _empty(recorder: Recorder) -> int:
    return sum(1 for s in recorder.streams if not s.to_server and not s.to_client)


@pytest.mark.node
@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_what_reaches_the_master_is_what_the_worker_sent(transports: list[str]) -> None:
    """worker -> recorder A -> tap -> recorder B -> master: A and B saw the same bytes both ways on
    every connection (the Host line aside), binary attachments included."""
    attachments = [os.urandom(300_000), b"\x00\x01\x02\x03\x04"]
    async with NodeMaster(limit=1_000_000, namespace="/worker") as master, Recorder(master.port) as near_master, \
            tapping(near_master.port) as tap, Recorder(tap.listening.port) as near_worker:
        async with NodeWorker(f"http://127.0.0.1:{near_worker.port}/worker", {"transports": transports}) as worker:
            await worker.wait_for(kind("upgrade") if "websocket" in transports else kind("connect"), TIMEOUT)
            worker.send(op="emit", message={"type": "worker:heartbeat", "id": "hb", "payload": {"名": "工人😀"}})
            worker.send(op="emit", message={"type": "worker:file", "id": "file", "payload": {"name": "a.bin"}},
                        binary=[base64.b64encode(a).decode() for a in attachments], ack=True)
            await worker.wait_for(kind("ack"), TIMEOUT)
            await tap.wait_for(lambda e: isinstance(e, Settled), count=2)
            worker.send(op="disconnect")
            await worker.wait_for(kind("disconnected"), TIMEOUT)
        await near_worker.all_closed()  # every connection ended by itself, before the tap stops
        await near_master.all_closed()
        report = await tap.report()
    host_a = f"Host: 127.0.0.1:{near_worker.port}".encode()
    host_b = f"Host: 127.0.0.1:{near_master.port}".encode()
    # The same connections, each with the same bytes both ways; the master side has one more, empty:
    # the tap's start-up check that the upstream can be reached.
    worker_side, master_side = _streams(near_worker, host_a, host_b) + Counter({(b"", b""): 1}), _streams(near_master)
    assert worker_side == master_side
    assert _empty(near_master) == _empty(near_worker) + 1
    assert sum(len(s.to_server) for s in near_master.streams) > 300_000  # the attachment went through
    details = report.details
    assert isinstance(details, TapDetails)
    file = next(m for m in details.messages if m.outcome is Outcome.ACKED)
    if "websocket" in transports:
        assert file.attachment_bytes == (300_000, 5)  # one binary frame each
    else:
        assert file.attachment_bytes == (1 + 400_000, 1 + 8)  # "b" + base64, one polling record each
    assert_agrees_with_ledger(report, master.ledger)


@contextlib.asynccontextmanager
async def _raw_server(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _push(writer: asyncio.StreamWriter, chunk: bytes, limit: int) -> int:
    """Write until the peer stops taking bytes (a drain that does not finish in 0.3 s); bytes written."""
    written = 0
    while written < limit:
        writer.write(chunk)
        written += len(chunk)
        try:
            await asyncio.wait_for(writer.drain(), 0.3)
        except TimeoutError:
            break
    return written


BIG = 256 * 1024 * 1024
BOUND = 4 * WRITE_HIGH_WATER  # a read buffer and a write buffer, each at most a chunk over its mark


async def test_a_master_that_stops_reading_stops_the_worker_not_the_tap_memory() -> None:
    """Backpressure: a master that reads nothing of a 256 MB POST body. The worker's writes stall; the
    tap holds a few hundred KB, not what the worker pushes."""
    done = asyncio.Event()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await done.wait()  # and reads nothing more
        writer.close()

    async with _raw_server(upstream) as port, tapping(port) as tap:
        _, writer = await asyncio.open_connection("127.0.0.1", tap.listening.port)
        writer.write(b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: %d\r\n\r\n" % BIG)
        pushed = await _push(writer, b"y" * 1_048_576, BIG)
        held = tap.listening.buffered()
        done.set()
        writer.close()
    assert pushed < BIG and held <= BOUND, (pushed, held)


async def test_a_worker_that_stops_reading_stops_the_master_not_the_tap_memory() -> None:
    """Backpressure the other way: a worker that reads nothing of a 256 MB answer."""
    stalled, done = asyncio.Event(), asyncio.Event()
    pushed = 0

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pushed
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
        pushed = await _push(writer, b"x" * 1_048_576, BIG)
        stalled.set()
        await done.wait()
        writer.close()

    async with _raw_server(upstream) as port, tapping(port) as tap:
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.listening.port)
        writer.write(b"GET /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: t\r\n\r\n")
        await reader.readexactly(1000)  # the answer flows, then nobody reads it
        await asyncio.wait_for(stalled.wait(), TIMEOUT)
        held = tap.listening.buffered()
        done.set()
        writer.close()
    assert pushed < BIG and held <= BOUND, (pushed, held)


@pytest.mark.parametrize("master", ["answers", "waits", "held"])
async def test_a_post_the_worker_stops_sending_is_still_settled(master: str) -> None:
    """A worker that stops sending a POST body (aiohttp's client does, once the answer is released):
    - ``answers``: the master answered 400 from the head and closed (python-engineio's way over
      max_http_buffer_size): the message is refused with that answer;
    - ``waits``: the master waits for the whole body: the message is lost with the connection;
    - ``held``: ``--hold-oversize`` answered for the master: the message is held.
    Each time it is named by its head, and its size with the rest of the POST is the announced one."""
    opened = b'0{"sid":"S1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}'
    packet = b'42/worker,["message",{"type":"worker:data:sync","id":"snap-1","payload":"' + b"x" * 5000 + b'"}]'

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(opened) + opened)
            elif master == "answers":
                writer.write(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\nConnection: close\r\n\r\n"Bad Request"')
            elif master == "waits":
                await reader.readexactly(len(packet))  # never: the worker stops first
            else:  # held: the tap's CLOSE packet for the session
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the tap's start-up check, or the connection the worker left
        writer.close()

    async with _raw_server(upstream) as port, tapping(port, hold_oversize=master == "held") as tap:
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.listening.port)
        writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await reader.read()).endswith(opened)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.listening.port)
        writer.write(b"POST /socket.io/?EIO=4&transport=polling&sid=S1 HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(packet) + packet[:300])
        if master != "waits":
            answer = await reader.readuntil(b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400" if master == "answers" else b"HTTP/1.1 413"), answer
        writer.close()  # the rest of the body never comes
        await tap.wait_for(lambda e: isinstance(e, Settled))
        report = await tap.report()
    (cell,) = report.cells
    assert (cell.type, cell.message_id, cell.message_bytes, cell.wire_bytes, cell.delivered) == (
        "worker:data:sync", "snap-1", len(packet), len(packet), False)
    outcome = {"answers": Outcome.REFUSED, "waits": Outcome.LOST, "held": Outcome.HELD}[master]
    assert isinstance(report.details, TapDetails) and report.details.messages[0].outcome is outcome
    assert "this message's own size is not known" in report.details.messages[0].proof
    if master == "answers":
        assert cell.observed.http_status == 400


async def test_a_chunked_body_passes_as_it_came() -> None:
    received = bytearray()
    done = asyncio.Event()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not received.endswith(b"0\r\nX-Trailer: 1\r\n\r\n"):
            data = await reader.read(65536)
            if not data:
                return  # the tap's start-up check, or a connection that ended
            received.extend(data)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        await writer.drain()
        done.set()

    request = (b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    async with _raw_server(upstream) as port, tapping(port) as tap:
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.listening.port)
        writer.write(request)
        answer = await reader.readuntil(b"0\r\n\r\n")
        await done.wait()
        writer.close()
        await tap.report()
    assert bytes(received) == request.replace(b"Host: t", f"Host: 127.0.0.1:{port}".encode())
    assert answer == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"


async def test_a_worker_is_reset_when_the_master_cannot_be_reached() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with tapping(port) as tap:  # starts: the upstream answers the start-up check
        server.close()
        await server.wait_closed()
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.listening.port)
        writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\n\r\n")
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), TIMEOUT)
        (unreachable,) = await tap.wait_for(lambda e: isinstance(e, Unreachable))
        writer.close()
    assert "connection refused" in unreachable.error
