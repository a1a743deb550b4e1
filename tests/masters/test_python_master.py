"""The real python-socketio master on loopback: what arrives, what is dropped, and why."""

import pytest

from imdiag.clients.engineio import Endpoint, open_connection
from imdiag.core.catalog import Catalog
from imdiag.core.judge import judge
from imdiag.core.model import Cause
from imdiag.core.quirks import rule
from imdiag.core.wire import WIRE_TRANSPORTS, Encoder, Transport, encode_json, event_frame
from imdiag.masters.python import PythonMaster

from ..helpers import TIMEOUT, send_observed

CATALOG = Catalog(5)
NS = "/worker"


async def send(master, session, transport, message, encoder=Encoder.NODE):
    conn = await open_connection(Endpoint(master.url, namespace=NS), transport, session, TIMEOUT)
    try:
        frame = event_frame(message.data, encoder=encoder, namespace=NS)
        (obs,) = await send_observed(conn, master.ledger, [frame], [message.id], encoder=encoder,
                                     event="message", namespace=NS, timeout=TIMEOUT)
        return obs, judge(obs)
    finally:
        await conn.close()


@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
async def test_boundary_matches_the_python_rule(session, transport):
    limit = 50_000  # small enough that polling bodies are read whole on loopback
    limit_rule = rule("python", transport)
    async with PythonMaster(limit=limit, namespace=NS) as master:
        for n in (limit - 1, limit, limit + 1):
            message = CATALOG.sized("worker:data:sync", n, namespace=NS)
            obs, verdict = await send(master, session, transport, message)
            assert verdict.delivered == limit_rule.predicts_delivered(n, limit), (n, verdict)
            if not verdict.delivered:
                assert verdict.cause is Cause.OVERSIZE_CLOSE
                if transport is Transport.WEBSOCKET:
                    assert obs.close_code == 1009
                else:
                    assert obs.http_status == 400 and obs.advertised_max_payload == limit


@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
async def test_small_types_arrive_and_the_snapshot_does_not(session, transport):
    async with PythonMaster(limit=1_000_000, namespace=NS) as master:
        for kind in ("worker:heartbeat", "worker:register", "worker:account:status"):
            _, verdict = await send(master, session, transport, CATALOG.natural(kind, namespace=NS))
            assert verdict.delivered, verdict
        snapshot = CATALOG.natural("worker:data:sync", namespace=NS)
        assert snapshot.size.frame_bytes > 1_000_000
        _, verdict = await send(master, session, transport, snapshot)
        assert not verdict.delivered and verdict.cause is Cause.OVERSIZE_CLOSE


@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
async def test_js_length_under_the_limit_bytes_over_it_is_dropped(session, transport):
    limit = 60_000
    message = CATALOG.sized("worker:messages:update", limit + 1, namespace=NS)
    assert message.size.js_length < limit < message.size.frame_bytes  # the trap: .length says it fits
    async with PythonMaster(limit=limit, namespace=NS) as master:
        _, verdict = await send(master, session, transport, message)
    assert not verdict.delivered and verdict.cause is Cause.OVERSIZE_CLOSE
    assert f"{limit + 1:,} B" in verdict.evidence


async def test_python_encoder_doubles_cjk_bytes_and_crosses_the_limit_sooner(session):
    limit = 40_000
    node = CATALOG.sized("worker:comments:update", 30_000, Encoder.NODE, namespace=NS)
    as_python = encode_json(node.obj(), Encoder.PYTHON).encode()
    assert len(as_python) > limit > node.size.json_bytes
    async with PythonMaster(limit=limit, namespace=NS) as master:
        _, verdict = await send(master, session, Transport.WEBSOCKET, node)
        assert verdict.delivered
        conn = await open_connection(Endpoint(master.url, namespace=NS), Transport.WEBSOCKET, session, TIMEOUT)
        try:
            frame = event_frame(as_python, encoder=Encoder.PYTHON, namespace=NS)
            (obs,) = await send_observed(conn, master.ledger, [frame], [node.id], encoder=Encoder.PYTHON,
                                         event="message", namespace=NS, timeout=TIMEOUT)
        finally:
            await conn.close()
        # The ledger already holds this id from the node-encoded send; only arrivals after it count.
        assert judge(obs).cause is Cause.OVERSIZE_CLOSE


async def test_polling_large_body_under_the_limit_is_lost_with_a_decode_error(session):
    """python-engineio reads a POST body with one StreamReader.read(n): big bodies get cut."""
    async with PythonMaster(limit=10_000_000, namespace=NS) as master:
        message = CATALOG.sized("worker:data:sync", 2_000_000, namespace=NS)
        obs, verdict = await send(master, session, Transport.POLLING, message)
    assert obs.http_status == 200  # the server said OK ...
    assert not verdict.delivered and verdict.cause is Cause.SERVER_DECODE_ERROR  # ... and dropped it
    assert "Error" in verdict.evidence


async def test_ledger_records_disconnect_reason(session):
    async with PythonMaster(limit=1000, namespace=NS) as master:
        obs, verdict = await send(master, session, Transport.WEBSOCKET, CATALOG.sized("worker:heartbeat", 5000, namespace=NS))
    assert verdict.cause is Cause.OVERSIZE_CLOSE
    assert obs.disconnect_reason == "transport close"
