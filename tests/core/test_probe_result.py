"""A probe's trials without a server: only size signals refuse, only answers accept; the explanations."""

from imdiag.core.model import Ack, Barrier, Observation
from imdiag.core.probe_explain import explain_failure, fit, fit_amount, unit_line
from imdiag.core.probe_result import Outcome, SizedMessage, TransportLimit, Trial, trial
from imdiag.core.wire import Encoder, LimitUnit, Transport

WS, POLLING = Transport.WEBSOCKET, Transport.POLLING


def judged(size: int, transport: Transport, **seen: object) -> Trial:
    return trial(size, transport, Observation(body_bytes=size, **seen))  # type: ignore[arg-type]


def test_only_a_size_signal_refuses_and_only_an_answer_accepts():
    cases = [
        (judged(100, WS, close_code=1009, closed=True, barrier=Barrier.CLOSED), Outcome.REJECTED),
        (judged(100, POLLING, http_status=413, barrier=Barrier.CLOSED), Outcome.REJECTED),
        (judged(100, POLLING, http_status=400, http_body='"Bad Request"', advertised_max_payload=99), Outcome.REJECTED),
        (judged(100, WS, barrier=Barrier.PARSED, barrier_answer="CONNECT_ERROR 'x'"), Outcome.ACCEPTED),
        (judged(100, WS, close_code=1000, closed=True, barrier=Barrier.CLOSED), Outcome.INCONCLUSIVE),
        (judged(100, WS, close_error="ConnectionResetError", closed=True, barrier=Barrier.CLOSED), Outcome.INCONCLUSIVE),
        (judged(100, POLLING, http_status=500), Outcome.INCONCLUSIVE),
        # A 400 that is not over the advertised maxPayload is no size signal (a proxy, a lost session...).
        (judged(100, POLLING, http_status=400, http_body="x", advertised_max_payload=1000), Outcome.INCONCLUSIVE),
        (judged(100, WS, barrier=Barrier.TIMEOUT), Outcome.INCONCLUSIVE),
        (judged(100, WS, connect_error="cannot reach"), Outcome.INCONCLUSIVE),
    ]
    for result, outcome in cases:
        assert result.outcome is outcome, result
    # With --ack, an answered barrier without the ack is accepted by the transport but marked lost.
    lost = judged(100, POLLING, http_status=200, barrier=Barrier.PARSED, ack=Ack.MISSING)
    assert lost.outcome is Outcome.ACCEPTED and lost.lost and "did not acknowledge" in lost.evidence
    acked = judged(100, POLLING, http_status=200, barrier=Barrier.PARSED, ack=Ack.RECEIVED)
    assert acked.outcome is Outcome.ACCEPTED and not acked.lost


def test_a_stopped_search_is_explained_not_guessed():
    silent = judged(5000, WS, barrier=Barrier.TIMEOUT)
    limit = TransportLimit(WS, 80, 16 * 2**20, (silent, silent), 4000, None,
                           stopped=f"the 5,000 B trial was inconclusive twice: {silent.evidence}")
    line = explain_failure(limit, ack=False)
    assert "could not be measured" in line and "4,000 B was accepted" in line and "inconclusive twice" in line


def taken(size: int, transport: Transport, ack: Ack) -> Trial:
    status = 200 if transport is POLLING else None
    return judged(size, transport, http_status=status, barrier=Barrier.PARSED, ack=ack)


def test_ack_explanations_say_lost_only_when_the_master_acknowledges_at_all():
    # Nothing refused up to --max-bytes, the largest probe unacknowledged, the smallest acknowledged: lost.
    lost = TransportLimit(POLLING, 80, 200_000, (taken(200_000, POLLING, Ack.MISSING),), 200_000, None,
                          ack_control=taken(80, POLLING, Ack.RECEIVED))
    line = explain_failure(lost, ack=True)
    assert lost.lost and "1 accepted probe(s), from 200,000 B up" in line and "lost them" in line
    assert "decode errors" in line  # the python-socketio polling hint, on polling only
    # Not even the smallest probe acknowledged: the master does not ack; nothing is called lost.
    deaf = TransportLimit(WS, 80, 200_000, (taken(200_000, WS, Ack.MISSING),), 200_000, None,
                          ack_control=taken(80, WS, Ack.MISSING))
    line = explain_failure(deaf, ack=True)
    assert deaf.lost == () and len(deaf.unacknowledged) == 1
    assert "acknowledged no probe, not even the smallest (80 B)" in line and "lost" not in line
    # A lost websocket probe gets no polling hint.
    ws_lost = TransportLimit(WS, 80, 200_000, (taken(200_000, WS, Ack.MISSING),), 200_000, None,
                             ack_control=taken(80, WS, Ack.RECEIVED))
    assert "decode errors" not in explain_failure(ws_lost, ack=True)
    # No ack, and the smallest probe never got through on a new connection: unknown, not "never acks".
    shut_out = judged(80, WS, close_code=1008, closed=True, barrier=Barrier.CLOSED, ack=Ack.MISSING)
    unknown = TransportLimit(WS, 80, 200_000, (taken(200_000, WS, Ack.MISSING),), 200_000, None, ack_control=shut_out)
    assert "could not be checked" in explain_failure(unknown, ack=True) and unknown.lost == ()
    # Nothing over --max-bytes was sent: agreement with maxPayload is not claimed either way.
    assert lost.agrees_with(200_000) is None and lost.agrees_with(150_000) is False


def test_what_the_limit_counts_is_said_with_what_follows_and_messages_fit_in_that_unit():
    accepted = judged(10_000, WS, barrier=Barrier.PARSED)
    refused = judged(10_001, WS, close_code=1009, closed=True, barrier=Barrier.CLOSED)
    # The unit trials: 10,000 characters of Chinese text (30,000 B) pass, 10,001 characters do not.
    chinese = (judged(30_000, WS, barrier=Barrier.PARSED), judged(30_003, WS, close_code=1000, closed=True))
    ws = TransportLimit(WS, 80, 16 * 2**20, (accepted, refused), 10_000, 10_001, limit_unit=LimitUnit.CHARACTERS,
                        unit_trials=chinese)
    polling = TransportLimit(POLLING, 80, 16 * 2**20, (accepted, refused), 10_000, 10_001, limit_unit=LimitUnit.BYTES)
    assert unit_line([ws, polling]) == (
        "this master counts characters on websocket, not bytes: Chinese text fits up to 3x more bytes than ASCII, "
        "emoji 4x; polling counts bytes, so a client that falls back to polling loses what websocket carried")
    assert unit_line([polling]) == ""
    # 29,900 B of Chinese text are 9,994 characters: it fits the characters limit, not the bytes one.
    message = SizedMessage(0, "worker:data:sync", "message", "/", Encoder.NODE, 29_900, 29_870, 9_980,
                           frame_chars=9_994)
    on_ws, on_polling = fit(message, ws), fit(message, polling)
    assert (on_ws.fits, on_ws.unit, on_ws.headroom, on_ws.headroom_bytes) == (True, LimitUnit.CHARACTERS, 6, None)
    assert fit_amount(on_ws) == "6 characters left"
    assert (on_polling.fits, on_polling.headroom_bytes) == (False, -19_900)
    assert fit_amount(on_polling) == "over by 19,900 B"
    # Within the characters but larger in bytes than any frame that passed: not known (uvicorn's
    # ws_max_size counts bytes), not guessed.
    emoji = SizedMessage(1, "worker:data:sync", "message", "/", Encoder.NODE, 39_900, 39_870, 19_900, frame_chars=9_990)
    beyond = fit(emoji, ws)
    assert beyond.fits is None and "more than the largest frame that passed (30,000 B)" in beyond.note


def test_no_limit_found_names_the_unit_in_plain_english():
    polling = TransportLimit(POLLING, 80, 200_000, (taken(200_000, POLLING, Ack.NOT_ASKED),), 200_000, None)
    line = explain_failure(polling, ack=False)
    assert "every POST body up to 200,000 B" in line and "larger POST bodies were not tried" in line
    websocket = TransportLimit(WS, 80, 200_000, (taken(200_000, WS, Ack.NOT_ASKED),), 200_000, None)
    assert "larger frames were not tried" in explain_failure(websocket, ack=False)
