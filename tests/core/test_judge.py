"""judge(): each observation kind gives its verdict and cause, with the evidence in words."""

from imdiag.core.judge import judge
from imdiag.core.model import Barrier, Cause, Observation


def test_ledger_decides_delivered_even_if_the_connection_closed_after():
    v = judge(Observation(body_bytes=10, ledger_seq=3, ledger_bytes=8, close_code=1009, closed=True))
    assert v.delivered and v.cause is None and "ledger #3" in v.evidence


def test_websocket_1009_is_oversize_close():
    v = judge(Observation(body_bytes=1_000_001, close_code=1009, close_reason="Max payload size exceeded", closed=True))
    assert (v.delivered, v.cause) == (False, Cause.OVERSIZE_CLOSE)
    assert "1,000,001 B frame" in v.evidence and "1009 (Message Too Big)" in v.evidence
    assert "'Max payload size exceeded'" in v.evidence


def test_http_413_is_oversize_close():
    v = judge(Observation(body_bytes=5, http_status=413, http_body="Payload Too Large"))
    assert v.cause is Cause.OVERSIZE_CLOSE and "HTTP 413" in v.evidence


def test_http_400_over_advertised_max_payload_is_oversize():
    v = judge(Observation(body_bytes=101, http_status=400, http_body='"Bad Request"', advertised_max_payload=100,
                          disconnect_reason="server disconnect"))
    assert v.cause is Cause.OVERSIZE_CLOSE and "advertised maxPayload 100 B" in v.evidence


def test_http_400_under_max_payload_is_an_http_error():
    v = judge(Observation(body_bytes=99, http_status=400, http_body="nope", advertised_max_payload=100))
    assert v.cause is Cause.HTTP_ERROR


def test_batched_oversize_when_the_message_alone_fits():
    v = judge(Observation(body_bytes=120, packets_in_body=3, message_bytes=90, http_status=413, advertised_max_payload=100))
    # 413 is an explicit size signal for the whole body; batching is reported with 400-over-limit bodies
    assert v.cause is Cause.OVERSIZE_CLOSE
    v = judge(Observation(body_bytes=120, packets_in_body=3, message_bytes=90, http_status=400, advertised_max_payload=100))
    assert v.cause is Cause.BATCHED_OVERSIZE and "batched with 2 other packet(s)" in v.evidence


def test_decode_error_logged_by_the_master():
    v = judge(Observation(body_bytes=300_000, http_status=200, barrier=Barrier.PASSED,
                          server_errors=("post request handler error: UnicodeDecodeError: boom",)))
    assert v.cause is Cause.SERVER_DECODE_ERROR and "HTTP 200" in v.evidence and "UnicodeDecodeError" in v.evidence


def test_other_close_is_connection_closed():
    v = judge(Observation(body_bytes=10, close_code=1011, closed=True))
    assert v.cause is Cause.CONNECTION_CLOSED and "1011 (Internal Error)" in v.evidence


def test_encode_and_write_errors_are_emit_errors():
    assert judge(Observation(body_bytes=0, encode_error="circular")).cause is Cause.EMIT_ERROR
    assert judge(Observation(body_bytes=10, send_error="reset")).cause is Cause.EMIT_ERROR


def test_timeout_and_unknown_stay_what_they_are():
    assert judge(Observation(body_bytes=10, barrier=Barrier.TIMEOUT)).cause is Cause.TIMEOUT
    v = judge(Observation(body_bytes=10, barrier=Barrier.PASSED))
    assert v.cause is Cause.UNKNOWN and "logged no error" in v.evidence
