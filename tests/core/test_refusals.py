"""Who refused: told from the refusal itself (status, Server header, body), as masters and proxies answer."""

from __future__ import annotations

import pytest

from imdiag.core.refusals import MASTER, PROXY, UNKNOWN, refused_by

NGINX_413 = ("<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
             "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n")


@pytest.mark.parametrize(("status", "server", "body", "who", "why"), [
    (413, "", "", MASTER, "empty 413"),  # engine.io: res.writeHead(413).end()
    (413, "nginx/1.22.1", "", MASTER, "empty 413"),  # the same, passed on by nginx (which sets Server)
    (400, "", '{"code":1,"message":"Session ID unknown"}', MASTER, "engine.io error 1 (Session ID unknown)"),
    (400, "Python/3.11 aiohttp/3.14.5", '"Bad Request"', MASTER, "python-engineio error 'Bad Request'"),
    (413, "nginx/1.22.1", NGINX_413, PROXY, "an HTML page"),
    (502, "", "upstream connect error", PROXY, "a gateway status"),
    (403, "envoy", "denied", PROXY, "names envoy"),
    (500, "", "oops", UNKNOWN, "HTTP 500"),
])
def test_who_answered_a_refused_post(status: int, server: str, body: str, who: str, why: str) -> None:
    refuser = refused_by(status=status, server=server, body=body)
    assert refuser.who == who and why in refuser.evidence
    assert f"HTTP {status}" in refuser.evidence


def test_a_close_frame_comes_from_the_websocket_end() -> None:
    refuser = refused_by(close_code=1009)
    assert refuser.who == MASTER and "1009" in refuser.evidence
