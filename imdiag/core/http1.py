"""Read HTTP/1.1 message heads as they cross a relay, and say how each body is framed.

Pure: no sockets. A relay forwards a head's bytes as they came (only ``Host`` is rewritten for
the upstream) and needs from it: the method, target and query (the Engine.IO ``sid`` and
``transport``), the status of a response, and where the body ends (``Content-Length``,
``chunked``, or the end of the connection).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

CRLF = b"\r\n"
HEAD_END = b"\r\n\r\n"
SWITCHING_PROTOCOLS = 101


class BadHead(ValueError):
    """Bytes that are not an HTTP/1.x message head."""


@dataclass(frozen=True)
class Headers:
    """Header fields in order, names as sent; lookups ignore case."""

    fields: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        lowered = name.lower()
        values = [v for k, v in self.fields if k.lower() == lowered]
        return ", ".join(values) if values else default

    def has_token(self, name: str, token: str) -> bool:
        """``Connection: keep-alive, Upgrade`` has the token ``upgrade``."""
        return token.lower() in (t.strip().lower() for t in self.get(name).split(","))


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # as sent: path and query
    version: str
    headers: Headers

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def query(self, name: str) -> str | None:
        values = parse_qs(urlsplit(self.target).query, keep_blank_values=True).get(name)
        return values[0] if values else None

    @property
    def is_upgrade(self) -> bool:
        return self.headers.has_token("connection", "upgrade") and self.headers.get("upgrade").lower() == "websocket"


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    version: str
    headers: Headers


@dataclass(frozen=True)
class BodyFraming:
    """How a body ends: ``length`` bytes, chunked, or at the end of the connection."""

    length: int | None = 0
    chunked: bool = False
    until_close: bool = False


def _fields(lines: list[str]) -> Headers:
    fields = []
    for line in lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadHead(f"malformed header line {line[:80]!r}")
        fields.append((name, value.strip()))
    return Headers(tuple(fields))


def _lines(head: bytes) -> list[str]:
    return head.removesuffix(HEAD_END).decode("latin-1").split("\r\n")


def parse_request(head: bytes) -> Request:
    lines = _lines(head)
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadHead(f"not an HTTP/1.x request line: {lines[0][:80]!r}")
    return Request(parts[0], parts[1], parts[2], _fields(lines[1:]))


def parse_response(head: bytes) -> Response:
    lines = _lines(head)
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise BadHead(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    return Response(int(code), reason, version, _fields(lines[1:]))


def _length(headers: Headers) -> int:
    text = headers.get("content-length")
    if "," in text:  # repeated: valid only when every value agrees
        values = {v.strip() for v in text.split(",")}
        text = values.pop() if len(values) == 1 else ""
    if not text.isdigit():
        raise BadHead(f"invalid Content-Length {text!r}")
    return int(text)


def request_framing(request: Request) -> BodyFraming:
    if request.headers.has_token("transfer-encoding", "chunked"):
        return BodyFraming(None, chunked=True)
    if request.headers.get("content-length"):
        return BodyFraming(_length(request.headers))
    return BodyFraming(0)


def response_framing(response: Response, method: str) -> BodyFraming:
    """RFC 9112 section 6.3, as far as a relay of Engine.IO traffic needs it."""
    if method == "HEAD" or response.status < 200 or response.status in (204, 304):
        return BodyFraming(0)
    if response.headers.has_token("transfer-encoding", "chunked"):
        return BodyFraming(None, chunked=True)
    if response.headers.get("content-length"):
        return BodyFraming(_length(response.headers))
    return BodyFraming(None, until_close=True)


def chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (extensions ignored)."""
    text = line.split(b";", 1)[0].strip()
    try:
        return int(text, 16)
    except ValueError:
        raise BadHead(f"invalid chunk size line {line[:40]!r}") from None


_HOST_RE = re.compile(rb"^host:[^\r\n]*\r\n", re.IGNORECASE | re.MULTILINE)


def with_host(head: bytes, authority: str) -> bytes:
    """The same head with its ``Host`` field naming ``authority`` (added when missing)."""
    line = b"Host: " + authority.encode("ascii") + CRLF
    replaced, count = _HOST_RE.subn(lambda _: line, head, count=1)
    if count:
        return replaced
    first_end = head.index(CRLF) + 2
    return head[:first_end] + line + head[first_end:]



def decode_body(body: bytes | None, content_encoding: str, max_bytes: int) -> bytes | None:
    """A response body as the client reads it (python-engineio gzips long polling answers); None when
    it cannot be decoded within ``max_bytes``."""
    encoding = content_encoding.strip().lower()
    if body is None or encoding in ("", "identity"):
        return body
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding)
    if wbits is None:
        return None
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        return None
    return out if len(out) <= max_bytes and not inflater.unconsumed_tail else None
