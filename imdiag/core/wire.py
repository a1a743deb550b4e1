"""Encode Socket.IO messages to the exact bytes that cross the wire, and parse what comes back.

Pure: no sockets, no asyncio. A message ``{type, payload}`` emitted on an event in a namespace
becomes a Socket.IO EVENT packet, wrapped in an Engine.IO MESSAGE packet (``42/ns,7[...]``).
Over websocket that string is the payload of one text frame; over HTTP long-polling it is one
record of the POST body, where records are joined by ``\\x1e``. Servers compare their limit
(``maxHttpBufferSize``) against the frame payload or the whole POST body, in UTF-8 bytes.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

import orjson

from imdiag.core.errors import EncodeError

RECORD_SEPARATOR = "\x1e"

# Engine.IO v4 packet types (single ASCII digit prefix).
EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP = "0123456"
# Socket.IO v5 packet types, carried inside an Engine.IO MESSAGE.
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR, SIO_BINARY_EVENT, SIO_BINARY_ACK = "0123456"


class Encoder(str, enum.Enum):
    """Which JSON encoder the sender uses; they differ by up to 2x on non-ASCII text."""

    NODE = "node"  # JSON.stringify: compact, raw UTF-8
    PYTHON = "python"  # python-socketio's json.dumps: compact, non-ASCII as \\uXXXX


class Transport(str, enum.Enum):
    WEBSOCKET = "websocket"
    POLLING = "polling"
    # A client library's own choice: polling first, then the websocket upgrade. A lane setting for
    # the real clients, never a wire transport: each message's own transport is in its client view.
    DEFAULT = "default"


WIRE_TRANSPORTS = (Transport.WEBSOCKET, Transport.POLLING)


class LimitUnit(str, enum.Enum):
    """What a server's limit counts: the UTF-8 bytes of a frame, or its characters."""

    BYTES = "bytes"
    # Unicode code points, Python's len() of the decoded str: a CJK character is 1 (3 bytes), an
    # emoji 1 (4 bytes; JS .length says 2).
    CHARACTERS = "characters"


# --- JSON encoders -------------------------------------------------------------------------

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_MAX_SAFE_INTEGER = 2**53 - 1
_ARRAY_INDEX_MAX = 2**32 - 2


def js_number(value: float) -> str:
    """Format a float as JavaScript's ``Number.prototype.toString`` does (inside JSON)."""
    if math.isnan(value) or math.isinf(value):
        return "null"  # JSON.stringify(NaN) === "null": silently loses the value
    if value == 0:
        return "0"
    # repr() is the shortest round-tripping form, as in JS; only the layout differs.
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    # value = 0.DIGITS * 10**n, the n of ECMA-262 Number::toString
    n = exponent + len("".join(map(str, digit_tuple)))
    k = len(digits)
    prefix = "-" if sign else ""
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"
    return prefix + body


def _js_string(text: str) -> str:
    encoded = encode_basestring(text)
    if _SURROGATE_RE.search(encoded) is None:
        return encoded
    # A Python str may hold surrogate code points. Paired ones are one character in JS;
    # lone ones are escaped by JSON.stringify (ES2019 well-formed stringify).
    joined = encoded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", joined)


def _is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _ARRAY_INDEX_MAX


def _js_stringify(value: Any, out: list[str], seen: set[int]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_js_string(value))
    elif isinstance(value, int):
        out.append(str(value) if abs(value) <= _MAX_SAFE_INTEGER else js_number(float(value)))
    elif isinstance(value, float):
        out.append(js_number(value))
    elif isinstance(value, (list, tuple)):
        if id(value) in seen:
            raise EncodeError("cannot encode: circular structure (JSON.stringify throws TypeError)")
        seen.add(id(value))
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _js_stringify(item, out, seen)
        out.append("]")
        seen.discard(id(value))
    elif isinstance(value, dict):
        if id(value) in seen:
            raise EncodeError("cannot encode: circular structure (JSON.stringify throws TypeError)")
        seen.add(id(value))
        keys = [str(k) for k in value]
        items = list(zip(keys, value.values()))
        if any(_is_array_index(k) for k in keys):
            # JS objects list integer-like keys first, ascending, then the rest in order.
            items = sorted((kv for kv in items if _is_array_index(kv[0])), key=lambda kv: int(kv[0]))
            items += [kv for kv in zip(keys, value.values()) if not _is_array_index(kv[0])]
        out.append("{")
        for i, (key, item) in enumerate(items):
            if i:
                out.append(",")
            out.append(_js_string(key))
            out.append(":")
            _js_stringify(item, out, seen)
        out.append("}")
        seen.discard(id(value))
    else:
        raise EncodeError(f"cannot encode a value of type {type(value).__name__} as JSON")


# Output of json.dumps(ensure_ascii=False) that may differ from JSON.stringify: float layout,
# integers past 2**53 (number tokens follow ':', ',' or '[' in compact JSON), surrogate code points, integer-like object keys (JS sorts them first).
# A false positive only costs the slow, exact path.
_NOT_PLAIN_RE = re.compile(r'[\ud800-\udfff]|(?:^|[:,\[])-?\d+[.eE]|(?:^|[:,\[])-?\d{16}|[{,]"\d+":')


def encode_json(value: Any, encoder: Encoder) -> str:
    """Serialize ``value`` exactly as the sender's JSON encoder would."""
    if encoder is Encoder.PYTHON:
        # What python-socketio's Packet.encode() does with its default json module.
        try:
            return json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"cannot encode with python's json.dumps: {exc}") from None
    try:
        # Fast path in C; exact whenever the output holds none of the patterns above.
        fast = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        fast = None
    if fast is not None and _NOT_PLAIN_RE.search(fast) is None:
        return fast
    return js_stringify(value)


def js_stringify(value: Any) -> str:
    """JSON.stringify(value), computed in pure Python (the reference for ``encode_json``)."""
    out: list[str] = []
    _js_stringify(value, out, set())
    return "".join(out)


def js_length(text: str) -> int:
    """``text.length`` in JavaScript: UTF-16 code units, not bytes."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))
_NOT_4_BYTE_LEAD = bytes(b for b in range(256) if not 0xF0 <= b <= 0xF7)


def code_points(data: bytes) -> int:
    """Characters (Unicode code points, Python's ``len()``) of the UTF-8 text ``data``, without
    decoding: every byte but the continuation bytes starts one."""
    if data.isascii():
        return len(data)
    return len(data.translate(None, _UTF8_CONTINUATION))


def js_length_utf8(data: bytes) -> int:
    """``.length`` in JavaScript of the string whose UTF-8 bytes are ``data``, without decoding:
    one code unit per character, two for each 4-byte character (outside the BMP)."""
    if data.isascii():
        return len(data)
    return code_points(data) + len(data.translate(None, _NOT_4_BYTE_LEAD))


# --- Socket.IO / Engine.IO packets ---------------------------------------------------------


def namespace_prefix(namespace: str) -> str:
    """The ``/ns,`` part of a Socket.IO packet; empty for the main namespace."""
    return "" if namespace in ("", "/") else namespace + ","


def event_args(event: str, message_json: str, encoder: Encoder) -> str:
    """The JSON array ``["event",<message>]``, reusing an already encoded message."""
    return "[" + encode_json(event, encoder) + "," + message_json + "]"


def event_packet(args_json: str, namespace: str = "/", ack_id: int | None = None) -> str:
    """An Engine.IO MESSAGE carrying a Socket.IO EVENT: ``42/ns,7["event",...]``."""
    ack = "" if ack_id is None else str(ack_id)
    return EIO_MESSAGE + SIO_EVENT + namespace_prefix(namespace) + ack + args_json


def connect_packet(namespace: str = "/", auth_json: str | None = None) -> str:
    return EIO_MESSAGE + SIO_CONNECT + namespace_prefix(namespace) + (auth_json or "")


def polling_body(packets: Iterable[str]) -> str:
    """An Engine.IO v4 polling payload: text packets joined by the record separator."""
    return RECORD_SEPARATOR.join(packets)


def ws_frame_header_bytes(payload_bytes: int, masked: bool = True) -> int:
    """Bytes of RFC 6455 framing around one unfragmented frame (clients mask: +4)."""
    if payload_bytes < 126:
        size = 2
    elif payload_bytes < 65536:
        size = 4
    else:
        size = 10
    return size + (4 if masked else 0)


@dataclass(frozen=True)
class WireSize:
    """The sizes of one message, by the figures people quote and the one servers check."""

    json_bytes: int  # UTF-8 bytes of the encoded message object alone
    js_length: int  # JSON.stringify(message).length: UTF-16 code units
    frame_bytes: int  # websocket frame payload == polling body when sent alone
    frame_chars: int  # the same frame in characters (code points): what a characters limit counts

    @property
    def framing_bytes(self) -> int:
        """Bytes the Engine.IO/Socket.IO framing adds to the JSON (``42/ns,["message",`` ...)."""
        return self.frame_bytes - self.json_bytes


def measure(
    message_json: str,
    *,
    encoder: Encoder,
    event: str = "message",
    namespace: str = "/",
    ack_id: int | None = None,
    node_json: str | None = None,
) -> WireSize:
    """Sizes of a message already encoded with ``encoder``.

    ``node_json`` is the JSON.stringify form (for ``js_length``); it defaults to
    ``message_json`` and must be given when ``encoder`` is not node.
    """
    if node_json is None:
        if encoder is not Encoder.NODE:
            raise ValueError("node_json is required for the JS length of a non-node encoding")
        node_json = message_json
    json_bytes = utf8_length(message_json)
    overhead, overhead_chars = frame_overhead_size(event, namespace, ack_id, encoder)
    return WireSize(json_bytes=json_bytes, js_length=js_length(node_json), frame_bytes=json_bytes + overhead,
                    frame_chars=len(message_json) + overhead_chars)


def frame_parts(event: str, namespace: str, ack_id: int | None, encoder: Encoder) -> tuple[bytes, bytes]:
    """What a frame holds before and after the encoded message: ``42/ns,7["event",`` and ``]``."""
    head = event_packet(event_args(event, "", encoder)[:-1], namespace, ack_id)
    return head.encode(), b"]"


def frame_overhead(event: str, namespace: str, ack_id: int | None, encoder: Encoder) -> int:
    """Bytes a frame adds around the encoded message."""
    return frame_overhead_size(event, namespace, ack_id, encoder)[0]


def frame_overhead_size(event: str, namespace: str, ack_id: int | None, encoder: Encoder) -> tuple[int, int]:
    """Bytes and characters a frame adds around the encoded message."""
    head, tail = frame_parts(event, namespace, ack_id, encoder)
    return len(head) + len(tail), code_points(head) + code_points(tail)


def event_frame(message_json: bytes, *, encoder: Encoder, event: str = "message", namespace: str = "/",
                ack_id: int | None = None) -> bytes:
    """The exact bytes of one websocket frame payload / one polling record for a message."""
    head, tail = frame_parts(event, namespace, ack_id, encoder)
    return b"".join((head, message_json, tail))


@dataclass(frozen=True)
class Streamed:
    """A frame made piece by piece as it is written: its exact size, and its bytes in order.

    A 16 MB frame that the server refuses at its header is then never made whole: only the
    pieces written before the answer are. ``pieces()`` starts from the first byte each call.
    """

    size: int
    pieces: Callable[[], Iterable[bytes]]
    chars: int | None = None  # its characters (code points), when the maker knows them


Packet = bytes | Streamed  # one websocket frame payload / one polling record


def packet_size(packet: Packet) -> int:
    return packet.size if isinstance(packet, Streamed) else len(packet)


def packet_chars(packet: Packet) -> int | None:
    """Characters (code points) of a packet; None for a streamed one whose maker did not say."""
    return packet.chars if isinstance(packet, Streamed) else code_points(packet)


def packet_pieces(packet: Packet) -> Iterable[bytes]:
    return packet.pieces() if isinstance(packet, Streamed) else (packet,)


def streamed_event_frame(json_bytes: int, json_pieces: Callable[[], Iterable[bytes]], *, encoder: Encoder,
                         event: str = "message", namespace: str = "/", ack_id: int | None = None,
                         frame_chars: int | None = None) -> Streamed:
    """``event_frame()`` of a message given as pieces of ``json_bytes`` bytes in all; ``frame_chars``:
    the frame's characters, when the caller knows them (``WireSize.frame_chars``)."""
    head, tail = frame_parts(event, namespace, ack_id, encoder)

    def pieces() -> Iterator[bytes]:
        yield head
        yield from json_pieces()
        yield tail

    return Streamed(len(head) + json_bytes + len(tail), pieces, frame_chars)


# --- Parsing what the server sends ---------------------------------------------------------


@dataclass(frozen=True)
class OpenInfo:
    """The Engine.IO handshake (``0{...}``): what the server advertises."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval_ms: int
    ping_timeout_ms: int
    max_payload: int | None


def parse_open(packet: str) -> OpenInfo:
    """Parse an Engine.IO v4 OPEN packet; ValueError names what is wrong with it."""
    if not packet.startswith(EIO_OPEN):
        raise ValueError(f"expected an Engine.IO OPEN packet, got {packet[:40]!r}")
    try:
        data = json.loads(packet[1:])
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if "sid" not in data:
            raise ValueError("no sid")
        return OpenInfo(
            sid=str(data["sid"]),
            upgrades=tuple(data.get("upgrades", ())),
            ping_interval_ms=int(data.get("pingInterval", 25000)),
            ping_timeout_ms=int(data.get("pingTimeout", 20000)),
            max_payload=int(data["maxPayload"]) if "maxPayload" in data else None,
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad Engine.IO OPEN packet {packet[:80]!r}: {exc}") from None


@dataclass(frozen=True)
class SioPacket:
    """A Socket.IO packet (text part only; binary attachments travel as packets of their own)."""

    type: str
    namespace: str
    ack_id: int | None
    data: Any
    attachments: int = 0  # BINARY_EVENT / BINARY_ACK: how many attachment packets follow


def _sio_head(body: str) -> tuple[str, int, str, int | None, int]:
    """Type, attachment count, namespace, ack id, and where the JSON data starts:
    ``5`` ``1-`` ``/worker,`` ``7`` ``[...]``."""
    if not body:
        raise ValueError("empty Socket.IO packet")
    kind, pos, attachments = body[0], 1, 0
    if kind in (SIO_BINARY_EVENT, SIO_BINARY_ACK):
        dash = body.find("-", pos)
        if dash < 0 or not body[pos:dash].isdigit():
            raise ValueError(f"a binary packet without its attachment count: {body[:40]!r}")
        attachments, pos = int(body[pos:dash]), dash + 1
    namespace = "/"
    if body.startswith("/", pos):
        comma = body.find(",", pos)
        end = len(body) if comma < 0 else comma
        namespace, pos = body[pos:end], min(end + 1, len(body))
    digits = pos
    while digits < len(body) and body[digits] in "0123456789":
        digits += 1
    ack_id = int(body[pos:digits]) if digits > pos else None
    return kind, attachments, namespace, ack_id, digits


def parse_sio(body: str) -> SioPacket:
    """Parse the Socket.IO part of an Engine.IO MESSAGE (without the leading ``4``)."""
    kind, attachments, namespace, ack_id, start = _sio_head(body)
    rest = body[start:]
    data = json.loads(rest) if rest else None
    return SioPacket(type=kind, namespace=namespace, ack_id=ack_id, data=data, attachments=attachments)


@dataclass(frozen=True)
class EventPacket:
    """A Socket.IO EVENT or BINARY_EVENT as a client sent it, with the figures a tap reports."""

    namespace: str
    event: str | None  # None when the arguments do not start with an event name
    ack_id: int | None
    attachments: int
    message: Any  # the first argument after the event name (None when there is none)
    json_bytes: int  # UTF-8 bytes of that argument's JSON text, as sent
    js_length: int  # JSON.stringify(argument).length: UTF-16 code units
    encoder: Encoder  # which encoder the text looks like (python escapes non-ASCII)

    @property
    def type(self) -> str | None:
        """The message's ``type`` field, when it has one."""
        if isinstance(self.message, dict) and isinstance(self.message.get("type"), str):
            return str(self.message["type"])
        return None


_EVENT_NAME_RE = re.compile(rb'\s*\[\s*"(?:[^"\\]|\\.)*"\s*,\s*')
_ESCAPED_NON_ASCII_RE = re.compile(rb"\\u(?:00[89a-fA-F]|0[1-9a-fA-F]|[1-9a-fA-F])")
# Digits as 0, exponent letters as e, signs as -: one translate, then two substring tests find a
# fraction (0.) or an exponent (0e-) without a regex scan.
_NUMBER_SHAPES = bytes.maketrans(b"123456789E+", b"000000000e-")


def _maybe_not_stringify(text: bytes) -> bool:
    """Whether JSON.stringify might not have written ``text`` as it is: escapes, fractions and
    exponents (a python sender writes 1.0 and 1e-05, JSON.stringify 1 and 0.00001). False positives
    only cost the exact, slower path."""
    if b"\\" in text:
        return True
    dot, sign = b"." in text, b"-" in text or b"+" in text  # single bytes: memchr speed
    if not dot and not sign:
        return False
    shapes = text.translate(_NUMBER_SHAPES)
    return (dot and b"0." in shapes) or (b"0e-" in shapes)


_HEAD_WINDOW = 4096  # a packet's head (type, namespace, ack id) fits in this many bytes


def _loads(data: bytes) -> tuple[Any, bool]:
    """The value, and whether orjson read it (it refuses NaN, Infinity and integers past 64 bits,
    which JSON.stringify writes differently anyway)."""
    try:
        return orjson.loads(data), True
    except orjson.JSONDecodeError:
        return json.loads(data), False


def parse_event(packet: bytes) -> EventPacket:
    """Parse a Socket.IO EVENT/BINARY_EVENT (the bytes after the Engine.IO ``4``); ValueError if
    it is not one. The argument's sizes are taken from the bytes as sent, not re-encoded."""
    prefix = packet[:_HEAD_WINDOW].decode("utf-8", "ignore")
    kind, attachments, namespace, ack_id, start_char = _sio_head(prefix)
    if kind not in (SIO_EVENT, SIO_BINARY_EVENT):
        raise ValueError(f"not a Socket.IO EVENT: {prefix[:40]!r}")
    start = len(prefix[:start_char].encode())
    data = packet[start:]
    args, plain = _loads(data) if data.strip() else (None, True)
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        return EventPacket(namespace, None, ack_id, attachments, args, len(data), 0, Encoder.NODE)
    if len(args) < 2:
        return EventPacket(namespace, args[0], ack_id, attachments, None, 0, 0, Encoder.NODE)
    name = _EVENT_NAME_RE.match(data)
    if name is None:
        raise ValueError(f"unexpected arguments layout: {data[:60]!r}")
    if len(args) == 2:
        text = data[name.end():].rstrip()[:-1].rstrip()
    else:  # several arguments: where the first one ends takes a JSON scanner
        rest = data[name.end():].decode()
        text = rest[:json.JSONDecoder().raw_decode(rest)[1]].encode()
    message = args[1]
    python = b"\\u" in text and text.isascii() and _ESCAPED_NON_ASCII_RE.search(text) is not None
    if not plain or _maybe_not_stringify(text):
        # Escapes or number forms JSON.stringify may write differently: measure what it would write.
        length = js_length(encode_json(message, Encoder.NODE))
    else:
        length = js_length_utf8(text)  # JSON.stringify(JSON.parse(text)) is this very text
    return EventPacket(namespace, args[0], ack_id, attachments, message, len(text), length,
                       Encoder.PYTHON if python else Encoder.NODE)


def split_polling_body(body: str) -> Sequence[str]:
    return body.split(RECORD_SEPARATOR) if body else []


def split_v3_payload(body: str) -> Sequence[str]:
    """An Engine.IO v3 polling body (socket.io 2.x): each packet prefixed by its length in UTF-16
    code units and a colon (``97:0{"sid":...}2:40``); ValueError when ``body`` is not one."""
    packets: list[str] = []
    pos = 0
    while pos < len(body):
        colon = body.find(":", pos)
        if colon <= pos or not body[pos:colon].isdigit():
            raise ValueError(f"not an Engine.IO v3 payload at character {pos}: {body[pos:pos + 40]!r}")
        units, end = int(body[pos:colon]), colon + 1
        while units > 0 and end < len(body):  # a character past U+FFFF is two UTF-16 units
            units -= 2 if ord(body[end]) > 0xFFFF else 1
            end += 1
        if units != 0:
            raise ValueError(f"an Engine.IO v3 packet longer than its payload: {body[pos:pos + 40]!r}")
        packets.append(body[colon + 1:end])
        pos = end
    return packets


def v3_packet(packet: str) -> str:
    """One packet as an Engine.IO v3 polling body: its length in UTF-16 code units, a colon, the packet."""
    return f"{len(packet.encode('utf-16-le')) // 2}:{packet}"
