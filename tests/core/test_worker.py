"""client_view(): a library's timeline becomes the worker's view of each message; its words; the
judge's paths for messages a library never wrote; the compressed-frame rule."""

from __future__ import annotations

import pytest

from imdiag.core.judge import judge
from imdiag.core.model import Cause, Observation
from imdiag.core.quirks import rule
from imdiag.core.wire import Transport
from imdiag.core.worker import (
    Connected,
    Disconnected,
    Dropped,
    Emitted,
    Flushed,
    GaveUp,
    Replaced,
    Sent,
    Written,
    client_view,
    next_says,
    sent_says,
    worker_says,
)

A, B = "sidA", "sidB"


def emitted(seq: int, t: float, *, connected: bool = True, sid: str | None = A, buffered: bool = False,
            error: str = "") -> Emitted:
    return Emitted(t, seq, error, connected, sid if connected else None, connected, sid if connected else None, buffered)


def view(events: list, seq: int = 1, **kwargs):
    return client_view(events, seq, client="node", library="socket.io-client 4.8.1", model_frame_bytes=100, **kwargs)


def test_written_while_connected_is_the_quiet_case():
    events = [Connected(0.0, A, False, "websocket"), Flushed(0.1, (1,), 100, 1, (100,), "websocket", A),
              emitted(1, 0.1), Written(0.11, (1,))]
    v = view(events)
    assert (v.sent, v.transport, v.body_bytes, v.frame_bytes, v.bytes_agree) == (Sent.WRITTEN, "websocket", 100, 100, True)
    assert v.disconnect is None and v.reconnected is None
    assert worker_says(v) == f"emitted, connected: true (socket {A})"
    assert next_says(v) == ""


def test_refused_then_reconnected_as_a_new_session():
    events = [Connected(0.0, A, False, "websocket"), Flushed(1.0, (1,), 100, 1, (100,), "websocket", A),
              emitted(1, 1.0), Written(1.0, (1,)),
              Disconnected(1.05, A, "transport close", "websocket connection closed", 1009, "", None, True),
              Connected(2.25, B, False, "websocket")]
    v = view(events)
    assert v.disconnect is not None and v.disconnect.close_code == 1009
    assert (v.disconnect_after_s, v.reconnect_s, v.next_sid, v.new_session, v.recovered) == (0.05, 1.2, B, True, False)
    assert next_says(v) == ("disconnected 0.05 s later: transport close (close 1009); "
                            f"reconnected after 1.2 s as a new session ({B})")


def test_a_recovered_session_keeps_its_id():
    events = [Connected(0.0, A, False, "websocket"), Flushed(1.0, (1,), 100, 1, (100,), "websocket", A),
              emitted(1, 1.0), Disconnected(1.01, A, "transport close", "", 1009, "", None, True),
              Connected(1.9, A, True, "websocket")]
    v = view(events)
    assert (v.new_session, v.recovered) == (False, True)
    assert "as the same session (socket.recovered: true)" in next_says(v)


def test_buffered_while_down_then_sent_on_the_next_session():
    events = [Disconnected(0.5, A, "transport close", "", 1009, "", None, True),
              emitted(2, 0.6, connected=False, buffered=True), Connected(1.7, B, False, "polling"),
              Flushed(1.7, (2,), 230, 2, (100,), "polling", B), Written(1.72, (2,), 200)]
    v = view(events, seq=2)
    assert (v.buffered, v.connected, v.sent, v.sent_sid, v.body_bytes, v.packets_in_body) == (True, False, Sent.WRITTEN, B, 230, 2)
    assert v.disconnect is None  # it went out after the reconnect, on a session that did not end
    assert worker_says(v) == "emitted, connected: false; buffered by the client"


def test_still_buffered_when_the_run_ended_is_pending():
    events = [Disconnected(0.5, A, "transport error", "xhr post error", None, "", 413, True),
              emitted(3, 0.6, connected=False, buffered=True)]
    v = view(events, seq=3, pending=True)
    assert v.sent is Sent.PENDING and v.body_bytes is None and v.bytes_agree is None
    assert "still in the client's send buffer" in sent_says(v)


def test_discarded_with_its_session_and_the_in_flight_post():
    events = [Connected(0.0, A, False, "polling"), Flushed(1.0, (1,), 100, 1, (100,), "polling", A), emitted(1, 1.0),
              emitted(2, 1.001), Disconnected(1.02, A, "server disconnect", "", None, "", None, None),
              GaveUp(1.02, "__disconnect_final"), Dropped(1.03, (1,), (2,), None, "Server disconnected"),
              Replaced(1.1, "the library gave up"),
              Connected(1.2, B, False, "polling")]
    first, second = view(events, seq=1), view(events, seq=2)
    assert (first.sent, first.write_error, first.gave_up, first.replaced) == (Sent.IN_FLIGHT, "Server disconnected", True, True)
    assert "the write failed: Server disconnected" in sent_says(first)
    assert "did not reconnect by itself (the library gave up); imdiag replaced it" in next_says(first)
    assert second.sent is Sent.DROPPED and second.frame_bytes is None


def test_emit_raised():
    events = [GaveUp(0.5, "__disconnect_final"), emitted(4, 0.7, connected=False, error="BadNamespaceError: /worker is not a connected namespace.")]
    v = view(events, seq=4)
    assert (v.emit, v.sent, v.disconnect) == ("raised", Sent.RAISED, None)
    assert worker_says(v) == "emit() raised BadNamespaceError: /worker is not a connected namespace."


def test_the_library_bytes_are_checked_against_the_model():
    events = [Connected(0.0, A, False, "websocket"), Flushed(0.1, (1,), 101, 1, (101,), "websocket", A),
              emitted(1, 0.1), Written(0.1, (1,))]
    v = view(events)
    assert v.bytes_agree is False
    assert "the client's packet is 101 B, imdiag's wire model says 100 B" in sent_says(v)


def test_a_message_never_emitted_is_an_error():
    with pytest.raises(ValueError, match="never emitted"):
        view([], seq=9)


@pytest.mark.parametrize(
    ("obs", "cause", "words"),
    [
        (Observation(body_bytes=0, emit_error="BadNamespaceError: x"), Cause.EMIT_ERROR, "emit() raised BadNamespaceError"),
        (Observation(body_bytes=0, client_kept="dropped", close_code=1009), Cause.CONNECTION_CLOSED,
         "the client discarded it: the server closed the websocket with 1009"),
        (Observation(body_bytes=0, client_kept="pending"), Cause.UNKNOWN, "still in the client's send buffer"),
    ],
)
def test_messages_a_library_never_wrote(obs, cause, words):
    verdict = judge(obs)
    assert (verdict.delivered, verdict.cause) == (False, cause)
    assert words in verdict.evidence


def test_the_python_master_compares_inflated_websocket_messages_with_its_limit():
    plain, compressed = rule("python", Transport.WEBSOCKET), rule("python", Transport.WEBSOCKET, compressed=True)
    assert [plain.predicts_delivered(n, 100) for n in (99, 100, 101)] == [True, False, False]
    assert [compressed.predicts_delivered(n, 100) for n in (99, 100, 101)] == [True, True, False]
    # A server without a rule of its own for compressed frames (engine.io never negotiates them).
    assert rule("node", Transport.WEBSOCKET, compressed=True) is rule("node", Transport.WEBSOCKET)
