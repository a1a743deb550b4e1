"""imdiag's own Engine.IO client: close codes as the server wrote them, bounded sends, paths."""

from __future__ import annotations

import asyncio
import os
import re
import sys

from aiohttp import web

from imdiag.clients.engineio import Endpoint, open_connection
from imdiag.core.judge import close_text
from imdiag.core.wire import Transport

from ..helpers import TIMEOUT, run_imdiag


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


async def test_an_empty_close_frame_is_reported_as_1005_no_status(session):
    """RFC 6455: a close frame without a code is 'No Status Received' (1005), never 0."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}')
        await ws.receive()  # the namespace CONNECT
        await ws.send_str('40{"sid":"n1"}')
        await ws._writer.send_frame(b"", web.WSMsgType.CLOSE)  # public close() always writes a code
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/socket.io/", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        conn = await open_connection(Endpoint(url), Transport.WEBSOCKET, session, TIMEOUT)
        try:
            closed = await asyncio.wait_for(asyncio.shield(conn.closed), TIMEOUT)
        finally:
            await conn.close()
        assert (closed.by, closed.code) == ("server", 1005)
        assert "1005 (No Status Received)" in close_text(closed.code, closed.reason)
    finally:
        await runner.cleanup()


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
