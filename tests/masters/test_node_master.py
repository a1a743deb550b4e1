"""The real Node.js socket.io master, driven like the python reference master.

Facts asserted here were measured against socket.io 4.8 / engine.io 6.6 / ws 8: both
transports accept a frame or body of exactly maxHttpBufferSize bytes and reject one more,
websocket with a 1009 close without reason text, polling with HTTP 413 and an empty body.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imdiag.clients.engineio import Connection, Endpoint, open_connection
from imdiag.clients.observe import ProtocolWitness
from imdiag.core.catalog import Catalog
from imdiag.core.entries import canonical_digest, reencoded_bytes
from imdiag.core.errors import TargetError
from imdiag.core.judge import judge
from imdiag.core.model import Barrier, Cause
from imdiag.core.wire import (
    SIO_ACK,
    WIRE_TRANSPORTS,
    Encoder,
    Transport,
    encode_json,
    event_frame,
    js_stringify,
)
from imdiag.masters import node as node_module
from imdiag.masters.ledger import Arrival, Disconnect, ServerError
from imdiag.masters.node import NodeMaster, node_ready

from ..helpers import TIMEOUT, send_observed

CATALOG = Catalog(5)


async def _send(conn: Connection, master: NodeMaster, frames: list[bytes], ids: list[str], namespace: str = "/") -> list[Any]:
    return await send_observed(conn, master.ledger, frames, ids, encoder=Encoder.NODE, event="message",
                               namespace=namespace, timeout=TIMEOUT)


# --- limits: L-1 and L delivered, L+1 dropped with the observed cause ------------------------


@pytest.mark.node
@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
@pytest.mark.parametrize("limit", [1000, 100_000, 1_000_000])
async def test_limit_edges(session: aiohttp.ClientSession, transport: Transport, limit: int) -> None:
    async with NodeMaster(limit=limit) as master:
        assert master.info.server == "node" and master.info.versions["socket.io"].startswith("4.8.")
        endpoint = Endpoint(master.url)
        conn = await open_connection(endpoint, transport, session, TIMEOUT)
        try:
            assert conn.open_info is not None and conn.open_info.max_payload == limit
            for size in (limit - 1, limit):
                message = CATALOG.sized("worker:data:sync", size, Encoder.NODE)
                frame = event_frame(message.data, encoder=Encoder.NODE)
                assert len(frame) == size
                (obs,) = await _send(conn, master, [frame], [message.id])
                verdict = judge(obs)
                assert verdict.delivered, verdict
                arrival = master.ledger.find(message.id)
                assert arrival is not None
                # Node's digest and byte count of the received message equal python's.
                assert arrival.digest == canonical_digest(message.obj())
                assert arrival.bytes == reencoded_bytes(message.obj()) == len(message.data)

            mark = master.ledger.mark()
            message = CATALOG.sized("worker:data:sync", limit + 1, Encoder.NODE)
            (obs,) = await _send(conn, master, [event_frame(message.data, encoder=Encoder.NODE)], [message.id])
            verdict = judge(obs)
            assert not verdict.delivered and verdict.cause is Cause.OVERSIZE_CLOSE, verdict
            if transport is Transport.WEBSOCKET:
                assert (obs.close_code, obs.close_reason) == (1009, "")  # no reason text
                cause = "RangeError: Max payload size exceeded"
            else:
                assert (obs.http_status, obs.http_body) == (413, "")
                cause = "payload too large"
            # The server's side: the session ends with "transport error", caused by the limit.
            found = await master.ledger.wait_until(
                lambda e: isinstance(e, ServerError) and e.error == cause, mark, TIMEOUT
            )
            assert found is not None and not found.decode
            ended = [(e.reason, e.cause) for e in master.ledger.since(mark) if isinstance(e, Disconnect)]
            assert ended == [("transport error", cause)]  # the cause rides with the disconnect too
            assert master.ledger.find(message.id) is None
        finally:
            await conn.close()
        # The worker can reconnect at once, and a message at the limit goes through again.
        again = await open_connection(endpoint, transport, session, TIMEOUT)
        try:
            message = CATALOG.sized("worker:heartbeat", limit, Encoder.NODE)
            (obs,) = await _send(again, master, [event_frame(message.data, encoder=Encoder.NODE)], [message.id])
            assert judge(obs).delivered
        finally:
            await again.close()


@pytest.mark.node
async def test_batched_polling_body_over_the_limit_drops_every_packet(session: aiohttp.ClientSession) -> None:
    async with NodeMaster(limit=1000) as master:
        conn = await open_connection(Endpoint(master.url), Transport.POLLING, session, TIMEOUT)
        try:
            messages = [CATALOG.sized(t, 600, Encoder.NODE) for t in ("worker:heartbeat", "worker:register")]
            frames = [event_frame(m.data, encoder=Encoder.NODE) for m in messages]
            observations = await _send(conn, master, frames, [m.id for m in messages])
            for obs in observations:
                assert obs.http_status == 413 and obs.body_bytes == 1201
                verdict = judge(obs)
                # Each 600 B message fits alone: the 413 refused the body that batched them.
                assert not verdict.delivered and verdict.cause is Cause.BATCHED_OVERSIZE, verdict
                assert "this message alone is 600 B, it was batched with 1 other packet(s)" in verdict.evidence
            assert not any(isinstance(e, Arrival) for e in master.ledger.entries)
        finally:
            await conn.close()


@pytest.mark.node
@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
async def test_invalid_json_is_a_decode_error_that_closes_the_session(
    session: aiohttp.ClientSession, transport: Transport
) -> None:
    async with NodeMaster(limit=1000) as master:
        conn = await open_connection(Endpoint(master.url), transport, session, TIMEOUT)
        try:
            mark = master.ledger.mark()
            bad = b'42["message",{"type":"worker:data:sync","id":"bad"]'
            (obs,) = await _send(conn, master, [bad], ["bad"])
            await master.ledger.wait_until(lambda e: isinstance(e, Disconnect), mark, TIMEOUT)
            entries = master.ledger.since(mark)
            decode_errors = [e for e in entries if isinstance(e, ServerError) and e.decode]
            assert [e.error for e in decode_errors] == ["invalid payload"]
            assert [e.reason for e in entries if isinstance(e, Disconnect)] == ["forced close"]
            assert not judge(obs).delivered
        finally:
            await conn.close()


# --- namespace, ack, order -------------------------------------------------------------------


@pytest.mark.node
@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
async def test_namespace_and_ack(session: aiohttp.ClientSession, transport: Transport) -> None:
    async with NodeMaster(limit=100_000, namespace="/worker") as master:
        conn = await open_connection(Endpoint(master.url, namespace="/worker"), transport, session, TIMEOUT)
        try:
            message = CATALOG.natural("worker:register", Encoder.NODE, namespace="/worker", ack_id=7)
            frame = event_frame(message.data, encoder=Encoder.NODE, namespace="/worker", ack_id=7)
            assert frame.startswith(b'42/worker,7["message",')
            result = await conn.send([frame])
            assert result.ok, result
            packet = await conn.next_packet(TIMEOUT)
            assert packet is not None
            assert (packet.type, packet.namespace, packet.ack_id, packet.data) == (SIO_ACK, "/worker", 7, [True])
            arrival = master.ledger.find(message.id)
            assert arrival is not None and arrival.namespace == "/worker" and arrival.sid == conn.sid
            assert arrival.type == "worker:register" and arrival.event == "message"
        finally:
            await conn.close()


@pytest.mark.node
async def test_closing_a_polling_session_leaves_no_error_on_the_master(session: aiohttp.ClientSession) -> None:
    """No GET may reach the server after our CLOSE: Node logs it as an unknown session.

    Right after the server answered a packet (here the barrier), the poller is sending its
    next GET while close() sends the CLOSE on another TCP connection; that GET is answered
    before the CLOSE goes out, and no further GET is sent.
    """
    async with NodeMaster(limit=100_000, namespace="/worker") as master:
        for _ in range(10):
            conn = await open_connection(Endpoint(master.url, namespace="/worker"), Transport.POLLING, session, TIMEOUT)
            answer = await ProtocolWitness("/worker").barrier(conn, TIMEOUT, frozenset())
            await conn.close()
            assert answer.state is Barrier.PARSED, answer
        await master.stop()  # the ledger then holds every line the master wrote
    errors = [e for e in master.ledger.entries if isinstance(e, ServerError)]
    assert errors == []
    assert sum(isinstance(e, Disconnect) for e in master.ledger.entries) == 10


@pytest.mark.node
@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
async def test_ledger_order_is_dispatch_order(session: aiohttp.ClientSession, transport: Transport) -> None:
    async with NodeMaster(limit=1_000_000) as master:
        conn = await open_connection(Endpoint(master.url), transport, session, TIMEOUT)
        try:
            messages = [CATALOG.sized("worker:messages:update", 2000 + 37 * i, Encoder.NODE) for i in range(40)]
            frames = [event_frame(m.data, encoder=Encoder.NODE) for m in messages]
            observations = await _send(conn, master, frames, [m.id for m in messages])
            assert all(judge(o).delivered for o in observations)
            seqs = [o.ledger_seq for o in observations]
            assert seqs == sorted(seqs)
        finally:
            await conn.close()


async def test_not_ready_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("IMDIAG_NODE_DIR", str(tmp_path))  # no node_modules there
    monkeypatch.setattr(node_module.shutil, "which", lambda name: "/usr/bin/node")  # node "found"
    reason = node_ready()
    assert reason is not None and "imdiag node install" in reason and str(tmp_path) in reason
    with pytest.raises(TargetError, match="imdiag node install"):
        await NodeMaster(limit=1000).start()
    monkeypatch.undo()
    monkeypatch.setenv("IMDIAG_NODE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = node_ready()
    assert reason is not None and "Node.js is not installed" in reason
    with pytest.raises(TargetError, match="Node.js is not installed"):
        await NodeMaster(limit=1000).start()


# --- JSON: python's model of JSON.stringify against the real one -----------------------------

_CHARS = st.one_of(
    st.characters(),  # any code point but surrogates
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone (or accidentally paired) surrogates
    st.sampled_from(["\x00", "\x1f", "\x7f", "\u2028", "\u2029", '"', "\\", "/", "😀", "🏽", "中", "é"]),
)
_KEYS = st.one_of(
    st.text(_CHARS, max_size=6),
    st.integers(0, 2**32 + 5).map(str),  # array-index keys (and just past the index range)
    st.sampled_from(["0", "01", "-1", "1.5", "4294967294", "4294967295", " 1", "__proto__"]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),  # past 2**53 JSON.stringify prints the rounded double
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_CHARS, max_size=20),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


@pytest.mark.node
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_VALUES)
def test_js_stringify_equals_json_stringify(node_oracle: Any, value: Any) -> None:
    expected = node_oracle.stringify(value)
    assert js_stringify(value) == expected
    assert encode_json(value, Encoder.NODE) == expected


@pytest.mark.node
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_VALUES)
@example(value={"b": 2, "__proto__": {"a": 1.0}})  # an own key to JSON.parse, a prototype to a copy
# More distinct keys than master.js lists for JSON.stringify: its sorted copy writes the form.
@example(value=[{f"k{i:03d}": {"z": i, "a": [1.5, None]}, "b": i} for i in range(300)])
def test_node_digest_equals_canonical_digest(node_oracle: Any, value: Any) -> None:
    """For anything JSON can carry (floats, integers past 2**53, lone surrogates) both masters and
    the sender compute the same digest: a delivered message is always found."""
    assert node_oracle.digest(value) == canonical_digest(value)
    assert len(node_oracle.stringify(value).encode()) == reencoded_bytes(value)  # the bytes both ledgers hold


@pytest.mark.node
async def test_an_arrival_is_reported_even_when_its_digest_overflows_the_js_stack(session: aiohttp.ClientSession) -> None:
    """JSON.parse reads any depth; canonical() recurses: the arrival is still in the ledger."""
    deep = "[" * 100_000 + "]" * 100_000
    frame = ('42["message",{"type":"deep","id":"d-1","payload":' + deep + "}]").encode()
    # A type that is no string is no type (and its report line stays shallow for python's parser).
    deep_type = ('42["message",{"type":' + deep + ',"id":"d-2","payload":1}]').encode()
    async with NodeMaster(limit=1_000_000) as master:
        conn = await open_connection(Endpoint(master.url), Transport.WEBSOCKET, session, TIMEOUT)
        try:
            (obs,) = await _send(conn, master, [frame], ["d-1"])
            (typed,) = await _send(conn, master, [deep_type], ["d-2"])
        finally:
            await conn.close()
        assert judge(obs).delivered  # before: master.js died with RangeError and the message was lost
        arrival = master.ledger.find("d-1")
        assert arrival is not None and arrival.digest == ""
        assert any(isinstance(e, ServerError) and "digest" in e.message for e in master.ledger.entries)
        assert judge(typed).delivered and master.ledger.find("d-2").type is None
