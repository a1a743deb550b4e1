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
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Self

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


class HugeInt(float):
    """An integer literal too long for python's int parser (more than ``sys.int_max_str_digits``).

    JavaScript reads any integer of 310 digits or more as Infinity, which ``JSON.stringify``
    writes as ``null``: this float is that Infinity, for the node encoder. python's json.dumps
    refuses to write such an int, so the python encoder refuses it too (``EncodeError``).
    """

    digits: int

    def __new__(cls, literal: str) -> Self:
        value = super().__new__(cls, "-inf" if literal.startswith("-") else "inf")
        value.digits = len(literal.lstrip("-"))
        return value

    def __repr__(self) -> str:
        return f"<integer of {self.digits:,} digits>"


def js_number(value: float) -> str:
    """Format a float as JavaScript's ``Number.prototype.toString`` does (inside JSON)."""
    if math.isnan(value) or math.isinf(value):
        return "null"  # JSON.stringify(NaN) === "null": silently loses the value
    if value == 0:
        return "0"
    # repr() is the shortest round-tripping form, as in JS; only the layout differs.
    sign, digit_tuple, exponent = Decimal(repr(float(value))).as_tuple()
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


def js_integer(value: int) -> str:
    """An integer as JSON.stringify writes the JS number it becomes: exact up to 2**53, then the
    nearest double, and ``null`` past the largest double (Infinity)."""
    if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        return str(value)
    try:
        return js_number(float(value))  # rounds to nearest, ties to even, like JS number parsing
    except OverflowError:
        return "null"


def js_text(text: str) -> str:
    """``text`` as JavaScript holds it: surrogate code points that form a pair are one character."""
    if _SURROGATE_RE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


_UNPRINTABLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")  # 2028/9 end lines too


def printable(text: str) -> str:
    """``text`` as a name to show (a message type in a table, a report, a log): control characters
    and lone surrogates written as JSON's ``\\uXXXX`` escapes, so no terminal, table or file
    encoding breaks on them."""
    if _UNPRINTABLE_RE.search(text) is None:
        return text
    return _UNPRINTABLE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", js_text(text))


def _escape_lone_surrogates(json_text: str) -> str:
    # Lone surrogates only occur inside strings, so the whole text can be fixed at once:
    # paired ones become one character, lone ones are escaped (ES2019 well-formed stringify).
    return _SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", js_text(json_text))


def _js_string(text: str) -> str:
    encoded = encode_basestring(text)
    return encoded if _SURROGATE_RE.search(encoded) is None else _escape_lone_surrogates(encoded)


def _is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _ARRAY_INDEX_MAX


def _scalar_writer(string: Callable[[str], str], integer: Callable[[int], str], number: Callable[[float], str],
                   cannot: str) -> Callable[[Any], str]:
    """One encoder's writer of a scalar: null, true and false are written alike by every encoder."""

    def scalar(value: Any) -> str:
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, str):
            return string(value)
        if isinstance(value, int):
            return integer(value)
        if isinstance(value, float):
            return number(value)
        raise EncodeError(f"{cannot}: a value of type {type(value).__name__}")

    return scalar


_js_scalar = _scalar_writer(_js_string, js_integer, js_number, "cannot encode as JSON")


def _js_items(value: dict[Any, Any], sort_keys: bool) -> list[tuple[str, Any]]:
    items = [(str(k), v) for k, v in value.items()]
    if sort_keys:
        # By code point of the key as JS holds it (the canonical form; Node's digest sorts alike).
        return sorted(items, key=lambda kv: js_text(kv[0]))
    if any(_is_array_index(k) for k, _ in items):
        # JS objects list integer-like keys first, ascending, then the rest in order.
        return (sorted((kv for kv in items if _is_array_index(kv[0])), key=lambda kv: int(kv[0]))
                + [kv for kv in items if not _is_array_index(kv[0])])
    return items


def _py_float(value: float) -> str:
    if isinstance(value, HugeInt):
        raise EncodeError(f"cannot encode with python's json.dumps: an integer of {value.digits:,} digits "
                          f"(python refuses more than {sys.get_int_max_str_digits():,})")
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _py_int(value: int) -> str:
    try:
        return int.__repr__(value)
    except ValueError as exc:  # more digits than python converts
        raise EncodeError(f"cannot encode with python's json.dumps: {exc}") from None


# One value as python's ``json.dumps`` writes it (ensure_ascii, NaN allowed).
_py_scalar = _scalar_writer(encode_basestring_ascii, _py_int, _py_float, "cannot encode with python's json.dumps")


def _py_items(value: dict[Any, Any], sort_keys: bool) -> list[tuple[str, Any]]:
    items = []
    for key, item in value.items():
        if not isinstance(key, str):
            key = _py_scalar(key) if isinstance(key, (bool, int, float)) or key is None else str(key)
        items.append((key, item))
    return items


def _serialize(value: Any, scalar: Callable[[Any], str], key_text: Callable[[str], str],
               items_of: Callable[[dict[Any, Any], bool], list[tuple[str, Any]]], sort_keys: bool) -> str:
    """Compact JSON without recursion: any depth of nesting, one list of pieces."""
    out: list[str] = []
    stack: list[tuple[Iterator[Any], str, int, bool]] = []  # children, closer, id, is an object
    counts: list[int] = []
    open_ids: set[int] = set()
    current = value
    while True:
        if isinstance(current, (list, tuple, dict)):
            if id(current) in open_ids:
                raise EncodeError("cannot encode: circular structure (JSON.stringify throws TypeError)")
            open_ids.add(id(current))
            is_object = isinstance(current, dict)
            out.append("{" if is_object else "[")
            children = iter(items_of(current, sort_keys)) if is_object else iter(current)  # type: ignore[arg-type]
            stack.append((children, "}" if is_object else "]", id(current), is_object))
            counts.append(0)
        else:
            out.append(scalar(current))
        while stack:
            children, closer, ident, is_object = stack[-1]
            child: Any = next(children, _END)
            if child is _END:
                stack.pop()
                counts.pop()
                open_ids.discard(ident)
                out.append(closer)
                continue
            if counts[-1]:
                out.append(",")
            counts[-1] += 1
            if is_object:
                key, current = child
                out.append(key_text(key))
                out.append(":")
            else:
                current = child
            break
        else:
            return "".join(out)


_END = object()

# Output of json.dumps(ensure_ascii=False) that may differ from JSON.stringify: float layout and
# integers past 2**53 (a number token follows ':', ',' or '[' in compact JSON, or is the whole
# document); integer-like object keys (JS lists them first). A false positive only costs the
# slow, exact path. The pattern starts with a character class, not an alternation (^|...), which
# re scans ten times faster.
_NUMBER_RE = re.compile(r"[:,\[]-?[0-9](?:[0-9]*[.eE]|[0-9]{15})")
_INDEX_KEY_RE = re.compile(r'[{,]"[0-9]+":')


def _number_document(text: str | bytes) -> bool:
    """The whole document is a number (the patterns above need a ':', ',' or '[' before one)."""
    return text[:1] in ("-", b"-") or text[:1].isdigit()


def encode_json(value: Any, encoder: Encoder, *, sort_keys: bool = False) -> str:
    """Serialize ``value`` exactly as the sender's JSON encoder would, whatever its depth.

    ``sort_keys`` (node only) gives the canonical form: keys sorted by code point.
    """
    if encoder is Encoder.PYTHON:
        # What python-socketio's Packet.encode() does with its default json module. Non-finite
        # floats (python writes Infinity, NaN) and huge ints go the exact slow way.
        try:
            return json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            pass
        return _serialize(value, _py_scalar, encode_basestring_ascii, _py_items, False)
    try:
        # Fast path in C; exact whenever the output holds none of the patterns above.
        fast = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys)
    except (TypeError, ValueError, RecursionError):
        fast = None
    if fast is not None and _NUMBER_RE.search(fast) is None and not _number_document(fast):
        surrogates = _SURROGATE_RE.search(fast) is not None
        # Sorted keys holding surrogates may sort differently once pairs are joined.
        if not (sort_keys and surrogates) and (sort_keys or _INDEX_KEY_RE.search(fast) is None):
            return _escape_lone_surrogates(fast) if surrogates else fast
    return js_stringify(value, sort_keys=sort_keys)


# orjson's output differs from JSON.stringify's only in float tokens (1.0, -0.0, 1e16) once
# integers past 2**53 are refused (OPT_STRICT_INTEGER), and in where integer-like keys go. Both
# are looked for on a marked copy, a megabyte at a time: every digit 0, '.', 'e' and 'E' a '.',
# the delimiters before a number (':', ',', '[') K; then a float token is K-?0+. and an
# integer-like key (10 digits at most: larger ones are no array index) {"0+": or ,"0+":. A
# literal first character lets re scan at C speed: 3x faster than the patterns on the text.
_FLOAT_MARKS = bytes.maketrans(b"0123456789.eE:,[", b"0000000000...KKK")
_FLOAT_TOKEN_RE = re.compile(rb"K-?0+\.")
_KEY_MARKS = bytes.maketrans(b"0123456789{,:", b"0000000000KKC")
_INDEX_KEY_MARKED_RE = re.compile(rb'K"0{1,10}"C')
_SCAN_CHUNK = 1 << 20
_SCAN_OVERLAP = 32  # longer than any token either pattern looks for


def _found(data: bytes, marks: bytes, pattern: re.Pattern[bytes]) -> bool:
    for start in range(0, len(data), _SCAN_CHUNK):
        if pattern.search(data[max(0, start - _SCAN_OVERLAP) : start + _SCAN_CHUNK].translate(marks)):
            return True
    return False


def encode_json_bytes(value: Any, encoder: Encoder, *, sort_keys: bool = False) -> bytes:
    """``encode_json`` in UTF-8, for messages of any size: the node encoder's common case is
    orjson's output, exact when it holds no float token (and, unsorted, no integer-like key); its
    escapes are JSON.stringify's, and it refuses lone surrogates, ints past 2**53 and deep
    nesting, which take the exact path. No str is built (a 50 MB message of CJK text and emoji
    would be a 200 MB str)."""
    if encoder is Encoder.NODE:
        option = orjson.OPT_STRICT_INTEGER | (orjson.OPT_SORT_KEYS if sort_keys else 0)
        try:
            fast = orjson.dumps(value, option=option)
        except TypeError:
            fast = None
        if fast is not None and not _number_document(fast) and not _found(fast, _FLOAT_MARKS, _FLOAT_TOKEN_RE) \
                and (sort_keys or not _found(fast, _KEY_MARKS, _INDEX_KEY_MARKED_RE)):
            return fast
    return encode_json(value, encoder, sort_keys=sort_keys).encode()


def json_size(value: Any, encoder: Encoder) -> int:
    """UTF-8 bytes of ``encode_json(value, encoder)``, computed the cheap way for each encoder
    (orjson for node; python's output is ASCII, so its length is its bytes)."""
    return len(encode_json_bytes(value, encoder) if encoder is Encoder.NODE else encode_json(value, encoder))


def js_stringify(value: Any, *, sort_keys: bool = False) -> str:
    """JSON.stringify(value), computed in pure Python (the reference for ``encode_json``);
    ``sort_keys``: the canonical form, keys by code point."""
    return _serialize(value, _js_scalar, _js_string, _js_items, sort_keys)


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


def packet_bytes(packet: str, encoder: Encoder) -> bytes:
    """A packet string as the sender's transport writes it: UTF-8. Only raw text (the namespace)
    can hold a lone surrogate here. Node writes it as U+FFFD (``Buffer.from``); python's
    str.encode refuses it (UnicodeEncodeError), so python-socketio cannot send it at all."""
    try:
        return packet.encode()
    except UnicodeEncodeError:
        if encoder is Encoder.PYTHON:
            raise EncodeError("cannot send with python-socketio: the namespace holds a lone surrogate, "
                              "which python cannot encode as UTF-8") from None
        return _SURROGATE_RE.sub("\ufffd", js_text(packet)).encode()


# Socket.IO clients refuse to emit these (socket.io-client: "... is a reserved event name").
RESERVED_EVENTS = ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")


def event_problem(event: str) -> str | None:
    """Why no Socket.IO client can emit ``event`` (the rule of ``--event`` and of a capture's
    records), or None."""
    if not event:
        return "an event name must not be empty"
    if event in RESERVED_EVENTS:
        return "a reserved Socket.IO event name, which clients cannot emit"
    return None


def namespace_problem(namespace: str) -> str | None:
    """Why ``namespace`` cannot be sent as written in a Socket.IO packet (the rule of
    ``--namespace``, a capture's and a gate file's), or None. The namespace is written raw
    before a ','; socket.io-parser and python-socketio end it at the first ',', and
    python-socketio cuts a CONNECT's namespace at '?' (a v2 query): the server would join
    another namespace than the one asked for, and never answer the CONNECT."""
    if not namespace.startswith("/"):
        return "a namespace starts with '/' (e.g. /worker)"
    if "," in namespace:
        return "a Socket.IO packet ends the namespace at the first ',', so it cannot hold one"
    if "?" in namespace:
        return "'?' starts a query in a Socket.IO CONNECT (python-socketio drops the rest), so a namespace cannot hold one"
    return None


def wire_namespace(namespace: str, encoder: Encoder) -> str:
    """The namespace as the server reads it from this sender's frames (the namespace is written
    raw, not as JSON, so nothing escapes a lone surrogate in it); EncodeError if it cannot send it."""
    return packet_bytes(namespace, encoder).decode()


def frame_parts(event: str, namespace: str, ack_id: int | None, encoder: Encoder) -> tuple[bytes, bytes]:
    """What a frame holds before and after the encoded message: ``42/ns,7["event",`` and ``]``."""
    head = event_packet(event_args(event, "", encoder)[:-1], namespace, ack_id)
    return packet_bytes(head, encoder), b"]"


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


def _event_head(packet: bytes) -> tuple[int, str, int | None, int]:
    """An EVENT/BINARY_EVENT's attachment count, namespace and ack id, and the byte where its
    arguments start; ValueError if it is no EVENT."""
    prefix = packet[:_HEAD_WINDOW].decode("utf-8", "ignore")
    kind, attachments, namespace, ack_id, start_char = _sio_head(prefix)
    if kind not in (SIO_EVENT, SIO_BINARY_EVENT):
        raise ValueError(f"not a Socket.IO EVENT: {prefix[:40]!r}")
    return attachments, namespace, ack_id, len(prefix[:start_char].encode())


def _encoder_of(text: bytes) -> Encoder:
    """Which encoder a message's JSON text looks like: python's json escapes all non-ASCII."""
    python = b"\\u" in text and text.isascii() and _ESCAPED_NON_ASCII_RE.search(text) is not None
    return Encoder.PYTHON if python else Encoder.NODE


def parse_event(packet: bytes) -> EventPacket:
    """Parse a Socket.IO EVENT/BINARY_EVENT (the bytes after the Engine.IO ``4``); ValueError if
    it is not one. The argument's sizes are taken from the bytes as sent, not re-encoded."""
    attachments, namespace, ack_id, start = _event_head(packet)
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
    if not plain or _maybe_not_stringify(text):
        # Escapes or number forms JSON.stringify may write differently: measure what it would write.
        length = js_length(encode_json(message, Encoder.NODE))
    else:
        length = js_length_utf8(text)  # JSON.stringify(JSON.parse(text)) is this very text
    return EventPacket(namespace, args[0], ack_id, attachments, message, len(text), length, _encoder_of(text))


def parse_event_head(prefix: bytes) -> EventPacket:
    """What the first bytes of an EVENT packet (after the Engine.IO ``4``) say when the rest never
    came: its namespace, ack id and event name (known once the event name came whole, which ends
    the head), and the string ``type`` and ``id`` of its message found in its first
    ``HEAD_FIELDS_WINDOW`` bytes (the last of each, as JSON.parse keeps it). Its sizes are not
    known: ``json_bytes`` and ``js_length`` are 0. ValueError when the prefix is no EVENT, or ends
    before its event name."""
    attachments, namespace, ack_id, start = _event_head(prefix)
    name = _EVENT_NAME_RE.match(prefix, start)
    if name is None:
        raise ValueError(f"cut before its event name: {prefix[:40]!r}")
    event = json.loads(prefix[start:name.end()].strip().lstrip(b"[").rstrip().rstrip(b","))
    body = prefix[name.end():name.end() + HEAD_FIELDS_WINDOW]
    return EventPacket(namespace, event, ack_id, attachments, _known_fields(body), 0, 0, _encoder_of(body))


HEAD_FIELDS_WINDOW = 1 << 16  # where a cut message's type and id are looked for
_FIELD_RE = re.compile(rb'\s*"((?:[^"\\]|\\.)*)"\s*:\s*')
_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"')
_SCALAR_RE = re.compile(rb"[^,}\]]*")
_COMMA_RE = re.compile(rb"\s*,")
_STRUCTURE_RE = re.compile(rb'["{}\[\]]')  # what changes depth, or opens a string


def _known_fields(text: bytes, wanted: tuple[str, ...] = ("type", "id")) -> dict[str, str] | None:
    """The ``wanted`` string fields of a JSON object cut short, read key by key at its top level
    until the cut (nested values are skipped; a key seen twice keeps its last value, as JSON.parse
    does); None when the text is no object."""
    if not text.lstrip().startswith(b"{"):
        return None
    found: dict[str, str] = {}
    pos = text.index(b"{") + 1
    while (key := _FIELD_RE.match(text, pos)) is not None:
        name = json.loads(b'"' + key.group(1) + b'"')
        value = _STRING_RE.match(text, key.end())
        if value is not None:
            if name in wanted:
                found[name] = json.loads(value.group())
            pos = value.end()
        elif (end := _value_end(text, key.end())) is not None:
            found.pop(name, None)  # a later value that is no string (JSON.parse keeps the last)
            pos = end
        else:
            break  # the cut is inside this value
        comma = _COMMA_RE.match(text, pos)
        if comma is None:
            break
        pos = comma.end()
    return found


def _value_end(text: bytes, pos: int) -> int | None:
    """Where the JSON value at ``pos`` ends (a nested object or array is skipped whole, strings in
    it included, from one structural byte to the next); None when the text ends first."""
    if text[pos:pos + 1] not in (b"{", b"["):
        scalar = _SCALAR_RE.match(text, pos)
        return scalar.end() if scalar is not None and scalar.end() < len(text) else None
    depth = 0
    while (mark := _STRUCTURE_RE.search(text, pos)) is not None:
        pos = mark.start()
        if text[pos] == 0x22:  # '"'
            string = _STRING_RE.match(text, pos)
            if string is None:
                return None
            pos = string.end()
            continue
        depth += 1 if text[pos] in (0x7B, 0x5B) else -1  # '{' '[' open, '}' ']' close
        pos += 1
        if depth == 0:
            return pos
    return None


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
