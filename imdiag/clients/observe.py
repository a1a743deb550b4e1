"""Send a message on a connection and record everything seen until a barrier answers: one pipeline.

After the message the client sends a barrier on the same connection. A Socket.IO server parses
and dispatches one connection's packets in order, so once the barrier is answered, everything
sent before it has been handled. Two witnesses answer it:

- a master imdiag started keeps a ledger: the barrier is a small message, and once the ledger
  holds it, a message that is not in the ledger never will be (``LedgerWitness``);
- a live master has none: the barrier is a CONNECT to an unused namespace, which the server
  answers (CONNECT_ERROR) only after parsing everything before it; with ``--ack`` the master's
  ACKs prove that its handler ran (``ProtocolWitness``).

Closes, HTTP statuses, ledger entries and ACKs are awaited as events, never by sleeping, and
nothing here decides a verdict: the result is one ``Observation`` per message, for
``imdiag.core.judge``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from imdiag.clients.engineio import Connection, SendResult
from imdiag.core.entries import (
    BARRIER_TYPE,
    Arrival,
    Disconnect,
    MasterSide,
    ledger_fields,
    ledger_key,
    master_side,
    match_arrivals,
)
from imdiag.core.model import Ack, Barrier, HttpAnswer, Observation
from imdiag.core.refusal import SizeClose
from imdiag.core.wire import (
    SIO_ACK,
    SIO_CONNECT,
    SIO_CONNECT_ERROR,
    Encoder,
    Packet,
    connect_packet,
    encode_json,
    event_frame,
    packet_chars,
    packet_size,
)
from imdiag.masters.ledger import Ledger

# Never used by a real application; servers refuse it, which is the answer the barrier needs.
BARRIER_NAMESPACE = "/imdiag-barrier"
# python-socketio runs event handlers as tasks, so an ack can follow the barrier's answer; a
# handler that acks does so within a few round trips. Bounded wait for that event.
ACK_GRACE_MIN_S = 0.5
ACK_GRACE_RTTS = 4

_barrier_ids = itertools.count(1)


@dataclass(frozen=True)
class Outgoing:
    """One encoded packet to send, and how the master's answer names it."""

    frame: Packet  # bytes, or made piece by piece as it is written (``Streamed``)
    message_id: str | None = None  # the ledger finds it by id ...
    digest: str | None = None  # ... or by the digest of what the master decodes
    ack_id: int | None = None  # the frame asks for an ack with this id


@dataclass(frozen=True)
class BarrierAnswer:
    state: Barrier
    answer: str = ""  # what a live server answered, e.g. CONNECT_ERROR 'Invalid namespace'
    acked: frozenset[int] = frozenset()
    failed: SendResult | None = None  # the barrier's own write was refused: the session is gone


@dataclass(frozen=True)
class Seen:
    """What a witness saw for one message beyond the transport."""

    arrival: Arrival | None = None
    side: MasterSide = field(default_factory=MasterSide)  # its decode errors, how it ended the session


class Witness(Protocol):
    def begin(self) -> None: ...

    async def barrier(self, conn: Connection, timeout: float, ack_ids: frozenset[int]) -> BarrierAnswer: ...

    async def settle(self, conn: Connection, timeout: float) -> None: ...

    def seen(self, conn: Connection, outgoing: Sequence[Outgoing]) -> list[Seen]: ...


def barrier_frame(barrier_id: str, *, encoder: Encoder, event: str, namespace: str) -> bytes:
    message = encode_json({"type": BARRIER_TYPE, "id": barrier_id}, encoder).encode()
    return event_frame(message, encoder=encoder, event=event, namespace=namespace)


@dataclass
class LedgerWitness:
    """A master imdiag started: its ledger proves what arrived."""

    ledger: Ledger
    encoder: Encoder
    event: str
    namespace: str
    _mark: int = 0

    def begin(self) -> None:
        self._mark = self.ledger.mark()

    async def barrier(self, conn: Connection, timeout: float, ack_ids: frozenset[int]) -> BarrierAnswer:
        barrier_id = f"b{next(_barrier_ids)}"
        frame = barrier_frame(barrier_id, encoder=self.encoder, event=self.event, namespace=self.namespace)
        sent = await conn.send([frame])
        if not sent.ok:
            return BarrierAnswer(Barrier.CLOSED, failed=sent)
        arrival = asyncio.ensure_future(self.ledger.wait_for(barrier_id, timeout, self._mark))
        try:
            done, _ = await asyncio.wait({arrival, conn.closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not arrival.done():
                arrival.cancel()
        if arrival in done and arrival.result() is not None:
            return BarrierAnswer(Barrier.PASSED)
        return BarrierAnswer(Barrier.CLOSED if conn.closed.done() else Barrier.TIMEOUT)

    async def settle(self, conn: Connection, timeout: float) -> None:
        if conn.closed.done() and conn.sid is not None:
            # The master records its side of the close (with its reason) as an event of its own.
            sid = conn.sid
            await self.ledger.wait_until(lambda e: isinstance(e, Disconnect) and e.sid == sid, self._mark, timeout)

    def seen(self, conn: Connection, outgoing: Sequence[Outgoing]) -> list[Seen]:
        entries = self.ledger.since(self._mark)
        side = master_side(entries, conn.sid)
        found = match_arrivals(entries, [(ledger_key(item.message_id, item.digest), self._mark) for item in outgoing])
        return [Seen(arrival, side) for arrival in found]


@dataclass
class ProtocolWitness:
    """A live master: no ledger; the server's answer to a protocol packet, and its ACKs."""

    namespace: str  # the namespace the messages (and their ACKs) travel in

    def begin(self) -> None:
        return None

    async def barrier(self, conn: Connection, timeout: float, ack_ids: frozenset[int]) -> BarrierAnswer:
        start = time.monotonic()
        deadline = start + timeout
        # A namespace of its own per barrier: a late answer to an earlier one cannot be taken for it.
        barrier_namespace = f"{BARRIER_NAMESPACE}-{next(_barrier_ids)}"
        sent = await conn.send([connect_packet(barrier_namespace).encode()])
        if not sent.ok:
            return BarrierAnswer(Barrier.CLOSED, failed=sent)
        state, answer = Barrier.TIMEOUT, ""
        acked: set[int] = set()
        for _ in range(1000):  # bounded: each pass consumes one packet or ends the wait
            if state is Barrier.PARSED and acked >= ack_ids:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            pkt = await conn.next_packet(left)
            if pkt is None:
                break
            if pkt.type == SIO_ACK and pkt.namespace == self.namespace and pkt.ack_id in ack_ids:
                acked.add(pkt.ack_id)
            elif (state is not Barrier.PARSED and pkt.namespace == barrier_namespace
                  and pkt.type in (SIO_CONNECT, SIO_CONNECT_ERROR)):
                state, answer = Barrier.PARSED, _answer_text(pkt.type, pkt.data)
                rtt = time.monotonic() - start
                deadline = min(deadline, time.monotonic() + ACK_GRACE_MIN_S + ACK_GRACE_RTTS * rtt)
        if state is not Barrier.PARSED and conn.closed.done():
            state = Barrier.CLOSED
        return BarrierAnswer(state, answer, frozenset(acked))

    async def settle(self, conn: Connection, timeout: float) -> None:
        return None

    def seen(self, conn: Connection, outgoing: Sequence[Outgoing]) -> list[Seen]:
        return [Seen() for _ in outgoing]


def _answer_text(kind: str, data: object) -> str:
    if kind == SIO_CONNECT:
        return "CONNECT"
    message = data.get("message") if isinstance(data, dict) else data
    return f"CONNECT_ERROR {message!r}"


def _failed_barrier_text(failed: SendResult) -> str:
    if failed.http_status is not None:
        return f"the next POST was answered HTTP {failed.http_status} {failed.http_body!r}"
    return f"the next POST failed: {failed.error}"


def _body_chars(body_bytes: int, frames: Sequence[Packet]) -> int | None:
    """Characters of a body that carried ``frames`` (and maybe ASCII packets of the client's own,
    such as a PONG): its bytes, less what the frames' multi-byte characters add."""
    extra = 0
    for frame in frames:
        chars = packet_chars(frame)
        if chars is None:
            return None
        extra += packet_size(frame) - chars
    return body_bytes - extra


async def observe(conn: Connection, outgoing: Sequence[Outgoing], witness: Witness, timeout: float, *,
                  size_close: SizeClose | None = None) -> list[Observation]:
    """Send ``outgoing`` in one write (one POST over polling, consecutive frames over websocket),
    then the witness's barrier; one Observation per message. ``size_close``: how the master's
    refusal shows where it is no 1009 (established by the caller: the master's rule, the probe)."""
    witness.begin()
    result = await conn.send([o.frame for o in outgoing])
    answer = BarrierAnswer(Barrier.CLOSED)
    # A refused POST never reached a handler: its acks are not awaited (the answer is already there).
    refused = result.http_status not in (None, 200)
    ack_ids = frozenset(o.ack_id for o in outgoing if o.ack_id is not None and not refused)
    if not conn.closed.done():
        answer = await witness.barrier(conn, timeout, ack_ids)
        if answer.failed is not None:
            # A refused barrier means the session is gone: wait (bounded) for the close to be observed.
            await asyncio.wait({conn.closed}, timeout=timeout)
    await witness.settle(conn, timeout)
    close = conn.closed.result() if conn.closed.done() else None
    close_error = close.error if close else ""
    if answer.failed is not None and not close_error:
        close_error = _failed_barrier_text(answer.failed)
    ended_by = None
    if close is not None and close.http_status is not None:
        ended_by = HttpAnswer("GET", close.http_status, close.server, close.reason)
    elif answer.failed is not None and (status := answer.failed.http_status) is not None:
        ended_by = HttpAnswer("barrier POST", status, answer.failed.http_server, answer.failed.http_body)
    base = Observation(
        body_bytes=result.body_bytes,
        body_chars=_body_chars(result.body_bytes, [o.frame for o in outgoing]),
        written_bytes=result.written_bytes,
        packets_in_body=result.packets,
        advertised_max_payload=conn.open_info.max_payload if conn.open_info else None,
        send_error=result.error,
        http_status=result.http_status,
        http_body=result.http_body if refused else "",
        http_server=result.http_server if refused else "",
        close_code=close.code if close else None,
        close_reason=close.reason if close else "",
        close_error=close_error,
        closed=close is not None and answer.state not in (Barrier.PASSED, Barrier.PARSED),
        ended_by=ended_by,
        barrier=answer.state,
        barrier_answer=answer.answer,
        seconds=round(result.seconds, 6),
        size_close=size_close,
    )
    observations = []
    for item, seen in zip(outgoing, witness.seen(conn, outgoing)):
        ack = Ack.NOT_ASKED if item.ack_id is None else (Ack.RECEIVED if item.ack_id in answer.acked else Ack.MISSING)
        observations.append(replace(
            base, message_bytes=packet_size(item.frame), message_chars=packet_chars(item.frame), ack=ack,
            **ledger_fields(seen.arrival, seen.side),
        ))
    return observations
