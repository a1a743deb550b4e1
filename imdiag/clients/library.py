"""Real client libraries as the worker, and the send-and-observe pipeline for them.

A ``LibraryClient`` (``node_client.NodeClient``: socket.io-client in a Node process;
``python_client.PythonClient``: python-socketio's ``AsyncClient``) owns its connection: it
encodes, batches, buffers and reconnects by itself, and reports what it did as typed events
(``imdiag.core.worker``) on one timeline.

``LibraryLane`` emits each message through the client, then a barrier message through the same
client, as imdiag's own worker does, and decides from the master's ledger and the client's
events, never from a timer, when a message that is not in the ledger never will be:

- the ledger holds the barrier, and the barrier went out on the same session (socket id and
  incarnation) as the message: one session's packets are dispatched in order;
- or the session the message went out on has ended on the master's side (the ledger holds its
  disconnect): a session dispatches nothing after its disconnect. When the client reconnected in
  between, a barrier that arrived on the *new* session proves nothing about the old one by
  itself: only the old session's end does. A message emitted while the client was down waits in
  its send buffer and leaves before the barrier, on the same new session, so the barrier covers it;
- or the client says it never wrote it (emit raised, or it discarded it with a closed session);
- or the client will not reconnect and still holds it: it is pending for good.

Nothing here decides a verdict: each message becomes one ``Observation`` (for
``imdiag.core.judge``) and one ``ClientView`` (the worker's view).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from imdiag.core import worker as w
from imdiag.core.entries import (
    BARRIER_TYPE,
    Arrival,
    Disconnect,
    ledger_fields,
    ledger_key,
    master_side,
    match_arrivals,
)
from imdiag.core.errors import TargetError
from imdiag.core.model import Barrier, Observation
from imdiag.core.wire import Transport
from imdiag.masters.ledger import Ledger

_barrier_ids = itertools.count(1)


class LibraryClient:
    """A real Socket.IO client library driven by imdiag; its reports go to ``events``."""

    kind: w.ClientKind

    def __init__(self, url: str, namespace: str, path: str, transport: Transport, timeout: float):
        self.url = url  # http://host:port
        self.namespace = namespace
        self.path = path
        self.transport = transport
        self.timeout = timeout
        self.events: list[w.ClientEvent] = []
        self.versions: dict[str, str] = {}
        self.connected = False
        self.sid: str | None = None
        self.gave_up = False  # the library said it will not reconnect by itself
        self._changed = asyncio.Event()

    # --- to be provided by each library --------------------------------------------------

    async def _open(self) -> None:
        """Start the library's client (it connects by itself)."""
        raise NotImplementedError

    async def emit(self, seq: int, event: str, text: str) -> w.Emitted:
        """Emit one message, given as its JSON text (the library parses and re-encodes it)."""
        raise NotImplementedError

    async def _replace(self) -> None:
        raise NotImplementedError

    async def settled(self) -> None:
        """After a connect event: until the library's own state says connected."""

    async def close(self) -> None:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------

    @property
    def library(self) -> str:
        name = w.LIBRARY_NAMES[self.kind]
        return f"{name} {self.versions.get(name, '?')}"

    def add(self, event: w.ClientEvent) -> None:
        self.events.append(event)
        if isinstance(event, w.Connected):
            self.connected, self.sid, self.gave_up = True, event.sid, False
        elif isinstance(event, w.Disconnected):
            self.connected, self.sid = False, None
            if event.will_reconnect is False:
                self.gave_up = True
        elif isinstance(event, w.GaveUp):
            self.gave_up = True
        # Wake every waiter, then re-arm (as the ledger does).
        self._changed.set()
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """Set when the next event arrives."""
        return self._changed

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Until ``predicate()`` holds (re-checked at each event), at most ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()  # a new event after each one: read again each time
        except TimeoutError:
            return predicate()
        return True

    async def start(self) -> None:
        """Open the client and wait (bounded) for its first connection."""
        await self._open()
        mark = len(self.events)
        ok = await self.wait_until(lambda: self.connected or any(
            isinstance(e, w.ConnectFailed) for e in self.events[mark:]), self.timeout)
        if not self.connected:
            failed = [e.message for e in self.events[mark:] if isinstance(e, w.ConnectFailed)]
            why = f": {failed[-1]}" if failed else (f" within {self.timeout:g} s" if not ok else "")
            raise TargetError(f"the {self.kind.value} client could not connect to {self.url}{self.namespace}{why}")

    async def replace(self, why: str) -> None:
        """Close the library's client and start a new one (after it gave up)."""
        self.add(w.Replaced(self.now(), why))
        await self._replace()

    def now(self) -> float:
        raise NotImplementedError

    def pending(self) -> set[int]:
        """Messages emitted into the send buffer and neither sent nor discarded since."""
        buffered = {e.seq for e in self.events if isinstance(e, w.Emitted) and e.buffered}
        for e in self.events:
            if isinstance(e, w.Flushed):
                buffered -= set(e.seqs)
            elif isinstance(e, w.Dropped):
                buffered -= set(e.unsent) | set(e.in_flight)
        return buffered


@dataclass(frozen=True)
class LibraryMessage:
    """One message to emit: its JSON, how the ledger names it, its packet by imdiag's model."""

    text: str
    message_id: str | None
    digest: str | None
    model_frame_bytes: int
    event: str | None = None  # None: the lane's event
    model_frame_chars: int | None = None  # the packet's characters by imdiag's model, when known


@dataclass
class SentMessage:
    """A message the lane emitted, and what is known of its fate."""

    seq: int
    message: LibraryMessage
    event: str
    mark: int  # ledger position before the emit
    barrier_seq: int | None = None
    barrier_id: str = ""
    fate: str | None = None  # see LibraryLane._fate


class LibraryLane:
    """One client library sending to one master: emit, barrier, fate, worker's view."""

    def __init__(self, client: LibraryClient, ledger: Ledger, *, event: str, timeout: float,
                 advertised_max_payload: int | None):
        self.client = client
        self.ledger = ledger
        self.event = event
        self.timeout = timeout
        self.advertised_max_payload = advertised_max_payload
        self._seqs = itertools.count(1)
        self._twins: dict[tuple[str, str], list[SentMessage]] = {}

    async def send(self, message: LibraryMessage) -> SentMessage:
        """Emit the message through the client."""
        sent = SentMessage(next(self._seqs), message, message.event or self.event, self.ledger.mark())
        key = ledger_key(message.message_id, message.digest)
        if key is not None:
            self._twins.setdefault(key, []).append(sent)
        await self.client.emit(sent.seq, sent.event, message.text)
        sent.message = replace(message, text="")  # the library has it now; a lane keeps no bodies
        return sent

    async def barrier(self, sent: SentMessage) -> None:
        """Emit the message's barrier through the same client, once the library has handed the
        message to its transport (or buffered it, or refused it): emitted at once, the barrier
        would ride in the message's own POST (python-engineio batches what is queued) and
        change the very size being measured."""
        await self.client.wait_until(lambda: self._handed_over(sent.seq), self.timeout)
        barrier_id = f"b{next(_barrier_ids)}"
        sent.barrier_seq, sent.barrier_id = next(self._seqs), barrier_id
        await self.client.emit(sent.barrier_seq, sent.event, f'{{"type":"{BARRIER_TYPE}","id":"{barrier_id}"}}')

    async def follow(self, sent: SentMessage) -> None:
        """The barrier, then the fate."""
        await self.barrier(sent)
        await self.settle(sent)

    # --- deciding a message's fate ------------------------------------------------------------

    def _arrival(self, sent: SentMessage) -> Arrival | None:
        """Its arrival in the ledger, by id, else by digest. Messages with the same id (or
        digest) take successive arrivals in the order they were emitted."""
        key = ledger_key(sent.message.message_id, sent.message.digest)
        if key is None:
            return None
        twins = self._twins.get(key, [sent])
        twins = twins[:next(i for i, twin in enumerate(twins) if twin is sent) + 1]  # those emitted up to it
        return match_arrivals(self.ledger.since(twins[0].mark), [(key, twin.mark) for twin in twins])[-1]

    def _session_of(self, seq: int) -> tuple[str, int] | None:
        """The session a message went out on: its socket id, and which incarnation of that id
        (a recovered session keeps its id)."""
        incarnation: dict[str, int] = {}
        live = False  # the last session event was a connect: a session is up
        for e in self.client.events:
            if isinstance(e, w.Connected):
                incarnation[e.sid] = incarnation.get(e.sid, 0) + 1
                live = True
            elif isinstance(e, w.Disconnected):
                live = False
            elif isinstance(e, w.Flushed) and seq in e.seqs:
                if not e.sid:
                    return None
                # socket.io-client sends what it buffered while down before it reports the
                # connect: a flush while no session is up belongs to the one coming.
                return e.sid, incarnation.get(e.sid, 0) + (0 if live else 1)
        return None

    def _ended_on_master(self, session: tuple[str, int]) -> bool:
        sid, incarnation = session
        ends = sum(1 for e in self.ledger.entries if isinstance(e, Disconnect) and e.sid == sid)
        return ends >= incarnation

    def _fate(self, sent: SentMessage) -> str | None:
        """"delivered", or why its absence is final, or None (not decided yet)."""
        if self._arrival(sent) is not None:
            return "delivered"
        emitted = next((e for e in self.client.events if isinstance(e, w.Emitted) and e.seq == sent.seq), None)
        if emitted is None:
            return None
        if emitted.error:
            return "raised"
        if any(isinstance(e, w.Dropped) and sent.seq in e.unsent for e in self.client.events):
            return "dropped"
        session = self._session_of(sent.seq)
        if session is None:
            # Still in the send buffer: pending for good once the library will not reconnect.
            return "pending" if self.client.gave_up and sent.seq in self.client.pending() else None
        if self._ended_on_master(session):
            return "session-ended"
        barrier_arrived = sent.barrier_id and self.ledger.find(sent.barrier_id, sent.mark) is not None
        if barrier_arrived and sent.barrier_seq is not None and self._session_of(sent.barrier_seq) == session:
            return "barrier"
        return None

    async def settle(self, sent: SentMessage) -> None:
        """Until the message's fate is decided, at most the timeout."""
        deadline = time.monotonic() + self.timeout
        while (fate := self._fate(sent)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            waits = {asyncio.ensure_future(self.ledger.changed().wait()),
                     asyncio.ensure_future(self.client.changed().wait())}
            try:
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
        # The fate only ends the wait: the verdict reads the ledger again when the message is
        # observed (python-socketio runs handlers as tasks, so an arrival can be reported just
        # after the disconnect that ended its session).
        sent.fate = fate
        # The worker's view needs the client's own account, which may come a moment after the
        # master's: that the transport took the message (or what became of it), and, when the
        # master saw the session end, that the client saw it too (one that never does is a finding).
        await self.client.wait_until(lambda: self._client_done(sent.seq) and (
            sent.barrier_seq is None or self._client_done(sent.barrier_seq)), self.timeout)
        if fate == "session-ended":
            await self.client.wait_until(lambda: self._client_saw_end(sent.seq), self.timeout)

    def _handed_over(self, seq: int) -> bool:
        for e in self.client.events:
            if isinstance(e, w.Emitted) and e.seq == seq and (e.error or e.buffered):
                return True
            if isinstance(e, w.Flushed) and seq in e.seqs or isinstance(e, w.Dropped) and seq in e.in_flight + e.unsent:
                return True
        return False

    def _client_done(self, seq: int) -> bool:
        for e in self.client.events:
            if isinstance(e, w.Emitted) and e.seq == seq and e.error:
                return True
            if isinstance(e, (w.Written, w.Dropped)) and seq in (e.seqs if isinstance(e, w.Written) else e.in_flight + e.unsent):
                return True
        return self.client.gave_up and seq in self.client.pending()

    def _client_saw_end(self, seq: int) -> bool:
        flushed = False
        for e in self.client.events:
            flushed = flushed or (isinstance(e, w.Flushed) and seq in e.seqs)
            if flushed and isinstance(e, w.Disconnected):
                return True
        return False

    async def aftermath(self, sent: SentMessage) -> None:
        """If the message's session ended: until the client is back, gave up, or the timeout."""
        view = self.view(sent)
        if view.disconnect is None:
            return
        at = self.client.events.index(view.disconnect)
        await self.client.wait_until(lambda: self.client.gave_up or any(
            isinstance(e, w.Connected) for e in self.client.events[at:]), self.timeout)

    async def ready(self) -> None:
        """Before a sweep's next message: a connected client. The library reconnects by itself;
        one that gave up (or is not back within the timeout) is replaced, and that is recorded."""
        client = self.client
        if client.connected:
            await client.settled()
            return
        await client.wait_until(lambda: client.connected or client.gave_up, self.timeout)
        if not client.connected:
            await client.replace("the library gave up" if client.gave_up else f"not back within {self.timeout:g} s")
            await client.wait_until(lambda: client.connected, self.timeout)
            if not client.connected:
                raise TargetError(f"the {client.kind.value} client could not reconnect to {client.url} "
                                  f"within {self.timeout:g} s")
        await client.settled()

    # --- results ------------------------------------------------------------------------------

    def view(self, sent: SentMessage, *, final: bool = False) -> w.ClientView:
        pending = final and sent.seq in self.client.pending()
        return w.client_view(self.client.events, sent.seq, client=self.client.kind.value, library=self.client.library,
                           model_frame_bytes=sent.message.model_frame_bytes, pending=pending)

    def observe(self, sent: SentMessage, *, final: bool = False) -> tuple[Observation, w.ClientView]:
        """The message's observation for the judge, and the worker's view."""
        view = self.view(sent, final=final)
        arrival = self._arrival(sent)
        side = master_side(self.ledger.since(sent.mark), view.sent_sid)
        fate = sent.fate
        closed = arrival is None and (fate in ("session-ended", "dropped") or view.sent in (w.Sent.IN_FLIGHT, w.Sent.DROPPED))
        d = view.disconnect if closed else None
        status = d.http_status if d is not None else None
        if status is None and closed:
            status = view.write_status  # the in-flight POST's answer, when it came after the disconnect
        if status is None and view.transport == "polling" and view.sent is w.Sent.WRITTEN:
            status = 200  # the library took the POST's 2xx answer as written
        barrier = {
            "delivered": Barrier.PASSED, "barrier": Barrier.PASSED, "session-ended": Barrier.CLOSED,
            "dropped": Barrier.CLOSED,
        }.get(fate or "", Barrier.TIMEOUT if fate is None and view.sent is not w.Sent.PENDING else Barrier.NONE)
        message_bytes = view.frame_bytes if view.frame_bytes is not None else sent.message.model_frame_bytes
        # The model's characters hold for the library's packet when its bytes are the model's; what
        # else shares its POST body is the client's own ASCII.
        chars = sent.message.model_frame_chars if message_bytes == sent.message.model_frame_bytes else None
        obs = Observation(
            body_bytes=view.body_bytes or 0,
            body_chars=None if chars is None or not view.body_bytes else view.body_bytes - (message_bytes - chars),
            packets_in_body=view.packets_in_body or 1,
            # A message the library never encoded: imdiag's model of its packet.
            message_bytes=message_bytes,
            message_chars=chars,
            advertised_max_payload=self.advertised_max_payload,
            emit_error=view.emit_error,
            client_kept={w.Sent.DROPPED: "dropped", w.Sent.PENDING: "pending"}.get(view.sent, "") if arrival is None else "",
            http_status=status,
            close_code=d.close_code if d is not None else None,
            close_reason=d.close_reason if d is not None else "",
            close_error=self._close_error(view) if closed else "",
            closed=closed,
            barrier=barrier,
            **ledger_fields(arrival, side),
        )
        return obs, view

    def _close_error(self, view: w.ClientView) -> str:
        """How the client says the session ended, in its words."""
        parts = []
        if view.write_error:
            parts.append(f"the write failed: {view.write_error}")
        d = view.disconnect
        if d is not None:
            said = f"disconnect {d.reason!r}" + (f" ({d.description})" if d.description else "")
            parts.append(f"the {self.client.kind.value} client reported {said}")
        return "; ".join(parts)


