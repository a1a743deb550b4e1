"""HTTP/1.1 heads as a relay reads them, and where their bodies end."""

from __future__ import annotations

import gzip

import pytest

from imdiag.core import http1
from imdiag.core.http1 import BadHead, BodyFraming

POST = (b"POST /socket.io/?EIO=4&transport=polling&t=abc&sid=S1 HTTP/1.1\r\nHost: 127.0.0.1:3001\r\n"
        b"Content-Type: text/plain;charset=UTF-8\r\ncontent-length: 12\r\nCookie: io=S1; route=a\r\n\r\n")


def test_a_request_head() -> None:
    request = http1.parse_request(POST)
    assert (request.method, request.path, request.query("sid"), request.query("EIO")) == ("POST", "/socket.io/", "S1", "4")
    assert request.headers.get("Content-Length") == "12" and request.headers.get("cookie") == "io=S1; route=a"
    assert http1.request_framing(request) == BodyFraming(12) and not request.is_upgrade


def test_a_websocket_upgrade() -> None:
    request = http1.parse_request(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n")
    assert request.is_upgrade and http1.request_framing(request) == BodyFraming(0)


@pytest.mark.parametrize(("head", "method", "framing"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "POST", BodyFraming(2)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", BodyFraming(None, chunked=True)),
    (b"HTTP/1.1 200 OK\r\n\r\n", "GET", BodyFraming(None, until_close=True)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", BodyFraming(0)),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "GET", BodyFraming(0)),
    (b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0, 0\r\n\r\n", "POST", BodyFraming(0)),
])
def test_where_a_response_body_ends(head: bytes, method: str, framing: BodyFraming) -> None:
    assert http1.response_framing(http1.parse_response(head), method) == framing


@pytest.mark.parametrize("head", [b"GARBAGE\r\n\r\n", b"GET / HTTP/2\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n"])
def test_bad_request_heads(head: bytes) -> None:
    with pytest.raises(BadHead):
        http1.parse_request(head)


def test_bad_lengths() -> None:
    with pytest.raises(BadHead):
        http1.response_framing(http1.parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"), "GET")
    with pytest.raises(BadHead):
        http1.chunk_size(b"zz\r\n")
    assert http1.chunk_size(b"1A;ext=1\r\n") == 26


def test_only_the_host_line_changes() -> None:
    rewritten = http1.with_host(POST, "master:3000")
    assert rewritten == POST.replace(b"Host: 127.0.0.1:3001", b"Host: master:3000")
    bare = b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"
    assert http1.with_host(bare, "m:1") == b"GET / HTTP/1.1\r\nHost: m:1\r\nAccept: */*\r\n\r\n"


def test_decoded_bodies() -> None:
    body = b'42["message",{"a":1}]' * 100
    assert http1.decode_body(gzip.compress(body), "gzip", 10_000) == body
    assert http1.decode_body(gzip.compress(body), "gzip", 100) is None  # bounded
    assert http1.decode_body(body, "", 10) == body and http1.decode_body(body, "br", 10_000) is None
