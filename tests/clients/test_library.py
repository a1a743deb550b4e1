"""LibraryLane's fate rules on a given timeline and ledger: which session a message went out on,
and when its absence is final (no network: the events are the ones the libraries report)."""

from __future__ import annotations

from imdiag.clients.library import LibraryClient, LibraryLane, LibraryMessage, SentMessage
from imdiag.core import worker as w
from imdiag.core.wire import Transport
from imdiag.core.worker import ClientKind
from imdiag.masters.ledger import Ledger

A, B = "sidA", "sidB"


class _Timeline(LibraryClient):
    kind = ClientKind.NODE


def _lane(events: list[w.ClientEvent], ledger: Ledger) -> tuple[LibraryLane, _Timeline]:
    client = _Timeline("http://127.0.0.1:1", "/", "/socket.io/", Transport.WEBSOCKET, 1.0)
    for event in events:
        client.add(event)
    return LibraryLane(client, ledger, event="message", timeout=1.0, advertised_max_payload=100), client


def _sent(seq: int, ledger: Ledger, message_id: str) -> SentMessage:
    return SentMessage(seq, LibraryMessage("{}", message_id, None, 10), "message", ledger.mark())


def _emitted(seq: int, connected: bool) -> w.Emitted:
    sid = A if connected else None
    return w.Emitted(0.0, seq, "", connected, sid, connected, sid, not connected)


def test_buffered_messages_flushed_before_the_connect_belong_to_the_new_session():
    # socket.io-client writes its send buffer on reconnect before it reports the connect.
    ledger = Ledger()
    events = [w.Connected(0.0, A, False, "polling"), _emitted(1, True),
              w.Flushed(0.1, (1,), 20, 1, (20,), "polling", A),
              w.Disconnected(0.2, A, "transport error", http_status=413), _emitted(2, False),
              w.Flushed(1.2, (2,), 20, 1, (20,), "polling", B), w.Connected(1.2, B, False, "polling")]
    lane, _ = _lane(events[:-1], ledger)  # its connect not reported yet: the same session
    assert lane._session_of(2) == (B, 1)
    lane, _ = _lane(events, ledger)
    assert lane._session_of(1) == (A, 1) and lane._session_of(2) == (B, 1)
    ledger.disconnect(A, "/", "transport error")
    first, second = _sent(1, ledger, "m1"), _sent(2, ledger, "m2")
    first.mark = second.mark = 0
    assert lane._fate(first) == "session-ended"  # its session ended on the master: final
    assert lane._fate(second) is None  # its session is alive: wait for it or its barrier


def test_a_recovered_session_is_a_new_incarnation_of_the_same_id():
    ledger = Ledger()
    events = [w.Connected(0.0, A, False, "websocket"), _emitted(1, True),
              w.Flushed(0.1, (1,), 20, 1, (20,), "websocket", A), w.Disconnected(0.2, A, "transport close", close_code=1009),
              _emitted(2, False), w.Flushed(1.0, (2,), 20, 1, (20,), "websocket", A), w.Connected(1.0, A, True, "websocket")]
    lane, _ = _lane(events[:-1], ledger)
    assert lane._session_of(2) == (A, 2)
    lane, _ = _lane(events, ledger)
    assert lane._session_of(1) == (A, 1) and lane._session_of(2) == (A, 2)
    ledger.disconnect(A, "/", "transport error")  # the first incarnation's end, not the second's
    second = _sent(2, ledger, "m2")
    second.mark = 0
    assert lane._fate(second) is None


def test_the_barrier_decides_only_on_the_same_session():
    ledger = Ledger()
    events = [w.Connected(0.0, A, False, "websocket"), _emitted(1, True),
              w.Flushed(0.1, (1,), 20, 1, (20,), "websocket", A), _emitted(2, True),
              w.Flushed(0.1, (2,), 20, 1, (20,), "websocket", A)]
    lane, _ = _lane(events, ledger)
    sent = _sent(1, ledger, "m1")
    sent.barrier_seq, sent.barrier_id = 2, "b1"
    assert lane._fate(sent) is None
    ledger.arrival(A, "/", "message", {"type": "imdiag:barrier", "id": "b1"})
    assert lane._fate(sent) == "barrier"
