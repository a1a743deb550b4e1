"""judge(): each observation kind gives its verdict and cause, with the evidence in words."""

from dataclasses import replace

import pytest

from imdiag.core.judge import judge
from imdiag.core.model import SIZE_CAUSES, Barrier, Cause, HttpAnswer, Observation
from imdiag.core.refusal import Refuser, SizeClose
from imdiag.core.wire import LimitUnit


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
    v = judge(Observation(body_bytes=99, http_status=400, http_body='"Not connected"', advertised_max_payload=100))
    assert (v.cause, v.refused_by) == (Cause.HTTP_ERROR, Refuser.MASTER)


def test_a_400_with_a_body_no_master_writes_is_a_proxy_error_not_a_size_refusal():
    v = judge(Observation(body_bytes=101, http_status=400, http_body="nope", advertised_max_payload=100))
    assert (v.cause, v.refused_by) == (Cause.PROXY_ERROR, Refuser.PROXY)


@pytest.mark.parametrize("body, server", [
    ('{"code":1,"message":"Session ID unknown"}', "nginx/1.22.1"),  # engine.io behind nginx
    ('"Invalid session Zx81"', "Python/3.11 aiohttp/3.14.0"),  # python-engineio
])
@pytest.mark.parametrize("size", [99, 100, 101, 1_000_001])
def test_session_unknown_is_never_a_size_refusal_whatever_the_size(body, server, size):
    v = judge(Observation(body_bytes=size, http_status=400, http_body=body, http_server=server,
                          advertised_max_payload=100))
    assert (v.cause, v.refused_by) == (Cause.SESSION_UNKNOWN, Refuser.MASTER)
    assert "does not know the session" in v.evidence and server in v.evidence
    assert v.cause not in SIZE_CAUSES


def test_a_proxy_413_page_is_a_size_refusal_by_the_proxy():
    page = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>" + "x" * 300
    v = judge(Observation(body_bytes=102_401, http_status=413, http_body=page, http_server="nginx/1.22.1",
                          advertised_max_payload=1_000_000))
    assert (v.cause, v.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.PROXY)
    assert "Server nginx/1.22.1" in v.evidence and "a proxy (nginx/1.22.1, HTTP 413)" in v.evidence
    assert "<html> <head><title>413 Request Entity Too Large</title></head> <body>xxx" in v.evidence
    assert "x" * 300 not in v.evidence  # 80 characters of the body, not the page


def test_engineio_empty_413_through_a_proxy_is_the_masters():
    v = judge(Observation(body_bytes=1_000_001, http_status=413, http_server="nginx/1.22.1",
                          advertised_max_payload=1_000_000))
    assert (v.cause, v.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.MASTER)
    assert "via nginx/1.22.1" in v.evidence


def test_a_gateway_502_is_a_proxy_error():
    v = judge(Observation(body_bytes=10, http_status=502, http_body="<html><title>502 Bad Gateway</title>",
                          http_server="nginx"))
    assert (v.cause, v.refused_by) == (Cause.PROXY_ERROR, Refuser.PROXY)


def test_the_next_get_on_another_node_is_session_unknown():
    v = judge(Observation(body_bytes=500, http_status=200, closed=True, barrier=Barrier.CLOSED,
                          ended_by=HttpAnswer("GET", 400, "nginx/1.22.1", '{"code":1,"message":"Session ID unknown"}')))
    assert (v.cause, v.refused_by) == (Cause.SESSION_UNKNOWN, Refuser.MASTER)
    assert "the GET reached a master node that does not know the session" in v.evidence


def test_a_session_the_master_ended_for_its_size_is_not_a_path_problem():
    """Node's master answers a POST over its limit with 413 and drops the connection; a client still
    writing the body may get a reset instead of the 413, then "Session ID unknown" on the next POST.
    The master's ledger says it ended that session itself, and why: the size, not the path."""
    unknown = HttpAnswer("barrier POST", 400, "", '{"code":1,"message":"Session ID unknown"}')
    seen = Observation(body_bytes=10_000_000, written_bytes=3_932_160, advertised_max_payload=1_000_000,
                       send_error="ClientOSError: [Errno 104] Connection reset by peer", closed=True,
                       barrier=Barrier.CLOSED, ended_by=unknown, disconnect_reason="transport error",
                       disconnect_cause="payload too large")
    v = judge(seen)
    assert (v.delivered, v.cause, v.refused_by) == (False, Cause.OVERSIZE_CLOSE, Refuser.MASTER)
    assert "the master had ended this session itself: transport error (payload too large)" in v.evidence
    assert "over the advertised maxPayload 1,000,000 B" in v.evidence
    # A body within maxPayload was not the one refused: lost with the session, nothing more.
    assert judge(replace(seen, body_bytes=900_000, written_bytes=900_000)).cause is Cause.SESSION_UNKNOWN
    assert "Connection reset by peer" in v.evidence and "sticky" not in v.evidence
    # No word from the master of a size limit (its disconnect may be the client's own close,
    # sent after the 400 through a proxy to the node that knew the session): the path, as before.
    for reason, cause in (("client namespace disconnect", ""), ("transport close", ""), ("", "")):
        assert judge(replace(seen, disconnect_reason=reason, disconnect_cause=cause)).cause is Cause.SESSION_UNKNOWN


def test_a_library_that_saw_only_the_close_gets_the_masters_word_for_the_size():
    """socket.io-client over polling reports "transport close" for the 413 it never read; the Node
    master's ledger says "payload too large" for that session."""
    closed = Observation(body_bytes=1_313_003, advertised_max_payload=1_000_000, closed=True, barrier=Barrier.CLOSED,
                         close_error="the node client reported disconnect 'transport close'",
                         disconnect_reason="transport error", disconnect_cause="payload too large")
    v = judge(closed)
    assert (v.cause, v.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.MASTER)
    assert "transport error (payload too large)" in v.evidence
    # Batched with others into one body over the limit, while it alone fits.
    batched = judge(replace(closed, packets_in_body=3, message_bytes=248_895))
    assert batched.cause is Cause.BATCHED_OVERSIZE and "batched with 2 other packet(s)" in batched.evidence
    # Lost with that session in a body of its own within the limit: a close, not its size.
    assert judge(replace(closed, body_bytes=126)).cause is Cause.CONNECTION_CLOSED
    assert judge(replace(closed, disconnect_cause="")).cause is Cause.CONNECTION_CLOSED


def test_a_refused_namespace_connect_on_another_node_is_session_unknown():
    v = judge(Observation(body_bytes=500, connect_error="the CONNECT of namespace '/worker' was not taken",
                          ended_by=HttpAnswer("namespace CONNECT POST", 400, "nginx/1.22.1",
                                              '{"code":1,"message":"Session ID unknown"}')))
    assert v.cause is Cause.SESSION_UNKNOWN


@pytest.mark.parametrize("body, master_said", [
    ('{"code":3,"message":"Bad request"}', True),  # engine.io: a handshake without its Upgrade header
    ('"Invalid websocket upgrade"', True),  # python-engineio
    ("<html><body>403 Forbidden</body></html>", False),  # a proxy that refuses upgrades itself
])
def test_a_refused_websocket_handshake_where_polling_offers_it_is_upgrade_blocked(body, master_said):
    answer = HttpAnswer("websocket handshake", 400, "nginx/1.22.1", body)
    v = judge(Observation(body_bytes=85, connect_error="websocket handshake refused", ended_by=answer,
                          upgrade_offered=True))
    assert v.cause is Cause.UPGRADE_BLOCKED and "a proxy without Upgrade/Connection headers?" in v.evidence
    assert ("the Upgrade header did not reach it" in v.evidence) is master_said
    # Without a working polling handshake that offers the upgrade, it is not called blocked.
    v = judge(Observation(body_bytes=85, connect_error="websocket handshake refused", ended_by=answer))
    assert v.cause is not Cause.UPGRADE_BLOCKED


def test_a_1009_under_the_advertised_max_payload_names_no_refuser():
    v = judge(Observation(body_bytes=50_000, close_code=1009, closed=True, advertised_max_payload=1_000_000))
    assert (v.cause, v.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.UNKNOWN)
    v = judge(Observation(body_bytes=1_000_001, close_code=1009, closed=True, advertised_max_payload=1_000_000))
    assert v.refused_by is Refuser.MASTER


def test_batched_oversize_when_the_message_alone_fits():
    # engine.io's 413 refuses the whole body: the message that fits alone was refused for its company.
    v = judge(Observation(body_bytes=120, packets_in_body=3, message_bytes=90, http_status=413, advertised_max_payload=100))
    assert v.cause is Cause.BATCHED_OVERSIZE and "this message alone is 90 B" in v.evidence
    # A 413 below maxPayload (a proxy's body limit): the body was too large for that limit, batched or not.
    v = judge(Observation(body_bytes=90, packets_in_body=3, message_bytes=30, http_status=413, advertised_max_payload=100))
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


ASGI_CLOSE = SizeClose(1000, LimitUnit.CHARACTERS, "python-engineio under ASGI")


def test_a_normal_close_is_a_size_refusal_only_where_established_and_over_max_payload():
    closed = Observation(body_bytes=30_100, body_chars=10_062, close_code=1000, closed=True,
                         advertised_max_payload=10_000)
    # Without the server's rule (or the probe's boundary), a close 1000 is no size signal.
    assert judge(closed).cause is Cause.CONNECTION_CLOSED
    v = judge(replace(closed, size_close=ASGI_CLOSE))
    assert (v.cause, v.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.MASTER)
    assert "closed the websocket with 1000 (Normal Closure)" in v.evidence
    assert "no 1009: python-engineio under ASGI refuses so, 10,062 characters > maxPayload 10,000" in v.evidence
    # Within maxPayload in the server's unit (29,900 B are 9,994 characters), or another code: no refusal.
    within = replace(closed, body_bytes=29_900, body_chars=9_994, size_close=ASGI_CLOSE)
    assert judge(within).cause is Cause.CONNECTION_CLOSED
    assert judge(replace(closed, close_code=1001, size_close=ASGI_CLOSE)).cause is Cause.CONNECTION_CLOSED
    assert judge(replace(closed, advertised_max_payload=None, size_close=ASGI_CLOSE)).cause is Cause.CONNECTION_CLOSED


def test_uvicorns_1009_is_refused_by_the_masters_web_server():
    v = judge(Observation(body_bytes=16_777_217, close_code=1009, closed=True, advertised_max_payload=20_000_000,
                          close_reason="Message exceeds the maximum size (16777216 bytes)"))
    assert (v.cause, v.refused_by) == (Cause.OVERSIZE_CLOSE, Refuser.WEB_SERVER)
    assert "the master's web server (uvicorn)" in v.evidence and "16,777,216 bytes" in v.evidence
