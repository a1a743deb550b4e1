"""Who refused: the master, a proxy, or unknown, from real answers of real servers and proxies."""

import pytest

from imdiag.core.refusal import (
    ENGINEIO_ERRORS,
    Refuser,
    SizeClose,
    close_refusal,
    http_refusal,
    web_server_limit,
)
from imdiag.core.wire import LimitUnit

NGINX_413 = ("<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 "
             "Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n")
NGINX_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             "</center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n")
HAPROXY_400 = "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
ENVOY_503 = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"


@pytest.mark.parametrize("code", sorted(ENGINEIO_ERRORS))
def test_every_engineio_error_body_is_the_masters(code):
    body = f'{{"code":{code},"message":"{ENGINEIO_ERRORS[code]}"}}'
    refusal = http_refusal(403 if code == 4 else 400, body, "nginx/1.22.1")
    assert (refusal.by, refusal.engineio_code, refusal.message) == (Refuser.MASTER, code, ENGINEIO_ERRORS[code])
    assert refusal.session_unknown is (code == 1)
    assert refusal.bad_upgrade is (code == 3)
    assert "passed on by nginx/1.22.1" in refusal.how


@pytest.mark.parametrize("body, session_unknown, generic", [
    ('"Invalid session AbC"', True, False),
    ('"Bad Request"', False, True),  # also its answer to a POST over max_http_buffer_size
    ('"Invalid websocket upgrade"', False, False),
    ('"Not connected"', False, False),
    ("Method Not Found", False, False),
    ('"Unauthorized"', False, False),
])
def test_python_engineio_answers_are_the_masters(body, session_unknown, generic):
    refusal = http_refusal(400, body, "Python/3.11 aiohttp/3.14.0")
    assert refusal.by is Refuser.MASTER and refusal.how == "python-engineio's answer"
    assert (refusal.session_unknown, refusal.generic) == (session_unknown, generic)


@pytest.mark.parametrize("status, body, server, how", [
    (413, NGINX_413, "nginx/1.22.1", "an HTML page, not an Engine.IO answer"),
    (502, NGINX_502, "nginx/1.22.1", "HTTP 502 from a gateway"),
    (504, "", "", "HTTP 504 from a gateway"),
    (400, HAPROXY_400, "", "an HTML page, not an Engine.IO answer"),
    (503, ENVOY_503, "envoy", "Server: envoy, not an Engine.IO answer"),
    (403, "", "awselb/2.0", "Server: awselb/2.0, not an Engine.IO answer"),
    (400, "denied by policy", "", "a body that is not an Engine.IO answer"),
])
def test_proxy_answers(status, body, server, how):
    refusal = http_refusal(status, body, server)
    assert (refusal.by, refusal.how) == (Refuser.PROXY, how)
    assert not refusal.session_unknown and not refusal.generic


def test_evidence_is_status_server_and_80_characters_of_the_body():
    refusal = http_refusal(413, NGINX_413, "nginx/1.22.1")
    assert refusal.body == "<html> <head><title>413 Request Entity Too Large</title></head> <body> <center><"
    assert len(refusal.body) == 80
    assert refusal.message == "413 Request Entity Too Large"
    assert refusal.evidence() == f"HTTP 413, Server nginx/1.22.1, body {refusal.body!r}"
    assert refusal.who() == "a proxy (nginx/1.22.1, HTTP 413)"


def test_an_empty_413_is_engineios_and_an_empty_400_is_unknown():
    assert http_refusal(413, "", "nginx/1.22.1").by is Refuser.MASTER
    assert http_refusal(413, "").who() == "the master (HTTP 413)"
    unknown = http_refusal(400, "")
    assert unknown.by is Refuser.UNKNOWN and unknown.generic and unknown.evidence() == "HTTP 400, empty body"


def test_a_close_1009_is_the_masters_only_at_or_over_its_max_payload():
    assert close_refusal(1009, "", 1_000_001, 1_000_000).by is Refuser.MASTER
    assert close_refusal(1009, "", 1_000_000, 1_000_000).by is Refuser.MASTER  # python-socketio's quirk
    assert close_refusal(1009, "", 999_999, 1_000_000).by is Refuser.UNKNOWN
    assert close_refusal(1009, "", 5, None).by is Refuser.UNKNOWN
    assert close_refusal(1011, "", 5, 1).by is Refuser.UNKNOWN


@pytest.mark.parametrize("reason, server, limit", [
    ("Message exceeds the maximum size (16777216 bytes)", "uvicorn", 16_777_216),  # uvicorn's wsproto protocol
    ("frame with 16777217 bytes exceeds limit of 16777216 bytes", "websockets", 16_777_216),  # websockets >= 14
    ("frame after reading 1048576 bytes exceeds limit of 1048576 bytes", "websockets", 1_048_576),
])
def test_a_web_servers_own_close_reason_names_it_and_its_limit(reason, server, limit):
    assert web_server_limit(reason) == (server, limit)
    # Whatever the master advertises: its web server refused before it.
    for advertised in (None, 1_000, 20_000_000):
        refusal = close_refusal(1009, reason, limit + 1, advertised)
        assert (refusal.by, refusal.server) == (Refuser.WEB_SERVER, server)
        assert refusal.party() == f"the master's web server ({server})"
    assert close_refusal(1000, reason, limit + 1, None).by is Refuser.UNKNOWN  # only with a 1009
    assert web_server_limit("Max payload size exceeded") is None


def test_a_normal_close_names_the_master_only_with_its_established_rule():
    rule = SizeClose(1000, LimitUnit.CHARACTERS, "python-engineio under ASGI")
    assert close_refusal(1000, "", 30_100, 10_000).by is Refuser.UNKNOWN
    assert close_refusal(1000, "", 30_100, 10_000, frame_chars=10_062, size_close=rule).by is Refuser.MASTER
    assert close_refusal(1000, "", 29_900, 10_000, frame_chars=9_994, size_close=rule).by is Refuser.UNKNOWN
    assert close_refusal(1000, "", 30_100, 10_000, size_close=rule).by is Refuser.UNKNOWN  # characters unknown
