"""Send one message to a master that keeps a ledger, and record everything that is observed.

After the message, the worker sends a small barrier message on the same connection. A
Socket.IO server dispatches one connection's packets in order, so once the master's ledger
holds the barrier, it has dispatched everything sent before it: if the message is not in the
ledger by then, it never will be. A close, an HTTP status or a logged error is awaited as an
event. Nothing here waits on a fixed delay, and nothing here decides a verdict.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from imdiag.fake_master.ledger import BARRIER_TYPE, Arrival, Disconnect, Ledger, ServerError
from imdiag.model import Observation
from imdiag.wire import Encoder, encode_json, event_frame
from imdiag.worker.connection import Connection, SendResult

_barrier_ids = itertools.count(1)


def barrier_frame(barrier_id: str, *, encoder: Encoder, event: str, namespace: str) -> bytes:
    message = encode_json({"type": BARRIER_TYPE, "id": barrier_id}, encoder).encode()
    return event_frame(message, encoder=encoder, event=event, namespace=namespace)


async def _wait_barrier(conn: Connection, ledger: Ledger, barrier_id: str, since: int, timeout: float) -> str:
    arrival = asyncio.ensure_future(ledger.wait_for(barrier_id, timeout, since))
    try:
        done, _ = await asyncio.wait({arrival, conn.closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not arrival.done():
            arrival.cancel()
    if arrival in done and arrival.result() is not None:
        return "passed"
    if conn.closed.done():
        return "closed"
    return "timeout"


async def send_observed(
    conn: Connection,
    ledger: Ledger,
    packets: Sequence[bytes],
    message_ids: Sequence[str],
    *,
    encoder: Encoder,
    event: str,
    namespace: str,
    timeout: float,
) -> list[Observation]:
    """Send ``packets`` in one write (one POST over polling, consecutive frames over websocket).

    Returns one Observation per message id (the ledger is asked for each).
    """
    mark = ledger.mark()
    result: SendResult = await conn.send(packets)
    barrier_state = "closed"
    barrier_failed: SendResult | None = None
    if not conn.closed.done():
        barrier_id = f"b{next(_barrier_ids)}"
        barrier = await conn.send([barrier_frame(barrier_id, encoder=encoder, event=event, namespace=namespace)])
        if barrier.ok:
            barrier_state = await _wait_barrier(conn, ledger, barrier_id, mark, timeout)
        else:
            barrier_failed = barrier
            # A refused barrier means the session is gone: wait for the close to be observed.
            await asyncio.wait({conn.closed}, timeout=timeout)
    if conn.closed.done() and conn.sid is not None:
        # The master records its side of the close (with its reason) as an event of its own.
        sid = conn.sid
        await ledger.wait_until(lambda e: isinstance(e, Disconnect) and e.sid == sid, mark, timeout)
    entries = ledger.since(mark)
    errors = tuple(
        f"{e.message}: {e.error}" if e.error else e.message
        for e in entries
        if isinstance(e, ServerError) and e.decode
    )
    disconnect = next((e.reason for e in entries if isinstance(e, Disconnect) and e.sid == conn.sid), "")
    close = conn.closed.result() if conn.closed.done() else None
    close_error = close.error if close else ""
    if barrier_failed is not None and not close_error:
        if barrier_failed.http_status is not None:
            close_error = f"the next POST was answered HTTP {barrier_failed.http_status} {barrier_failed.http_body!r}"
        else:
            close_error = f"the next POST failed: {barrier_failed.error}"
    advertised = conn.open_info.max_payload if conn.open_info else None
    observations = []
    for i, message_id in enumerate(message_ids):
        found: Arrival | None = ledger.find(message_id, mark)
        observations.append(
            Observation(
                body_bytes=result.body_bytes,
                packets_in_body=result.packets,
                message_bytes=len(packets[i]),
                advertised_max_payload=advertised,
                send_error=result.error,
                http_status=result.http_status,
                http_body=result.http_body if result.http_status not in (None, 200) else "",
                close_code=close.code if close else None,
                close_reason=close.reason if close else "",
                close_error=close_error,
                closed=close is not None,
                barrier=barrier_state,
                ledger_seq=found.seq if found else None,
                ledger_bytes=found.bytes if found else None,
                server_errors=errors,
                disconnect_reason=disconnect,
            )
        )
    return observations
