"""The real client libraries as the worker: socket.io-client (Node) and python-socketio's AsyncClient.

Against both real masters, over websocket, polling and the library's default: the ledger's
verdicts at L-1, L and L+1 equal those of imdiag's own client wherever the bytes on the wire are
the same; what each library does after a refusal is read from the library, and asserted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imdiag.cli.options import client_encoder
from imdiag.clients.library import LibraryClient, LibraryLane, LibraryMessage
from imdiag.core.catalog import Catalog
from imdiag.core.judge import judge
from imdiag.core.model import Cause, Cell
from imdiag.core.plan import SweepSettings
from imdiag.core.quirks import rule
from imdiag.core.wire import Encoder, Transport, event_frame
from imdiag.core.worker import ClientKind, Connected, Disconnected, GaveUp, Received, Sent
from imdiag.masters.kinds import Master, new_master, started
from imdiag.runners.libraries import CLIENTS
from imdiag.runners.sweep import run_sweep

from ..helpers import TIMEOUT, run_imdiag

LIMIT = 20_000
SESSION = Path(__file__).resolve().parents[2] / "fixtures" / "session.jsonl"
NS = "/worker"
TYPES = ("worker:heartbeat", "worker:comments:update")  # a tiny one, and one with L-1, L, L+1 frames


def _key(cell: Cell, transport: str) -> tuple[str, str, str, str, int]:
    return (cell.master, transport, cell.type, cell.label, cell.message_bytes)


@pytest.mark.node
async def test_each_client_master_and_transport_at_the_boundary_agrees_with_imdiag():
    def settings(client: ClientKind, encoder: Encoder, transports: tuple[Transport, ...]) -> SweepSettings:
        return SweepSettings(limits=(LIMIT,), sizes=(), types=TYPES, transports=transports, encoder=encoder,
                             namespace=NS, masters=("python", "node"), timeout_s=TIMEOUT, client=client)

    wire = (Transport.WEBSOCKET, Transport.POLLING)
    runs = {
        "node": settings(ClientKind.NODE, Encoder.NODE, (*wire, Transport.DEFAULT)),
        "python": settings(ClientKind.PYTHON, Encoder.PYTHON, (*wire, Transport.DEFAULT)),
        "imdiag-node": settings(ClientKind.IMDIAG, Encoder.NODE, wire),
        "imdiag-python": settings(ClientKind.IMDIAG, Encoder.PYTHON, wire),
    }
    cells: dict[str, list[Cell]] = {name: [] for name in runs}
    await asyncio.gather(*(run_sweep(s, cells[name]) for name, s in runs.items()))

    for client in ("node", "python"):
        reference = {_key(c, c.transport.value): c for c in cells[f"imdiag-{client}"]}
        lanes = {(c.master, c.transport) for c in cells[client]}
        assert len(lanes) == 6 and len(cells[client]) == 6 * 5, lanes
        compared = 0
        for cell in cells[client]:
            view = cell.client
            assert view is not None and view.emit == "returned" and view.connected, cell
            assert view.library.startswith("socket.io-client 4." if client == "node" else "python-socketio 5.")
            # The library's own encoder made the same bytes as imdiag's wire model.
            assert view.bytes_agree is True, (cell, view)
            assert view.transport in ("websocket", "polling")
            same = reference[_key(cell, view.transport)]
            if "permessage-deflate" in view.extensions:
                # Not the same bytes on the wire: aiohttp inflates, then compares with > (not >=).
                assert (client, cell.master, view.transport) == ("node", "python", "websocket")
                compressed = rule("python", Transport.WEBSOCKET, compressed=True)
                assert cell.delivered == compressed.predicts_delivered(cell.message_bytes, LIMIT), cell
                continue
            assert cell.delivered == same.delivered, (cell, same)
            compared += 1
        assert compared >= 20
    # The one place where the client changes the verdict: a frame of exactly L, compressed.
    node_to_python_ws = [c for c in cells["node"] if (c.master, c.transport, c.label) == ("python", Transport.WEBSOCKET, "L")]
    assert [c.delivered for c in node_to_python_ws] == [True]
    assert node_to_python_ws[0].predicted_delivered is True  # the compressed-frame rule of servers.toml


@pytest.fixture
async def masters() -> AsyncIterator[dict[str, Master]]:
    made = {"python": new_master("python", LIMIT, NS), "node": new_master("node", LIMIT, NS),
            "node+csr": new_master("node", LIMIT, NS, csr=True)}
    async with started(list(made.values())):
        yield made


def _message(encoder: Encoder, target: int | None, seed: int = 7) -> LibraryMessage:
    catalog = Catalog(seed)
    if target is None:
        message = catalog.natural("worker:heartbeat", encoder, namespace=NS)
    else:
        message = catalog.sized("worker:comments:update", target, encoder, namespace=NS)
    frame = event_frame(message.data, encoder=encoder, event="message", namespace=NS)
    return LibraryMessage(message.text, message.id, None, len(frame))


async def _lane(kind: ClientKind, master: Master, transport: Transport) -> LibraryLane:
    client: LibraryClient = CLIENTS[kind](master.url, NS, "/socket.io/", transport, TIMEOUT)
    await client.start()
    return LibraryLane(client, master.ledger, event="message", timeout=TIMEOUT, advertised_max_payload=LIMIT)


async def _refuse(lane: LibraryLane, encoder: Encoder):
    """One message over the limit, through the library, and its fate."""
    sent = await lane.send(_message(encoder, LIMIT + 1))
    await lane.follow(sent)
    await lane.aftermath(sent)
    return sent


@pytest.mark.parametrize("server", ["python", pytest.param("node", marks=pytest.mark.node)])
async def test_python_client_after_a_refused_post_gives_up_and_every_later_emit_raises(server):
    master = new_master(server, LIMIT, NS)
    async with started([master]):
        lane = await _lane(ClientKind.PYTHON, master, Transport.POLLING)
        try:
            obs, view = lane.observe(await _refuse(lane, Encoder.PYTHON))
            assert not judge(obs).delivered and view.emit == "returned" and view.connected
            # python-socketio: the server ended the session ("server disconnect"), so the disconnect is
            # final (it fires __disconnect_final) and no reconnection is attempted.
            assert view.disconnect is not None and view.disconnect.reason == "server disconnect"
            assert view.gave_up and not view.reconnected
            events = lane.client.events
            assert any(isinstance(e, GaveUp) for e in events)
            assert sum(isinstance(e, Connected) for e in events) == 1
            # Every later message - a heartbeat too - is refused by emit() itself, and lost.
            later = await lane.send(_message(Encoder.PYTHON, None))
            await lane.follow(later)
            obs, view = lane.observe(later)
            assert view.emit == "raised" and "BadNamespaceError" in view.emit_error
            verdict = judge(obs)
            assert (verdict.delivered, verdict.cause) == (False, Cause.EMIT_ERROR)
            assert not any(getattr(e, "message_id", None) == later.message.message_id for e in master.ledger.entries)
        finally:
            await lane.client.close()


@pytest.mark.node
@pytest.mark.parametrize("kind", [ClientKind.NODE, ClientKind.PYTHON])
async def test_messages_emitted_while_the_client_is_reconnecting(masters, kind):
    encoder = client_encoder(kind, None)
    lane = await _lane(kind, masters["node"], Transport.WEBSOCKET)
    client = lane.client
    try:
        big = await lane.send(_message(encoder, LIMIT + 1))
        # Emitted at once, on the same websocket, behind the frame the server is about to refuse.
        window = await lane.send(_message(encoder, None, seed=1))
        await client.wait_until(lambda: any(isinstance(e, Disconnected) for e in client.events), TIMEOUT)
        down = [await lane.send(_message(encoder, None, seed=2 + n)) for n in range(3)]
        for sent in (big, window, *down):
            await lane.follow(sent)
        for sent in (big, window, *down):
            await lane.aftermath(sent)
        results = {id(s): lane.observe(s, final=True) for s in (big, window, *down)}

        obs, view = results[id(big)]
        assert not judge(obs).delivered and view.disconnect is not None and view.disconnect.close_code == 1009
        obs, view = results[id(window)]
        if view.connected:
            # Emitted before the close reached the client: it went out on the session the server closed.
            assert view.emit == "returned" and view.sid == big_sid(results, big)
            assert not judge(obs).delivered
        else:
            # Under load the close can come first (the emit is a round trip to the client process):
            # then it is emitted while disconnected, as the next ones are.
            down = [window, *down]
        for sent in down:
            obs, view = results[id(sent)]
            assert not view.connected
            if kind is ClientKind.NODE:
                # socket.io-client buffers what is emitted while disconnected, and sends it on reconnect.
                assert view.buffered and view.emit == "returned" and view.sent is Sent.WRITTEN
                assert judge(obs).delivered and view.sent_sid not in (None, big_sid(results, big))
            else:
                # python-socketio raises instead: nothing is buffered, the message is lost.
                assert view.emit == "raised" and "BadNamespaceError" in view.emit_error
                assert (judge(obs).delivered, judge(obs).cause) == (False, Cause.EMIT_ERROR)
    finally:
        await client.close()


def big_sid(results: dict, big) -> str | None:
    return results[id(big)][1].sid


@pytest.mark.node
async def test_node_master_with_and_without_csr_the_socket_id_after_a_refusal(masters):
    plain = await _lane(ClientKind.NODE, masters["node"], Transport.WEBSOCKET)
    csr = await _lane(ClientKind.NODE, masters["node+csr"], Transport.WEBSOCKET)
    try:
        # The --csr master ticks at once: once the client got a tick, it holds an offset to recover with.
        assert await csr.client.wait_until(lambda: any(isinstance(e, Received) for e in csr.client.events), TIMEOUT)
        refused = await asyncio.gather(_refuse(plain, Encoder.NODE), _refuse(csr, Encoder.NODE))
        (_, without), (_, with_csr) = (plain.observe(refused[0]), csr.observe(refused[1]))
        # Read from the client itself: socket.id before and after, and socket.recovered.
        assert without.reconnected and without.recovered is False and without.next_sid != without.sid
        assert with_csr.reconnected and with_csr.recovered is True and with_csr.next_sid == with_csr.sid
        # Same verdict either way: the message is still refused, recovery or not.
        assert not judge(plain.observe(refused[0])[0]).delivered and not judge(csr.observe(refused[1])[0]).delivered
    finally:
        await asyncio.gather(plain.client.close(), csr.client.close())


@pytest.mark.node
async def test_the_incident_end_to_end(tmp_path):
    out = tmp_path / "incident.json"
    code, stdout, stderr = await run_imdiag(
        "replay", str(SESSION), "--client", "node", "--master", "node", "--timing", "original",
        "--max-gap", "0.2s", "--json", str(out), timeout=TIMEOUT * 12)
    assert code == 0, stderr
    report = json.loads(out.read_text())
    assert report["settings"]["client"] == "node"
    cells = report["cells"]
    assert {c["transport"] for c in cells} == {"websocket", "polling", "default"}
    for transport in ("websocket", "polling", "default"):
        lane = [c for c in cells if c["transport"] == transport]
        assert len(lane) == 32
        # Every heartbeat arrives, the snapshot never, and the worker saw "emitted" for all of them.
        assert all(c["delivered"] for c in lane if c["type"] == "worker:heartbeat")
        snapshot = next(c for c in lane if c["index"] == 28)
        assert snapshot["type"] == "worker:data:sync" and not snapshot["delivered"]
        assert all(c["client"]["emit"] == "returned" for c in lane)
        assert snapshot["client"]["connected"] is True and snapshot["client"]["disconnect"] is not None
        assert snapshot["client"]["reconnected"] is True and snapshot["client"]["new_session"] is True
    assert "the worker's view beside the master's" in stdout and "#28 worker:data:sync" in stdout
