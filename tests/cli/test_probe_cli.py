"""``imdiag probe`` as a process: output, JSON, one-line errors and their exit codes, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from imdiag.masters.asgi import AsgiMaster
from imdiag.masters.python import PythonMaster

from ..helpers import (
    SCALE,
    TIMEOUT,
    assert_one_line_error,
    html_page,
    imdiag_process,
    interrupt,
    run_imdiag,
    serving,
)

NS = "/worker"


async def run_cli(*args: str) -> tuple[int, str, str]:
    return await run_imdiag("probe", *args, timeout=TIMEOUT * 6)


async def test_cli_prints_the_probe_and_writes_the_json_report(tmp_path):
    out = tmp_path / "probe.json"
    async with PythonMaster(limit=50_000, namespace=NS) as master:
        code, stdout, stderr = await run_cli("--url", master.url + NS, "--json", str(out), "-H", "X-Token: secret",
                                             "-H", "Host: imdiag.example",  # allowed: proxies route by it
                                             "--html", str(tmp_path / "probe.html"))
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "49,999 B" in stdout and "50,001 B" in stdout and "close 1009" in stdout and "HTTP 400" in stdout
    report = json.loads(out.read_text())
    assert report["schema"] == "imdiag.report/1" and report["command"] == "probe"
    assert report["advertised_max_payload"] == 50_000
    assert report["settings"]["headers"] == ["X-Token", "Host"] and "secret" not in out.read_text()
    ws = report["transports"]["websocket"]
    assert (ws["max_accepted_frame_bytes"], ws["first_rejected_frame_bytes"]) == (49_999, 50_000)
    assert ws["failure"]["cause"] == "oversize-close" and ws["failure"]["close_code"] == 1009
    assert ws["readmitted"] is True and ws["trials"] == 2
    polling = report["transports"]["polling"]
    assert (polling["max_accepted_frame_bytes"], polling["first_rejected_frame_bytes"]) == (50_000, 50_001)
    assert polling["failure"]["http_status"] == 400
    assert report["handshake"]["max_payload"] == 50_000 and report["message_verdicts"] == []
    html = (tmp_path / "probe.html").read_text()
    assert "49,999 B" in html and "close 1009" in html and "HTTP 400" in html and "secret" not in html
    trials = len(report["transports"]["websocket"]["trial_log"]) + len(report["transports"]["polling"]["trial_log"])
    assert html.count('<td class="v ') == trials


async def test_cli_on_the_asgi_master_finds_each_limit_and_what_it_counts(tmp_path):
    """python-socketio under uvicorn: websocket counts characters and refuses with a normal close,
    polling counts bytes. Both exact, exit 0."""
    out = tmp_path / "probe.json"
    async with AsgiMaster(limit=10_000, namespace=NS) as master:
        code, stdout, stderr = await run_cli("--url", master.url + NS, "--json", str(out))
    assert code == 0, stderr
    report = json.loads(out.read_text())
    ws, polling = report["transports"]["websocket"], report["transports"]["polling"]
    for transport in (ws, polling):
        assert (transport["max_accepted_frame_bytes"], transport["first_rejected_frame_bytes"]) == (10_000, 10_001)
        assert transport["exact"] and transport["failure"]["cause"] == "oversize-close"
        assert transport["failure"]["refused_by"] == "master"
    assert ws["limit_unit"] == "characters" and polling["limit_unit"] == "bytes"
    assert ws["failure"]["close_code"] == 1000 and polling["failure"]["http_status"] == 400
    assert "closed the websocket with 1000 (Normal Closure)" in ws["failure"]["evidence"]
    assert "no 1009: python-engineio under ASGI" in ws["failure"]["evidence"]
    assert ws["size_close"]["code"] == 1000 and "reproduced at the boundary" in ws["size_close"]["evidence"]
    units = [t for t in ws["trial_log"] if t["purpose"] == "unit"]
    assert [(t["chars"], t["outcome"]) for t in units] == [(10_000, "accepted"), (10_001, "rejected")]
    assert units[0]["size"] > 10_000  # more bytes than the limit, taken: characters are counted
    assert report["unit_finding"] == (
        "this master counts characters on websocket, not bytes: Chinese text fits up to 3x more bytes than "
        "ASCII, emoji 4x; polling counts bytes, so a client that falls back to polling loses what websocket carried")
    assert "counts characters on websocket" in " ".join(stdout.split())


async def test_cli_namespace_refused_is_one_line():
    async with PythonMaster(limit=50_000, namespace=NS) as master:
        code, _, stderr = await run_cli("--url", master.url + "/nope", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "namespace '/nope' refused the connection", "check the namespace")


async def test_cli_wrong_path_is_one_line():
    async with PythonMaster(limit=50_000, namespace=NS) as master:
        code, _, stderr = await run_cli("--url", master.url + NS, "--path", "/nothing-here/", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "HTTP 404", "check --path")


async def test_cli_unreachable_port_is_one_line():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens there any more
    code, _, stderr = await run_cli("--url", f"http://127.0.0.1:{port}/worker", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, f"cannot reach http://127.0.0.1:{port}/socket.io/", "connection refused")


@pytest.fixture
async def html_site() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", html_page)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_cli_html_page_is_not_a_socketio_server(html_site):
    code, _, stderr = await run_cli("--url", html_site + NS, "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "did not answer like an Engine.IO v4 server")
    code, _, stderr = await run_cli("--url", html_site + NS, "--transport", "websocket", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "websocket handshake refused (HTTP 200, ", "<!doctype html>",
                          "is this a Socket.IO server and path?")


async def test_cli_silent_server_times_out_in_one_line():
    writers: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # held open, never written to

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code, _, stderr = await run_cli("--url", f"http://127.0.0.1:{port}/worker", "--timeout", "1")
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert_one_line_error(code, stderr, 3, f"no answer within {SCALE:g} s")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--header", "NoColonHere"], "invalid --header 'NoColonHere'"),
        (["--auth", "{not json"], "invalid --auth JSON"),
        (["--auth", "[1, 2]"], "is not an object"),
        (["--max-bytes", "12 parsecs"], "invalid size '12 parsecs'"),
        (["--transport", "pigeon"], "unknown transport 'pigeon'"),
        (["--timeout", "0"], "invalid --timeout 0"),
        (["--timeout", "inf"], "invalid --timeout inf"),
        (["--timeout", "nan"], "invalid --timeout nan"),
        (["--json", "/nonexistent-imdiag-dir/p.json"], "directory /nonexistent-imdiag-dir does not exist"),
        (["--event", ""], "an event name must not be empty"),
        (["--event", "disconnect"], "a reserved Socket.IO event name"),
        (["--auth", "null"], "a JSON null is not an object"),
        (["--auth", '"token"'], "a JSON string is not an object"),
    ],
)
async def test_cli_bad_options_are_one_line_usage_errors(args, needle):
    code, _, stderr = await run_cli("--url", "http://127.0.0.1:9/worker", *args)
    assert_one_line_error(code, stderr, 2, needle)


async def test_cli_bad_url_is_a_usage_error():
    code, _, stderr = await run_cli("--url", "ftp://127.0.0.1/worker")
    assert_one_line_error(code, stderr, 2, "invalid --url 'ftp://127.0.0.1/worker'")


async def test_cli_tls_failures_are_one_line(self_signed):
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", html_page)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed)
    await site.start()
    try:
        port = runner.addresses[0][1]
        code, _, stderr = await run_cli("--url", f"https://127.0.0.1:{port}/worker", "--timeout", "5")
        assert_one_line_error(code, stderr, 3, "TLS certificate not trusted", "--insecure")
        # With --insecure the TLS handshake passes, and the page is recognised as not Socket.IO.
        code, _, stderr = await run_cli("--url", f"https://127.0.0.1:{port}/worker", "--insecure", "--timeout", "5")
        assert_one_line_error(code, stderr, 3, "did not answer like an Engine.IO v4 server")
    finally:
        await runner.cleanup()


async def test_ctrl_c_prints_and_writes_what_was_measured(tmp_path):
    """A master that joins the namespace but never answers the barrier: every trial waits for
    --timeout. SIGINT during the first trial: exit 130, the handshake and the trial so far in
    the report, marked interrupted, nothing called exact."""
    trial_started = asyncio.Event()
    connections = 0

    async def handler(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('0{"sid":"s%d","upgrades":[],"pingInterval":25000,"pingTimeout":20000,'
                          '"maxPayload":1000000}' % connections)
        async for msg in ws:
            if msg.data.startswith("40/worker"):
                await ws.send_str('40/worker,{"sid":"n1"}')
                if connections > 1:  # the handshake was connection 1; this is a trial
                    trial_started.set()
        return ws

    app = web.Application()
    app.router.add_get("/socket.io/", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    out = tmp_path / "partial.json"
    try:
        async with imdiag_process("probe", "--url", f"http://127.0.0.1:{runner.addresses[0][1]}{NS}",
                                  "--transport", "websocket", "--timeout", "30", "--json", str(out)) as proc:
            await asyncio.wait_for(trial_started.wait(), TIMEOUT)
            stdout, stderr = await interrupt(proc)
    finally:
        await runner.cleanup()
    text = stderr.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text and "imdiag: error: interrupted (Ctrl-C)" in text
    assert "interrupted, partial results" in stdout.decode()
    report = json.loads(out.read_text())
    assert report["interrupted"] is True and report["command"] == "probe"
    assert report["advertised_max_payload"] == 1_000_000 and report["handshake"]["sid"] == "s1"
    ws = report["transports"]["websocket"]
    assert ws["exact"] is False and ws["stopped"].startswith("interrupted (Ctrl-C) after 0 trials")
    assert ws["max_accepted_frame_bytes"] is None and ws["first_rejected_frame_bytes"] is None


async def test_cli_a_post_never_answered_is_one_line_within_the_timeout():
    """The handshake is answered, the namespace CONNECT's POST never is: --timeout bounds it
    (aiohttp's default would wait 300 s), and no CLOSE is sent to a server that does not answer."""
    posts = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            await asyncio.Event().wait()  # never answered
        if "sid" in request.query:
            await asyncio.Event().wait()  # a long poll that is never answered either
        return web.Response(text='0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,'
                                 '"maxPayload":1000000}')

    async with serving(handler) as url:
        code, _, stderr = await run_cli("--url", url + NS, "--transport", "polling", "--timeout", "1")
    assert_one_line_error(code, stderr, 3, "the CONNECT of namespace '/worker' was not taken",
                          f"no answer to the POST within {SCALE:g} s")
    assert posts == 1


async def test_cli_sends_no_close_where_no_session_was_opened():
    """Not Engine.IO (a web page): nothing but the handshake GET reaches the server."""
    methods: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        methods.append(request.method)
        return await html_page(request)

    async with serving(handler) as url:
        code, _, stderr = await run_cli("--url", url + NS, "--transport", "polling", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "did not answer like an Engine.IO v4 server")
    assert methods == ["GET"]


async def test_cli_repeated_headers_are_all_sent():
    seen: list[list[str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.getall("X-A", []))
        return await html_page(request)

    async with serving(handler) as url:
        code, _, stderr = await run_cli("--url", url + NS, "--transport", "polling", "-H", "X-A: 1", "-H", "X-A: 2")
    assert code == 3, stderr
    assert seen == [["1", "2"]]


async def test_a_password_in_the_url_is_masked_on_stdout_and_in_the_report(tmp_path):
    out, page = tmp_path / "probe.json", tmp_path / "probe.html"
    async with PythonMaster(limit=20_000, namespace=NS) as master:
        url = master.url.replace("http://", "http://worker:s3cret@") + NS
        code, stdout, stderr = await run_cli("--url", url, "--json", str(out), "--html", str(page),
                                             "--transport", "websocket")
    assert code == 0, stderr
    assert "worker:***@" in stdout and "worker:***@" in out.read_text() and "worker:***@" in page.read_text()
    assert "s3cret" not in stdout + stderr + out.read_text() + page.read_text()  # masked like headers and --auth


async def test_ctrl_c_before_the_handshake_still_writes_the_report(tmp_path):
    """A server that accepts the connection and never answers: SIGINT during the handshake."""
    connected = asyncio.Event()
    writers = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        connected.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    out = tmp_path / "none.json"
    try:
        async with imdiag_process("probe", "--url", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{NS}",
                                  "--timeout", "30", "--json", str(out)) as proc:
            await asyncio.wait_for(connected.wait(), TIMEOUT)
            _, stderr = await interrupt(proc)
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert proc.returncode is not None
    assert_one_line_error(proc.returncode, stderr.decode(), 130, "interrupted before the handshake", str(out))
    report = json.loads(out.read_text())
    assert report["interrupted"] is True and report["handshake"] is None and report["transports"] == {}
    assert report["elapsed_s"] > 0 and report["settings"]["url"].endswith(NS)
