"""``imdiag probe`` against the python reference master, and against things that are not masters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from imdiag.fake_master.ledger import Arrival
from imdiag.fake_master.server import ReferenceMaster
from imdiag.model import Cause
from imdiag.probe.frames import PROBE_TYPE
from imdiag.probe.result import Outcome, ProbeSettings, TransportLimit, to_report
from imdiag.probe.run import probe
from imdiag.probe.verdicts import close_text
from imdiag.quirks import RULES
from imdiag.search import max_trials
from imdiag.wire import Encoder, Transport, encode_json, measure
from imdiag.worker.connection import Endpoint, open_connection

from ..cli import run_imdiag
from .conftest import TIMEOUT

NS = "/worker"


def expected_limits(server: str, transport: Transport, limit: int) -> tuple[int, int]:
    """Largest accepted and smallest refused frame, from the server's rule in quirks.py."""
    rule = RULES[(server, transport)]
    accepted = limit if rule.predicts_delivered(limit, limit) else limit - 1
    assert rule.predicts_delivered(accepted, limit) and not rule.predicts_delivered(accepted + 1, limit)
    return accepted, accepted + 1


def by_transport(result_transports: tuple[TransportLimit, ...]) -> dict[Transport, TransportLimit]:
    return {t.transport: t for t in result_transports}


@pytest.mark.parametrize("limit", [50_000, 1_000_000])
async def test_exact_limits_advertised_payload_and_failure_mode(limit):
    async with ReferenceMaster(limit=limit, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, timeout_s=TIMEOUT))
        arrivals = [e for e in master.ledger.entries if isinstance(e, Arrival)]
    assert result.elapsed_s < 10
    hs = result.handshake
    assert hs.max_payload == limit and hs.namespace == NS and hs.namespace_sid
    assert hs.transport is Transport.POLLING and "websocket" in hs.upgrades
    limits = by_transport(result.transports)
    for transport, measured in limits.items():
        accepted, refused = expected_limits("python", transport, limit)
        assert (measured.max_accepted, measured.first_rejected) == (accepted, refused), transport
        assert measured.exact and not measured.stopped
        assert len(measured.trials) <= 2  # the advertised maxPayload pinned it
        assert measured.readmitted is True
        failure = measured.failure
        assert failure is not None and failure.cause is Cause.OVERSIZE_CLOSE
        assert not failure.session_survived
    ws, polling = limits[Transport.WEBSOCKET], limits[Transport.POLLING]
    assert ws.failure.observation.close_code == 1009
    assert polling.failure.observation.http_status == 400
    # python websocket refuses a frame of exactly maxPayload: the probe says so.
    assert "disagrees (-1 B)" in result.advertised_notes[Transport.WEBSOCKET]
    assert result.advertised_notes[Transport.POLLING].startswith("matches")
    line = result.explanations[Transport.WEBSOCKET]
    assert f"over {limit - 1:,} B is refused" in line and "1009" in line and "heartbeats" in line
    assert "let straight back in" in line
    assert "decode errors" in result.explanations[Transport.POLLING]  # polling acceptance caveat
    # The master saw only probe messages: never one of the target's real types.
    assert arrivals and {a.type for a in arrivals} == {PROBE_TYPE}
    assert {a.event for a in arrivals} == {"message"}


async def test_bisection_without_a_guess_finds_the_limit_exactly():
    limit = 50_000
    async with ReferenceMaster(limit=limit, namespace=NS) as master:
        settings = ProbeSettings(url=master.url + NS, max_bytes=300_000, timeout_s=TIMEOUT, guess_advertised=False)
        result = await probe(settings)
    for measured in result.transports:
        assert (measured.max_accepted, measured.first_rejected) == expected_limits("python", measured.transport, limit)
        bound = max_trials(measured.smallest_frame - 1, settings.max_bytes) - 2  # no guess: plain bisection
        assert 3 < len(measured.trials) <= bound
        assert all(t.size <= settings.max_bytes for t in measured.trials)


async def test_max_bytes_is_never_exceeded():
    async with ReferenceMaster(limit=1_000_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, max_bytes=300_000, timeout_s=TIMEOUT))
    for measured in result.transports:
        assert max(t.size for t in measured.trials) == 300_000
        assert measured.max_accepted == 300_000 and measured.first_rejected is None
        assert len(measured.trials) == 1 and measured.readmission is None
        assert "no size limit was found" in result.explanations[measured.transport]
        assert "so not checked" in result.advertised_notes[measured.transport]


async def test_ack_proves_delivery_and_shows_polling_bodies_lost_under_the_limit():
    async with ReferenceMaster(limit=50_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, ack=True, timeout_s=TIMEOUT))
    for measured in result.transports:
        accepted = [t for t in measured.trials if t.outcome is Outcome.ACCEPTED]
        assert accepted and all("acknowledged it" in t.evidence for t in accepted)
    async with ReferenceMaster(limit=1_000_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, ack=True, transports=(Transport.POLLING,),
                                           timeout_s=TIMEOUT))
    (polling,) = result.transports
    # The transport limit stays the Content-Length rule; a body it took but never handed to the
    # handler (python-engineio's truncated reads) is reported as lost, not as refused.
    assert (polling.max_accepted, polling.first_rejected) == (1_000_000, 1_000_001)
    if polling.lost:
        assert "never acknowledged" in result.explanations[Transport.POLLING]


async def test_messages_are_judged_against_the_measured_limits(tmp_path):
    small = {"type": "worker:heartbeat", "payload": {"t": 1764319599000}}
    big = {"type": "worker:data:sync", "payload": {"text": "你好，请问这个商品还有货吗？" * 4000}}
    fixture = tmp_path / "messages.jsonl"
    fixture.write_text("\n".join(json.dumps(m, ensure_ascii=False) for m in (small, big)) + "\n")
    from imdiag.commands_probe import load_messages

    sized = load_messages(str(fixture), encoder=Encoder.NODE, event="message", namespace=NS)
    frames = [measure(encode_json(m, Encoder.NODE), encoder=Encoder.NODE, namespace=NS).frame_bytes for m in (small, big)]
    assert [s.frame_bytes for s in sized] == frames
    async with ReferenceMaster(limit=100_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, messages=sized, timeout_s=TIMEOUT))
        arrivals = [e for e in master.ledger.entries if isinstance(e, Arrival)]
    assert {a.type for a in arrivals} == {PROBE_TYPE}  # the messages themselves were never sent
    limits = by_transport(result.transports)
    first, second = result.messages
    for fit in first.fits:
        ok = limits[fit.transport].max_accepted
        assert fit.fits is True and fit.headroom_bytes == ok - frames[0]
        assert fit.headroom_pct == pytest.approx((ok - frames[0]) / ok * 100)
    for fit in second.fits:
        assert fit.fits is False and fit.headroom_bytes == limits[fit.transport].max_accepted - frames[1] < 0


# --- the real CLI -------------------------------------------------------------------------------


async def run_cli(*args: str) -> tuple[int, str, str]:
    return await run_imdiag("probe", *args, timeout=TIMEOUT * 6)


def assert_one_line_error(code: int, stderr: str, exit_code: int, *needles: str) -> None:
    assert code == exit_code, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imdiag: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


async def test_cli_prints_the_probe_and_writes_the_json_report(tmp_path):
    out = tmp_path / "probe.json"
    async with ReferenceMaster(limit=50_000, namespace=NS) as master:
        code, stdout, stderr = await run_cli("--url", master.url + NS, "--json", str(out), "-H", "X-Token: secret")
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "49,999 B" in stdout and "50,001 B" in stdout and "close 1009" in stdout and "HTTP 400" in stdout
    report = json.loads(out.read_text())
    assert report["schema"] == "imdiag.report/1" and report["command"] == "probe"
    assert report["advertised_max_payload"] == 50_000
    assert report["settings"]["headers"] == ["X-Token"] and "secret" not in out.read_text()
    ws = report["transports"]["websocket"]
    assert (ws["max_accepted_frame_bytes"], ws["first_rejected_frame_bytes"]) == (49_999, 50_000)
    assert ws["failure"]["cause"] == "oversize-close" and ws["failure"]["close_code"] == 1009
    assert ws["readmitted"] is True and ws["trials"] == 2
    polling = report["transports"]["polling"]
    assert (polling["max_accepted_frame_bytes"], polling["first_rejected_frame_bytes"]) == (50_000, 50_001)
    assert polling["failure"]["http_status"] == 400
    assert report["handshake"]["max_payload"] == 50_000 and report["message_verdicts"] == []


async def test_cli_namespace_refused_is_one_line():
    async with ReferenceMaster(limit=50_000, namespace=NS) as master:
        code, _, stderr = await run_cli("--url", master.url + "/nope", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "namespace '/nope' refused the connection", "check the namespace")


async def test_cli_wrong_path_is_one_line():
    async with ReferenceMaster(limit=50_000, namespace=NS) as master:
        code, _, stderr = await run_cli("--url", master.url + NS, "--path", "/nothing-here/", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, "HTTP 404", "check --path")


async def test_cli_unreachable_port_is_one_line():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens there any more
    code, _, stderr = await run_cli("--url", f"http://127.0.0.1:{port}/worker", "--timeout", "5")
    assert_one_line_error(code, stderr, 3, f"cannot reach http://127.0.0.1:{port}/socket.io/", "connection refused")


async def html_page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><html><body>Welcome</body></html>", content_type="text/html")


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
    assert_one_line_error(code, stderr, 3, "websocket handshake refused (HTTP 200)")


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
    assert_one_line_error(code, stderr, 3, "no answer within 1 s")


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
        (["--event", ""], "--event must not be empty"),
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


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=TIMEOUT * 3,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


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


# --- verdicts without a server: only size signals refuse, only answers accept -------------------


def test_only_a_size_signal_refuses_and_only_an_answer_accepts():
    from imdiag.probe.result import TrialObservation
    from imdiag.probe.verdicts import classify

    ws, polling = Transport.WEBSOCKET, Transport.POLLING
    cases = [
        (TrialObservation(100, ws, close_code=1009, closed=True, barrier="closed"), Outcome.REJECTED),
        (TrialObservation(100, polling, http_status=413, barrier="closed"), Outcome.REJECTED),
        (TrialObservation(100, polling, http_status=400, http_body='"Bad Request"', advertised_max_payload=99),
         Outcome.REJECTED),
        (TrialObservation(100, ws, barrier="answered", barrier_answer="CONNECT_ERROR 'x'"), Outcome.ACCEPTED),
        (TrialObservation(100, ws, close_code=1000, closed=True, barrier="closed"), Outcome.INCONCLUSIVE),
        (TrialObservation(100, ws, close_error="ConnectionResetError", closed=True, barrier="closed"),
         Outcome.INCONCLUSIVE),
        (TrialObservation(100, polling, http_status=500), Outcome.INCONCLUSIVE),
        (TrialObservation(100, ws, barrier="timeout"), Outcome.INCONCLUSIVE),
        (TrialObservation(100, ws, connect_error="cannot reach"), Outcome.INCONCLUSIVE),
    ]
    for obs, outcome in cases:
        assert classify(obs, ack=False).outcome is outcome, obs
    # With --ack, an answered barrier without the ack is accepted by the transport but marked lost.
    lost = classify(TrialObservation(100, polling, http_status=200, barrier="answered", ack="missing"), ack=True)
    assert lost.outcome is Outcome.ACCEPTED and lost.lost and "did not acknowledge" in lost.evidence
    acked = classify(TrialObservation(100, polling, http_status=200, barrier="answered", ack="received"), ack=True)
    assert acked.outcome is Outcome.ACCEPTED and not acked.lost


def test_a_stopped_search_is_explained_not_guessed():
    from imdiag.probe.result import TrialObservation
    from imdiag.probe.verdicts import classify, explain_failure

    silent = classify(TrialObservation(5000, Transport.WEBSOCKET, barrier="timeout"), ack=False)
    limit = TransportLimit(Transport.WEBSOCKET, 80, 16 * 2**20, (silent, silent), 4000, None,
                           stopped=f"the 5,000 B trial was inconclusive twice: {silent.evidence}")
    line = explain_failure(limit, ack=False)
    assert "could not be measured" in line and "4,000 B was accepted" in line and "inconclusive twice" in line



def test_ack_explanations_say_lost_only_when_the_master_acknowledges_at_all():
    from imdiag.probe.result import TrialObservation
    from imdiag.probe.verdicts import classify, explain_failure

    polling, ws = Transport.POLLING, Transport.WEBSOCKET

    def taken(size: int, transport: Transport, ack: str):
        status = 200 if transport is polling else None
        return classify(TrialObservation(size, transport, http_status=status, barrier="answered", ack=ack), ack=True)

    # Nothing refused up to --max-bytes, the largest probe unacknowledged, the smallest acknowledged: lost.
    lost = TransportLimit(polling, 80, 200_000, (taken(200_000, polling, "missing"),), 200_000, None,
                          ack_control=taken(80, polling, "received"))
    line = explain_failure(lost, ack=True)
    assert lost.lost and "1 accepted probe(s), from 200,000 B up" in line and "lost them" in line
    assert "decode errors" in line  # the python-socketio polling hint, on polling only
    # Not even the smallest probe acknowledged: the master does not ack; nothing is called lost.
    deaf = TransportLimit(ws, 80, 200_000, (taken(200_000, ws, "missing"),), 200_000, None,
                          ack_control=taken(80, ws, "missing"))
    line = explain_failure(deaf, ack=True)
    assert deaf.lost == () and len(deaf.unacknowledged) == 1
    assert "acknowledged no probe, not even the smallest (80 B)" in line and "lost" not in line
    # A lost websocket probe gets no polling hint.
    ws_lost = TransportLimit(ws, 80, 200_000, (taken(200_000, ws, "missing"),), 200_000, None,
                             ack_control=taken(80, ws, "received"))
    assert "decode errors" not in explain_failure(ws_lost, ack=True)
    # No ack, and the smallest probe never got through on a new connection: unknown, not "never acks".
    shut_out = classify(TrialObservation(80, ws, close_code=1008, closed=True, barrier="closed"), ack=True)
    unknown = TransportLimit(ws, 80, 200_000, (taken(200_000, ws, "missing"),), 200_000, None, ack_control=shut_out)
    assert "could not be checked" in explain_failure(unknown, ack=True) and unknown.lost == ()
    # Nothing over --max-bytes was sent: agreement with maxPayload is not claimed either way.
    assert lost.agrees_with(200_000) is None and lost.agrees_with(150_000) is False

# --- a standalone master: another process, as a user runs it -----------------------------------


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
        code, stdout, stderr = await run_cli("--url", url.group(1), "--transport", "websocket")
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
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", "probe", "--url", f"http://127.0.0.1:{runner.addresses[0][1]}{NS}",
        "--transport", "websocket", "--timeout", "30", "--json", str(out),
        env={**os.environ, "NO_COLOR": "1"}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(trial_started.wait(), TIMEOUT)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
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


@contextlib.asynccontextmanager
async def serving(handler) -> AsyncIterator[str]:
    """An aiohttp app on 127.0.0.1 answering every method and path with ``handler``."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


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
                          "no answer to the POST within 1 s")
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


def engineio_ws_server(*, enforced: int, advertised: int | None):
    """A websocket-only Socket.IO endpoint of our own: it refuses frames over ``enforced`` with
    1009 whatever it advertises, answers namespace CONNECTs, and never acknowledges events."""
    open_info = {"sid": "s1", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000}
    if advertised is not None:
        open_info["maxPayload"] = advertised

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str("0" + json.dumps(open_info))
        async for msg in ws:
            if len(msg.data.encode()) > enforced:
                await ws.close(code=1009)
                break
            if msg.data.startswith("40" + NS):
                await ws.send_str(f'40{NS},{{"sid":"n1"}}')
            elif msg.data.startswith("40/"):
                namespace = msg.data[2:].split(",")[0]
                await ws.send_str(f'44{namespace},{{"message":"Invalid namespace"}}')
        return ws

    return serving(handler)


async def test_a_limit_other_than_the_advertised_one_is_found_by_bisection():
    async with engineio_ws_server(enforced=123_457, advertised=1_000_000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), max_bytes=2**20,
                                           timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected) == (123_457, 123_458) and limit.exact
    assert len(limit.trials) <= max_trials(limit.smallest_frame - 1, 2**20)
    assert result.advertised_notes[Transport.WEBSOCKET] == (
        "disagrees (-876,543 B): maxPayload 1,000,000 B, largest accepted 123,457 B")
    assert limit.agrees_with(1_000_000) is False


async def test_ack_against_a_master_that_never_acks_calls_nothing_lost():
    async with engineio_ws_server(enforced=50_000, advertised=50_000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), ack=True,
                                           timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected) == (50_000, 50_001)
    # The readmission (the smallest probe, new connection) already showed it: no extra trial.
    assert limit.ack_control is None and limit.readmission.size == limit.smallest_frame
    assert not limit.acked and limit.lost == () and len(limit.unacknowledged) == 1
    line = result.explanations[Transport.WEBSOCKET]
    assert "acknowledged no probe, not even the smallest" in line and "lost them" not in line


async def test_ack_with_nothing_refused_checks_acks_with_the_smallest_probe():
    """--max-bytes under the limit, so no refusal and no readmission: one control trial with the
    smallest probe says whether the master acks at all, before anything is called lost."""
    async with engineio_ws_server(enforced=50_000, advertised=50_000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), ack=True,
                                           max_bytes=10_000, timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected, limit.readmission) == (10_000, None, None)
    assert limit.ack_control is not None and limit.ack_control.size == limit.smallest_frame
    assert not limit.acked and limit.lost == ()
    assert "acknowledged no probe, not even the smallest" in result.explanations[Transport.WEBSOCKET]
    report = to_report(result).extra["transports"]["websocket"]
    assert report["master_acknowledged"] is False and report["lost_frame_bytes"] == []
    assert report["trial_log"][-1]["purpose"] == "ack-control"


async def test_cli_repeated_headers_are_all_sent():
    seen: list[list[str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.getall("X-A", []))
        return await html_page(request)

    async with serving(handler) as url:
        code, _, stderr = await run_cli("--url", url + NS, "--transport", "polling", "-H", "X-A: 1", "-H", "X-A: 2")
    assert code == 3, stderr
    assert seen == [["1", "2"]]


def test_engineio_paths_and_the_entry_point_exit_code():
    from imdiag.entry import INTERRUPTED
    from imdiag.errors import ExitCode
    from imdiag.worker.connection import engineio_path

    assert [engineio_path(p) for p in ("/socket.io/", "socket.io", "/", "", "/a/b")] == [
        "/socket.io/", "/socket.io/", "/", "/", "/a/b/"]
    assert Endpoint("http://h:1", path="/").engineio_url(Transport.POLLING) == "http://h:1/?EIO=4&transport=polling"
    assert INTERRUPTED == ExitCode.INTERRUPTED


async def test_a_server_that_stops_reading_cannot_hold_a_send_forever(monkeypatch, session):
    """A POST body the server stops reading: the send is bounded (timeout + size at a minimum rate)."""
    from imdiag.worker import connection

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
