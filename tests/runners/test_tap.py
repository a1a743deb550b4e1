"""``imdiag tap`` with real parts: real clients through the tap to real masters, checked against the
master's own ledger."""

from __future__ import annotations

import json
import os
import signal
import ssl
from pathlib import Path

import pytest
import socketio
from aiohttp import web

from imdiag.core.captures import load_messages
from imdiag.core.errors import TargetError
from imdiag.core.model import Cause, Outcome, TapDetails
from imdiag.core.tap import (
    Oversize,
    Reconnected,
    SessionClosed,
    SessionOpened,
    Settled,
    Unreachable,
)
from imdiag.core.wire import Encoder, Transport, encode_json, event_frame
from imdiag.masters.kinds import NodeMaster, PythonMaster

from ..helpers import TIMEOUT
from ..node_worker import NodeWorker, kind
from ..taps import assert_agrees_with_ledger, outcomes_by_key, tapping

FIXTURE = Path(__file__).parent.parent.parent / "fixtures" / "data_sync.json"
FAST_RECONNECT = {"reconnectionDelay": 100, "reconnectionDelayMax": 200}
LIMIT = 1_000_000


def _snapshot() -> dict[str, object]:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return next(m for m in data["messages"] if m["type"] == "worker:data:sync")


def _heartbeat(n: int) -> dict[str, object]:
    return {"type": "worker:heartbeat", "id": f"hb-{n}", "payload": {"workerId": "worker1", "n": n}}


@pytest.mark.node
async def test_the_incident_through_the_tap() -> None:
    """The real socket.io-client (polling, then the upgrade) to the real Node master at 1MB: heartbeats
    pass, the 1.3 MB snapshot is refused with 1009 by the master, the worker comes back as a new sid."""
    async with NodeMaster(limit=LIMIT, namespace="/worker") as master, tapping(master.port) as tap:
        async with NodeWorker(tap.url + "/worker", FAST_RECONNECT) as worker:
            await worker.wait_for(kind("upgrade"), TIMEOUT)
            for n in range(3):
                worker.send(op="emit", message=_heartbeat(n))
            worker.send(op="emit_fixture", path=str(FIXTURE), type="worker:data:sync")
            await worker.wait_for(kind("upgrade"), TIMEOUT, count=2)  # the reconnect, upgraded again
            for n in range(3, 5):
                worker.send(op="emit", message=_heartbeat(n))
            await tap.wait_for(lambda e: isinstance(e, Settled), count=6)
        report = await tap.report()

    expected = len(event_frame(encode_json(_snapshot(), Encoder.NODE).encode(), encoder=Encoder.NODE,
                               namespace="/worker"))
    (flag,) = tap.of(Oversize)
    assert (flag.frame_bytes, flag.max_payload, flag.transport) == (expected, LIMIT, Transport.WEBSOCKET)
    snapshot = next(e for e in tap.of(Settled) if e.cell.type == "worker:data:sync")
    assert snapshot.message.outcome is Outcome.REFUSED and snapshot.message.refused_by == "master"
    assert (snapshot.cell.cause, snapshot.cell.wire_bytes, snapshot.cell.observed.close_code) == (
        Cause.OVERSIZE_CLOSE, expected, 1009)
    assert snapshot.cell.js_length == 1_117_225  # JSON.stringify(msg).length: what the worker would have logged
    assert tap.events.index(flag) < tap.events.index(snapshot)  # flagged as it arrived, before the refusal
    first, second = tap.of(SessionOpened)
    (closed,) = [e for e in tap.of(SessionClosed) if e.session.sid == first.session.sid]
    assert (closed.session.closed_by, closed.session.close_code, closed.session.refused) == ("master", 1009, True)
    (reconnect,) = tap.of(Reconnected)
    assert (reconnect.sid, reconnect.previous.sid) == (second.session.sid, first.session.sid)
    assert first.session.transport is Transport.POLLING and closed.session.upgraded_t is not None
    outcomes = outcomes_by_key(report)
    assert all(outcomes[f"hb-{n}"] == {"passed": 1} for n in range(5))
    assert_agrees_with_ledger(report, master.ledger)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_python_socketio_through_the_tap(transport: str) -> None:
    async with PythonMaster(limit=LIMIT, namespace="/worker") as master, tapping(master.port) as tap:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(tap.url, namespaces=["/worker"], transports=[transport])
        try:
            await client.emit("message", _heartbeat(1), namespace="/worker")
            assert await client.call("message", {"type": "worker:register", "id": "reg", "payload": {"名": "工"}},
                                     namespace="/worker", timeout=TIMEOUT) is True
            await client.emit("message", _snapshot(), namespace="/worker")
            # The register settles twice (passed, then acked): wait for the snapshot itself.
            await tap.wait_for(lambda e: isinstance(e, Settled) and e.cell.type == "worker:data:sync")
        finally:
            await client.disconnect()
        report = await tap.report()
    outcomes = outcomes_by_key(report)
    assert outcomes["reg"] == {"acked": 1} and outcomes["hb-1"] == {"passed": 1}
    snapshot = next(c for c in report.cells if c.type == "worker:data:sync")
    # python-socketio's json.dumps escapes every Chinese character: 6 bytes each on the wire.
    expected = event_frame(encode_json(_snapshot(), Encoder.PYTHON).encode(), encoder=Encoder.PYTHON, namespace="/worker")
    assert snapshot.encoder is Encoder.PYTHON and snapshot.message_bytes == len(expected)
    # Over polling the POST body may carry more packets than the message (the client batches).
    assert snapshot.wire_bytes >= len(expected), snapshot.observed
    assert snapshot.transport.value == transport and snapshot.cause is Cause.OVERSIZE_CLOSE
    if transport == "polling":
        assert (snapshot.observed.http_status, snapshot.observed.http_body) == (400, '"Bad Request"')
    else:
        assert snapshot.observed.close_code == 1009
    assert_agrees_with_ledger(report, master.ledger)


@pytest.mark.node
async def test_fifty_workers_at_once() -> None:
    """50 real clients, each its own Engine.IO session (polling, then the upgrade), side by side."""
    workers = 50
    async with NodeMaster(limit=LIMIT, namespace="/worker") as master, tapping(master.port) as tap:
        async with NodeWorker(tap.url + "/worker", count=workers) as worker:
            await worker.wait_for(kind("upgrade"), TIMEOUT, count=workers)
            for n in range(workers):
                worker.send(op="emit", socket=n, message=_heartbeat(n), ack=True)
                worker.send(op="emit", socket=n, message={"type": "worker:register", "id": f"reg-{n}",
                                                          "payload": {"n": n}}, ack=True)
            await worker.wait_for(kind("ack"), TIMEOUT, count=2 * workers)
            await tap.wait_for(lambda e: isinstance(e, Settled), count=2 * workers)
        report = await tap.report()
    details = report.details
    assert isinstance(details, TapDetails)
    assert len({s.sid for s in details.sessions}) == workers
    assert all(s.upgraded_t is not None and s.messages == 2 for s in details.sessions)
    assert [m.outcome for m in details.messages] == [Outcome.ACKED] * 2 * workers
    assert len({m.sid for m in details.messages}) == workers  # each session's messages stayed in it
    assert_agrees_with_ledger(report, master.ledger)


@pytest.mark.node
@pytest.mark.parametrize("through_tap", [False, True])
async def test_an_upstream_that_dies_mid_session(through_tap: bool) -> None:
    """The worker sees the master die as it would without the tap: the same disconnect reason, then
    the same connection error on every attempt to reconnect."""
    master = NodeMaster(limit=LIMIT, namespace="/worker")
    await master.start()
    try:
        async with tapping(master.port) as tap:
            url = (tap.url if through_tap else master.url) + "/worker"
            async with NodeWorker(url, FAST_RECONNECT) as worker:
                await worker.wait_for(kind("upgrade"), TIMEOUT)
                worker.send(op="emit", message=_heartbeat(1), ack=True)
                await worker.wait_for(kind("ack"), TIMEOUT)
                assert master.pid is not None
                os.kill(master.pid, signal.SIGKILL)
                (disconnect,) = await worker.wait_for(kind("disconnect"), TIMEOUT)
                errors = await worker.wait_for(kind("connect_error"), TIMEOUT, count=2)
            if through_tap:
                await tap.wait_for(lambda e: isinstance(e, Unreachable), count=2)
                (closed,) = tap.of(SessionClosed)
                assert closed.session.closed_by == "master" and not closed.session.refused
    finally:
        await master.stop()
    assert (disconnect["reason"], disconnect["details"]["description"]) == ("transport close", "websocket connection closed")
    assert {e["message"] for e in errors} == {"xhr poll error"}


@pytest.mark.node
@pytest.mark.parametrize("hold", [False, True])
@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_hold_oversize_answers_the_worker_as_the_master_does(transports: list[str], hold: bool) -> None:
    """With --hold-oversize the snapshot never reaches the master, and the worker sees what it sees
    when the master refuses it itself (hold=False: the same run, the master refusing)."""
    async with NodeMaster(limit=LIMIT, namespace="/worker") as master, tapping(master.port, hold_oversize=hold) as tap:
        async with NodeWorker(tap.url + "/worker", {"transports": transports, **FAST_RECONNECT}) as worker:
            await worker.wait_for(kind("connect"), TIMEOUT)
            worker.send(op="emit", message=_heartbeat(1), ack=True)
            await worker.wait_for(kind("ack"), TIMEOUT)
            worker.send(op="emit_fixture", path=str(FIXTURE), type="worker:data:sync")
            (disconnect,) = await worker.wait_for(kind("disconnect"), TIMEOUT)
            await worker.wait_for(kind("connect"), TIMEOUT, count=2)  # and back, as a new session
            await tap.wait_for(lambda e: isinstance(e, Settled) and e.cell.type == "worker:data:sync")
        report = await tap.report()
    snapshot = next(c for c in report.cells if c.type == "worker:data:sync")
    assert snapshot.cause is Cause.OVERSIZE_CLOSE
    assert ("never sent to the master" in snapshot.evidence) is hold
    (flag,) = tap.of(Oversize)
    assert flag.held is hold
    # engine.io-client's words for a 1009 close. Over polling the master refuses the POST (413) and
    # closes the session, which answers the pending GET with a close packet: the client reports
    # whichever of the two it reads first ("transport close" or "transport error"), with or without a tap.
    reasons = {"transport close"} if transports == ["websocket"] else {"transport close", "transport error"}
    assert disconnect["reason"] in reasons, disconnect
    assert_agrees_with_ledger(report, master.ledger)
    assert not [e for e in master.ledger.entries if getattr(e, "type", None) == "worker:data:sync"]


async def test_record_writes_a_capture_that_replay_reads(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    sent = [_heartbeat(1), {"type": "worker:register", "payload": {"名": "工", "n": [1, 2.5]}}, _snapshot()]
    async with PythonMaster(limit=10 * LIMIT, namespace="/worker") as master, \
            tapping(master.port, record_path=str(capture)) as tap:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(tap.url, namespaces=["/worker"], transports=["websocket"])
        try:
            for message in sent:
                await client.emit("message", message, namespace="/worker")
            await client.emit("other", {"type": "x", "payload": None}, namespace="/worker")
            await tap.wait_for(lambda e: isinstance(e, Settled), count=4)
        finally:
            await client.disconnect()
        await tap.report()
    captured = load_messages(capture)
    assert [c.message for c in captured] == [*sent, {"type": "x", "payload": None}]
    assert [(c.event, c.namespace) for c in captured] == [("message", "/worker")] * 3 + [("other", "/worker")]
    assert captured[0].t == 0.0 and all(c.t is not None for c in captured)


async def test_an_https_upstream(self_signed: ssl.SSLContext) -> None:
    """A real python-socketio master behind TLS with a self-signed certificate: refused without
    --insecure (one line, exit 3 in the CLI), relayed with it."""
    server = socketio.AsyncServer(async_mode="aiohttp")
    arrived: list[object] = []

    @server.on("message", namespace="/worker")
    async def on_message(sid: str, message: object) -> bool:
        arrived.append(message)
        return True

    app = web.Application()
    server.attach(app)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed).start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(TargetError, match="TLS certificate not trusted .* use --insecure"):
            async with tapping(port, tls=True):
                pass
        async with tapping(port, tls=True, insecure=True) as tap:
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(tap.url, namespaces=["/worker"], transports=["polling", "websocket"])
            try:
                assert await client.call("message", _heartbeat(1), namespace="/worker", timeout=TIMEOUT) is True
            finally:
                await client.disconnect()
            report = await tap.report()
    finally:
        await server.shutdown()
        await runner.cleanup()
    assert arrived == [_heartbeat(1)] and outcomes_by_key(report) == {"hb-1": {"acked": 1}}
