"""observe() through real nginx: a POST the proxy refused is answered at once, nothing waits for it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from imdiag.clients.engineio import Connection, Endpoint, open_connection
from imdiag.clients.observe import BarrierAnswer, Outgoing, ProtocolWitness, observe
from imdiag.core.judge import judge
from imdiag.core.model import Ack, Barrier, Cause
from imdiag.core.refusal import Refuser
from imdiag.core.wire import Encoder, Transport, encode_json, event_frame
from imdiag.masters.python import PythonMaster

from ..helpers import TIMEOUT
from ..nginx import Nginx, ProxyConfig, upstreams

pytestmark = pytest.mark.nginx

NS = "/worker"


@dataclass
class Asked(ProtocolWitness):
    """The live witness, recording which acks observe() asked it to wait for."""

    asked: list[frozenset[int]] | None = None

    async def barrier(self, conn: Connection, timeout: float, ack_ids: frozenset[int]) -> BarrierAnswer:
        assert self.asked is not None
        self.asked.append(ack_ids)
        return await super().barrier(conn, timeout, ack_ids)


def frame(size: int, ack_id: int) -> bytes:
    text = encode_json({"type": "worker:data:sync", "pad": "x" * size}, Encoder.NODE)
    return event_frame(text.encode(), encoder=Encoder.NODE, event="message", namespace=NS, ack_id=ack_id)


async def test_no_ack_is_awaited_for_a_post_the_proxy_refused(session):
    async with PythonMaster(limit=1_000_000, namespace=NS) as master, \
            Nginx(ProxyConfig(upstreams([master.port]), body_limit="100k")) as proxy:
        conn = await open_connection(Endpoint(proxy.url, NS), Transport.POLLING, session, TIMEOUT)
        try:
            witness = Asked(NS, asked=[])
            (refused,) = await observe(conn, [Outgoing(frame(200_000, 7), ack_id=7)], witness, TIMEOUT)
            (small,) = await observe(conn, [Outgoing(frame(100, 8), ack_id=8)], witness, TIMEOUT)
        finally:
            await conn.close()
    assert refused.http_status == 413 and refused.http_server.startswith("nginx/")
    verdict = judge(refused)
    assert (verdict.cause, verdict.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.PROXY)
    # The session stayed up (the barrier was answered) and the refused message's ack was not
    # waited for: it never reached a handler. The next message's ack is.
    assert refused.barrier is Barrier.PARSED and refused.ack is Ack.MISSING
    assert witness.asked == [frozenset(), frozenset({8})]
    assert small.http_status == 200 and small.barrier is Barrier.PARSED
