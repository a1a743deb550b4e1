"""The model's frame sizes equal what really crosses the socket, counted by a relay."""

import pytest

from imdiag.clients.engineio import Endpoint, open_connection
from imdiag.core.catalog import Catalog
from imdiag.core.wire import WIRE_TRANSPORTS, Encoder, Transport, event_frame
from imdiag.masters.python import PythonMaster

from ..helpers import TIMEOUT, send_observed
from .relay import Relay

CATALOG = Catalog(3)


@pytest.mark.parametrize("transport", WIRE_TRANSPORTS)
@pytest.mark.parametrize("encoder", list(Encoder))
@pytest.mark.parametrize("namespace", ["/", "/worker"])
async def test_model_size_equals_bytes_on_the_wire(session, transport, encoder, namespace):
    async with PythonMaster(limit=5_000_000, namespace=namespace) as master, Relay(master.port) as relay:
        conn = await open_connection(Endpoint(f"http://127.0.0.1:{relay.port}", namespace=namespace),
                                     transport, session, TIMEOUT)
        try:
            for kind, target in [("worker:heartbeat", None), ("worker:register", None), ("worker:messages:update", 40_000)]:
                if target is None:
                    message = CATALOG.natural(kind, encoder, namespace=namespace)
                else:
                    message = CATALOG.sized(kind, target, encoder, namespace=namespace)
                frame = event_frame(message.data, encoder=encoder, namespace=namespace)
                seen = relay.counts.post_bodies if transport is Transport.POLLING else relay.counts.ws_text_payloads
                before = len(seen)
                (obs,) = await send_observed(conn, master.ledger, [frame], [message.id], encoder=encoder,
                                             event="message", namespace=namespace, timeout=TIMEOUT)
                assert obs.ledger_seq is not None, obs
                # The message's frame or body was counted by the relay with exactly the model's size.
                assert seen[before] == message.size.frame_bytes
                if target is not None:
                    assert seen[before] == target
        finally:
            await conn.close()
