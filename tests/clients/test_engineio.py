"""imdiag's own Engine.IO client: close codes as the server wrote them, bounded sends, frames and
bodies written in chunks (exact, and stopped once the server has answered), paths."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import struct
import sys

import pytest
from aiohttp import web

from imdiag.clients.engineio import (
    FIRST_POST_WRITE,
    WRITE_CHUNK,
    Endpoint,
    PollingConnection,
    WebSocketConnection,
    open_connection,
    write_chunks,
)
from imdiag.clients.observe import LedgerWitness, Outgoing, observe
from imdiag.core.judge import close_text, judge
from imdiag.core.model import Cause
from imdiag.core.wire import Encoder, Streamed, Transport, parse_open
from imdiag.masters.kinds import new_master

from ..helpers import TIMEOUT, run_imdiag, serving


async def test_a_standalone_master_refuses_a_frame_written_mid_reset_with_1009(session):
    """The 1009 close frame must survive the TCP reset that follows it.

    A master in another process refuses a 10 MB frame while the client is still writing it:
    it sends its close frame (1009), closes with our bytes unread, and the kernel resets
    the connection. aiohttp's automatic close reply then fails and rewrites ws.close_code to
    1006; the close frame itself still says 1009. Every trial here used to read 1006.
    """
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", "fake-master", "--port", "0", "--limit", "1MB", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        assert url, banner
        for _ in range(3):  # the reset used to win every time; three shows it no longer can
            conn = await open_connection(Endpoint(url.group(1)), Transport.WEBSOCKET, session, TIMEOUT)
            try:
                await conn.send([b"4" + b"x" * 12_000_000])
                closed = await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
            finally:
                await conn.close()
            assert closed.code == 1009, closed
        code, stdout, stderr = await run_imdiag("probe", "--url", url.group(1), "--transport", "websocket",
                                                timeout=TIMEOUT * 6)
        assert code == 0, stderr
        assert "999,999 B" in stdout and "1,000,000 B" in stdout and "close 1009" in stdout
    finally:
        proc.terminate()
        await proc.wait()


async def _accept_session(ws: web.WebSocketResponse) -> None:
    """A bare Engine.IO server's side of the handshake: OPEN, then the namespace CONNECT answered."""
    await ws.send_str('0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}')
    await ws.receive()  # the namespace CONNECT
    await ws.send_str('40{"sid":"n1"}')


async def test_an_empty_close_frame_is_reported_as_1005_no_status(session):
    """RFC 6455: a close frame without a code is 'No Status Received' (1005), never 0."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await _accept_session(ws)
        await ws._writer.send_frame(b"", web.WSMsgType.CLOSE)  # public close() always writes a code
        await ws.receive()
        return ws

    async with serving(handler) as url:
        conn = await open_connection(Endpoint(url), Transport.WEBSOCKET, session, TIMEOUT)
        try:
            closed = await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
        finally:
            await conn.close()
    assert (closed.by, closed.code) == ("server", 1005)
    assert "1005 (No Status Received)" in close_text(closed.code, closed.reason)


def test_engineio_paths_and_the_entry_point_exit_code():
    from imdiag.clients.engineio import engineio_path
    from imdiag.core.errors import ExitCode
    from imdiag.entry import INTERRUPTED

    assert [engineio_path(p) for p in ("/socket.io/", "socket.io", "/", "", "/a/b")] == [
        "/socket.io/", "/socket.io/", "/", "/", "/a/b/"]
    assert Endpoint("http://h:1", path="/").engineio_url(Transport.POLLING) == "http://h:1/?EIO=4&transport=polling"
    assert INTERRUPTED == ExitCode.INTERRUPTED


async def test_a_server_that_stops_reading_cannot_hold_a_send_forever(monkeypatch, session):
    """A POST body the server stops reading: the send is bounded (timeout + size at a minimum rate)."""
    from imdiag.clients import engineio as connection

    monkeypatch.setattr(connection, "MIN_UPLOAD_BYTES_PER_S", 10**9)  # allow ~the timeout alone

    async def headers_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.Event().wait()  # never reads the body, never answers

    server = await asyncio.start_server(headers_only, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        conn = connection.PollingConnection(Endpoint(f"http://127.0.0.1:{port}"), session, timeout=0.5)
        conn.open_info = connection.parse_open('0{"sid":"x"}')
        sent = await asyncio.wait_for(conn.send([b"4" + b"a" * 64_000_000]), TIMEOUT)
        assert "the POST was not done within" in sent.error
    finally:
        server.close()


# --- writing in chunks: exact bytes, and no more than the server reads ----------------------


def _streamed(size: int) -> Streamed:
    """A packet made piece by piece (pieces of odd sizes, as the catalog's are)."""
    def pieces():
        made = 0
        while made < size:
            n = min(size - made, 77_777)
            yield bytes((48 + (made + i) % 10) for i in range(min(n, 10))) + b"7" * (n - min(n, 10))
            made += n
    return Streamed(size, pieces)


def test_write_chunks_are_exact_and_bounded():
    packets = [b"4" + b"a" * 700_000, _streamed(300_001), b"4b"]
    separator = b"\x1e"
    chunks = [bytes(c) for c in write_chunks(packets, separator, first=FIRST_POST_WRITE)]
    whole = separator.join(p if isinstance(p, bytes) else b"".join(p.pieces()) for p in packets)
    assert b"".join(chunks) == whole
    assert len(chunks[0]) == FIRST_POST_WRITE and all(len(c) == WRITE_CHUNK for c in chunks[1:-1])
    assert 0 < len(chunks[-1]) <= WRITE_CHUNK


async def _echo_sizes(request: web.Request) -> web.StreamResponse:
    """A bare aiohttp server (no imdiag code) reporting what it read: frames, or a POST body."""
    if request.method == "POST":
        body = await request.read()
        return web.Response(text=f"{len(body)} {hashlib.sha256(body).hexdigest()} "
                                 f"{request.headers.get('Transfer-Encoding', '-')} {request.content_length}")
    ws = web.WebSocketResponse(max_msg_size=0, autoping=False)
    await ws.prepare(request)
    while (msg := await ws.receive()).type is web.WSMsgType.TEXT:
        await ws.send_str(f"{len(msg.data.encode())} {hashlib.sha256(msg.data.encode()).hexdigest()}")
    return ws


async def test_frames_written_in_chunks_are_read_whole_by_a_bare_server(session):
    """Header and payload written separately, in chunks, masked chunk by chunk: aiohttp's own
    server reads each frame to the byte, at every header length (7, 16 and 64 bit)."""
    async with serving(_echo_sizes) as url:
        conn = WebSocketConnection(Endpoint(url), session, TIMEOUT)
        conn.ws = await session.ws_connect(url + "/socket.io/", max_msg_size=0, autoping=False)
        try:
            for size in (1, 125, 126, 65_535, 65_536, WRITE_CHUNK, WRITE_CHUNK + 1, 1_000_003):
                packet = _streamed(size) if size > 1000 else b"4" * size
                sent = await conn.send([packet])
                assert (sent.ok, sent.written_bytes) == (True, size), sent
                whole = packet if isinstance(packet, bytes) else b"".join(packet.pieces())
                answer = await asyncio.wait_for(conn.ws.receive(), TIMEOUT)
                assert answer.data == f"{size} {hashlib.sha256(whole).hexdigest()}"
        finally:
            await conn.ws.close()


async def test_a_post_written_in_chunks_announces_its_length_and_arrives_whole(session):
    async with serving(_echo_sizes) as url:
        conn = PollingConnection(Endpoint(url), session, TIMEOUT)
        conn.open_info = parse_open('0{"sid":"x"}')
        packets = [_streamed(3_000_001), b"4x"]
        sent = await conn.send(packets)
        whole = b"".join(packets[0].pieces()) + b"\x1e4x"
        assert sent.ok and sent.written_bytes == len(whole) == sent.body_bytes
        # A whole body with its Content-Length, as any client sends it: never chunked encoding.
        assert sent.http_body == f"{len(whole)} {hashlib.sha256(whole).hexdigest()} - {len(whole)}"


@pytest.mark.parametrize("server", ["python", pytest.param("node", marks=pytest.mark.node)])
@pytest.mark.parametrize("transport", list(Transport))
async def test_a_refused_frame_is_not_written_to_its_end(session, server, transport):
    """A 16 MB frame to a 100 KB master: the server refuses at the header (1009, 400, 413), the
    client stops writing once that answer has come, and the evidence says how far it got."""
    async with new_master(server, 100_000) as master:
        conn = await open_connection(Endpoint(master.url), transport, session, TIMEOUT)
        try:
            frame = _streamed(16_000_000)
            witness = LedgerWitness(master.ledger, Encoder.NODE, "message", "/")
            (obs,) = await observe(conn, [Outgoing(frame, digest="-")], witness, TIMEOUT)
        finally:
            await conn.close()
    verdict = judge(obs)
    assert verdict.cause is Cause.OVERSIZE_CLOSE, verdict
    assert obs.close_code == 1009 or obs.http_status in (400, 413)
    assert obs.body_bytes == 16_000_000 and obs.written_bytes is not None
    assert obs.written_bytes < 8_000_000  # the kernel's buffers, not the frame
    assert f"{obs.written_bytes:,} B of it written when the server answered" in verdict.evidence


async def test_pings_are_answered_between_frames(session):
    """aiohttp's autoping would write a pong in the middle of a frame being written in chunks:
    the reader answers websocket pings itself, through the writer."""

    async def pinging(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await _accept_session(ws)
        await ws.ping(b"are you there")
        pong = await ws.receive()
        await ws.send_str(f'42["{pong.type.name}",{json.dumps(pong.data.decode())}]')
        await ws.receive()
        return ws

    async with serving(pinging) as url:
        conn = await open_connection(Endpoint(url), Transport.WEBSOCKET, session, TIMEOUT)
        try:
            packet = await conn.next_packet(TIMEOUT)
        finally:
            await conn.close()
    assert packet is not None and packet.data == ["PONG", "are you there"]


async def test_a_close_frame_before_a_reset_survives_a_write_that_meets_the_reset(session):
    """The server's close frame (1009) and then its reset are both in the kernel when the client
    writes: the write fails, asyncio closes without reading, and the client still reads 1009.

    Made certain here by pausing the client's reading until the reset has come."""
    reset = asyncio.Event()

    async def refusing(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await _accept_session(ws)
        await ws.receive()  # "go": the client no longer reads
        await ws._writer.send_frame(b"\x03\xf1", web.WSMsgType.CLOSE)  # 1009
        assert request.transport is not None
        request.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.transport.abort()  # close at once, with a reset
        reset.set()
        return ws

    async with serving(refusing) as url:
        conn = await open_connection(Endpoint(url), Transport.WEBSOCKET, session, TIMEOUT)
        try:
            assert isinstance(conn, WebSocketConnection) and conn.ws is not None
            transport = conn.ws._writer.transport
            transport.pause_reading()
            await conn.send([b"42[\"go\"]"])
            await asyncio.wait_for(reset.wait(), TIMEOUT)
            sent = await conn.send([b"4" + b"x" * 300_000])
            closed = await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
        finally:
            await conn.close()
    assert sent.written_bytes < 300_001
    assert closed.code == 1009, closed
