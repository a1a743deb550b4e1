"""Read RFC 6455 websocket frames as they cross a relay: headers, masks, close frames, compression.

Pure: no sockets. A relay forwards the frame's bytes unchanged and uses this module only to know
where a frame ends and what its payload says. ``parse_header`` reads a frame header from the
bytes it is given (``FrameHeader.size`` says how many it needs); ``unmask`` undoes the client's
mask on a copy of a payload chunk; ``Inflater`` undoes permessage-deflate (RFC 7692) on a copy of
a message, bounded in size.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
MIN_HEADER = 2  # enough bytes to know how long the whole header is
NO_STATUS = 1005  # RFC 6455: a close frame without a code
ABNORMAL = 1006  # RFC 6455: the connection ended without a close frame (never sent on the wire)


@dataclass(frozen=True)
class FrameHeader:
    fin: bool
    rsv1: bool  # set on the first frame of a compressed message (permessage-deflate)
    opcode: int
    masked: bool
    length: int  # payload bytes
    mask: bytes  # 4 bytes, or b"" when not masked
    size: int  # bytes of the header itself

    @property
    def is_control(self) -> bool:
        return self.opcode >= OP_CLOSE


def header_size(first_two: bytes) -> int:
    """The full header's size, from its first two bytes."""
    length = first_two[1] & 0x7F
    extended = 2 if length == 126 else 8 if length == 127 else 0
    return MIN_HEADER + extended + (4 if first_two[1] & 0x80 else 0)


def parse_header(data: bytes) -> FrameHeader:
    """A frame header from ``data`` (at least ``header_size(data[:2])`` bytes)."""
    b0, b1 = data[0], data[1]
    size = header_size(data[:2])
    if len(data) < size:
        raise ValueError(f"a websocket frame header of {size} bytes, only {len(data)} given")
    length = b1 & 0x7F
    pos = MIN_HEADER
    if length == 126:
        length = int.from_bytes(data[2:4], "big")
        pos = 4
    elif length == 127:
        length = int.from_bytes(data[2:10], "big")
        pos = 10
    masked = bool(b1 & 0x80)
    return FrameHeader(
        fin=bool(b0 & 0x80), rsv1=bool(b0 & 0x40), opcode=b0 & 0x0F, masked=masked, length=length,
        mask=data[pos:pos + 4] if masked else b"", size=size,
    )


_XOR = [bytes(byte ^ key for byte in range(256)) for key in range(256)]  # one translate table per mask byte


def unmask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """``data`` XOR the mask, for a chunk that starts ``offset`` bytes into the payload."""
    if not mask or not data:
        return data
    shift = offset % 4
    key = mask[shift:] + mask[:shift]
    out = bytearray(data)
    # Every 4th byte shares a mask byte: four C-speed translates, no per-byte Python loop.
    for i in range(4):
        out[i::4] = out[i::4].translate(_XOR[key[i]])
    return bytes(out)


def close_header(code: int, reason: str = "") -> bytes:
    """An unmasked close frame (what a server sends): code and reason."""
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")[:123]
    return bytes((0x80 | OP_CLOSE, len(payload))) + payload


def parse_close(payload: bytes) -> tuple[int, str]:
    """A close frame's code (1005 when it carries none) and reason text."""
    if len(payload) < 2:
        return NO_STATUS, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace")


# --- permessage-deflate (RFC 7692) ----------------------------------------------------------


@dataclass(frozen=True)
class Deflate:
    """What the server accepted in ``Sec-WebSocket-Extensions``: compression and context reuse."""

    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False


def parse_extensions(header: str) -> Deflate | None:
    """The negotiated permessage-deflate parameters, or None when the server accepted none."""
    for extension in header.split(","):
        name, *params = (p.strip().lower() for p in extension.split(";"))
        if name == "permessage-deflate":
            keys = {p.partition("=")[0].strip() for p in params}
            return Deflate("client_no_context_takeover" in keys, "server_no_context_takeover" in keys)
    return None


_TAIL = b"\x00\x00\xff\xff"


class Inflater:
    """Inflates one direction's compressed messages, keeping the window between them unless the
    peers agreed not to. Output is bounded: a message inflating past ``max_bytes`` is not decoded."""

    def __init__(self, no_context_takeover: bool):
        self._reset = no_context_takeover
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)

    def inflate(self, payload: bytes, max_bytes: int) -> bytes | None:
        if self._reset:
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            out = self._zlib.decompress(payload + _TAIL, max_bytes + 1)
        except zlib.error:
            return None
        if len(out) > max_bytes or self._zlib.unconsumed_tail:
            # The rest is never read: this direction's later messages cannot be decoded either.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return None
        return out
