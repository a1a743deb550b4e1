"""The incident's message types and a deterministic generator of realistic payloads.

Pure. ``Catalog.sized()`` builds a message whose frame is *exactly* a target number of bytes
(or of characters, for a master whose limit counts characters), for a given encoder, event,
namespace and ack id, so a sweep can test L-1, L and L+1.

A message is ``{"type": T, "id": ID, "payload": {<fixed fields>, <list>: [items], "_pad": S}}``.
Compact JSON is compositional, so the list's items are encoded once, cached, and a message of
any size is a prefix of that cache joined by commas plus a padding string (CJK characters:
3 bytes each in UTF-8, 6 bytes as python's ``\\uXXXX``; ASCII for the remainder). A message
sized in characters pads with ASCII, so that its bytes stay close to its characters (its items'
Chinese text still makes it larger in bytes than in characters).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from imdiag.core.errors import InputError
from imdiag.core.wire import (
    Encoder,
    LimitUnit,
    WireSize,
    encode_json,
    frame_overhead_size,
    js_length,
    utf8_length,
)

PAD_KEY = "_pad"
_PAD_TEXT = "这是一段用于把消息撑到精确字节数的中文填充内容"
_CJK_BYTES = {Encoder.NODE: 3, Encoder.PYTHON: 6}  # per padding character

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = ["小明", "晓红", "伟", "芳", "娜", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "客服小王"]
_PHRASES = [
    "你好，请问这个商品还有货吗？",
    "已经下单了，麻烦尽快发货",
    "好的，收到，谢谢亲",
    "这个价格可以再优惠一点吗",
    "快递什么时候能到？",
    "我想换一个颜色，可以吗",
    "亲，您的订单已经发出啦",
    "质量很好，下次还来买",
    "请问支持七天无理由退货吗",
    "直播间的优惠券怎么领取",
    "545454",
    "1234321",
    "明天下午三点之前能送到吗？",
]
_EMOJI = ["😀", "👍", "🎉", "❤️", "🙏", "😂", "🔥", "🌹"]
_BASE_MS = 1_764_319_599_000  # a fixed afternoon: payloads are reproducible to the byte
# Longer lists repeat their first UNIQUE_ITEMS items: sizes stay exact, generation stays fast.
UNIQUE_ITEMS = 1024


@dataclass(frozen=True)
class MessageType:
    name: str
    description: str
    list_key: str | None  # the list that grows with the message, if any
    natural_items: int


TYPES: tuple[MessageType, ...] = (
    MessageType("worker:heartbeat", "tiny liveness ping every 10 s", None, 0),
    MessageType("worker:register", "worker info on connect", None, 0),
    MessageType("worker:account:status", "account states every 60 s", None, 0),
    MessageType("worker:data:sync", "full snapshot: conversations with messages", "conversations", 560),
    MessageType("worker:conversations:update", "changed conversations", "conversations", 400),
    MessageType("worker:messages:update", "new messages", "messages", 600),
    MessageType("worker:comments:update", "new comments with replies", "comments", 300),
)
TYPE_NAMES: tuple[str, ...] = tuple(t.name for t in TYPES)
_BY_NAME = {t.name: t for t in TYPES}


def message_type(name: str) -> MessageType:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown message type {name!r}; known types: {', '.join(TYPE_NAMES)}") from None


# --- realistic values ----------------------------------------------------------------------


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def _text(rng: random.Random) -> str:
    parts = [rng.choice(_PHRASES) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        parts.append(rng.choice(_EMOJI))
    return "".join(parts)


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(10 ** (n - 1), 10**n - 1))


def _message(rng: random.Random, conversation_id: str, t: int) -> dict[str, Any]:
    inbound = rng.random() < 0.6
    return {
        "messageId": _digits(rng, 12),
        "conversationId": conversation_id,
        "senderId": "u" + _digits(rng, 10) if inbound else "acc_1",
        "senderName": _name(rng) if inbound else "客服小王",
        "direction": "in" if inbound else "out",
        "contentType": "text",
        "content": _text(rng),
        "createdAt": t,
        "status": rng.choice(["read", "unread", "sent"]),
    }


def _conversation(rng: random.Random, with_messages: bool, t: int) -> dict[str, Any]:
    conversation_id = "conv_" + _digits(rng, 16)
    peer = {
        "userId": "u" + _digits(rng, 10),
        "nickname": _name(rng) + rng.choice(["", "", rng.choice(_EMOJI)]),
        "avatar": f"https://p3.example.com/aweme/100x100/{_digits(rng, 9)}.jpeg",
    }
    conversation: dict[str, Any] = {
        "conversationId": conversation_id,
        "platform": "douyin",
        "accountId": "acc_1",
        "peer": peer,
        "unreadCount": rng.randint(0, 12),
        "lastMessageAt": t,
        "pinned": rng.random() < 0.1,
    }
    if with_messages:
        conversation["messages"] = [
            _message(rng, conversation_id, t - 1000 * j) for j in range(rng.randint(3, 12))
        ]
    else:
        conversation["lastMessage"] = _message(rng, conversation_id, t)
    return conversation


def _comment(rng: random.Random, t: int) -> dict[str, Any]:
    return {
        "commentId": _digits(rng, 19),
        "videoId": _digits(rng, 19),
        "userId": "u" + _digits(rng, 10),
        "nickname": _name(rng),
        "content": _text(rng),
        "likeCount": rng.randint(0, 5000),
        "createdAt": t,
        "replies": [
            {"commentId": _digits(rng, 19), "nickname": _name(rng), "content": _text(rng), "createdAt": t + 1000}
            for _ in range(rng.randint(0, 3))
        ],
    }


def _item_factory(type_name: str) -> Callable[[random.Random, int], dict[str, Any]]:
    if type_name == "worker:data:sync":
        return lambda rng, t: _conversation(rng, True, t)
    if type_name == "worker:conversations:update":
        return lambda rng, t: _conversation(rng, False, t)
    if type_name == "worker:messages:update":
        return lambda rng, t: _message(rng, "conv_" + _digits(rng, 16), t)
    if type_name == "worker:comments:update":
        return _comment
    raise ValueError(f"{type_name} has no growing list")


def _header(type_name: str, seed: int) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{type_name}:header")
    if type_name == "worker:heartbeat":
        return {"workerId": "worker1", "timestamp": _BASE_MS, "uptime": 49, "status": "ok"}
    if type_name == "worker:register":
        return {
            "workerId": "worker1",
            "hostname": "im-worker-01",
            "pid": rng.randint(1000, 60000),
            "version": "2.3.1",
            "platform": "linux",
            "capabilities": ["douyin", "xiaohongshu", "comments", "messages"],
            "accounts": [
                {"accountId": "acc_1", "platform": "douyin", "nickname": "客服小王"},
                {"accountId": "acc_2", "platform": "xiaohongshu", "nickname": "小红书旗舰店"},
            ],
        }
    if type_name == "worker:account:status":
        return {
            "workerId": "worker1",
            "accounts": [
                {"accountId": "acc_1", "status": "online", "loggedIn": True, "unread": 3, "checkedAt": _BASE_MS},
                {"accountId": "acc_2", "status": "online", "loggedIn": True, "unread": 0, "checkedAt": _BASE_MS},
            ],
            "timestamp": _BASE_MS,
        }
    header: dict[str, Any] = {"workerId": "worker1", "accountId": "acc_1", "syncedAt": _BASE_MS}
    if type_name == "worker:data:sync":
        header["full"] = True
    return header


# --- messages ------------------------------------------------------------------------------


def _pad_pieces(encoder: Encoder, pad_bytes: int, piece_bytes: int, cjk_pad: bool = True) -> Iterator[bytes]:
    """``,"_pad":"..."`` whose string content is exactly ``pad_bytes`` bytes once encoded, in
    pieces of about ``piece_bytes``: CJK characters then ASCII, or ASCII alone (``cjk_pad`` False)."""
    cjk, ascii_rest = divmod(pad_bytes, _CJK_BYTES[encoder]) if cjk_pad else (0, pad_bytes)
    # Each CJK character encodes alone (no escaping interacts), so the cycle can be
    # built from the encoded characters directly: fast even for 16 MB of padding.
    units = [encode_json(ch, encoder)[1:-1].encode() for ch in _PAD_TEXT]
    cycle = b"".join(units)
    full, part = divmod(cjk, len(units))
    yield b"," + encode_json(PAD_KEY, encoder).encode() + b':"'
    per_piece = max(1, piece_bytes // len(cycle))
    for done in range(0, full, per_piece):
        yield cycle * min(per_piece, full - done)
    yield b"".join(units[:part])
    for done in range(0, ascii_rest, piece_bytes):
        yield b"x" * min(piece_bytes, ascii_rest - done)
    yield b'"'


def _pad_js_length(encoder: Encoder, pad_bytes: int, cjk_pad: bool = True) -> tuple[int, int]:
    """The JS length of the padding field, and the number of characters in its string."""
    chars = sum(divmod(pad_bytes, _CJK_BYTES[encoder])) if cjk_pad else pad_bytes
    return len(PAD_KEY) + 6 + chars, chars


@dataclass(frozen=True)
class Message:
    """One encoded message, ready to send, with the sizes the wire model gives it."""

    type: str
    id: str
    encoder: Encoder
    data: bytes  # the message object encoded with ``encoder``, in UTF-8
    size: WireSize  # for the event/namespace/ack it was built for
    items: int
    pad_chars: int

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    def obj(self) -> Any:
        return json.loads(self.data)


# Pieces of about this size: large enough to write fast, small enough never to hold much.
PIECE_BYTES = 1 << 18


@dataclass
class _Pool:
    """The encoded list items of one type for one encoder: the first ``UNIQUE_ITEMS``, made on
    demand; a longer list repeats them, so its sums are arithmetic, not stored."""

    texts: list[bytes] = field(default_factory=list)  # UTF-8
    bytes_cum: list[int] = field(default_factory=lambda: [0])  # sum of item bytes
    js_cum: list[int] = field(default_factory=lambda: [0])  # sum of node-form JS lengths
    chars_cum: list[int] = field(default_factory=lambda: [0])  # sum of item characters (code points)
    _joined: bytes = b""  # the first ``_joined_items`` items joined by commas
    _joined_items: int = 0

    def _upto(self, cum: list[int], k: int) -> int:
        cycles, rest = divmod(k, UNIQUE_ITEMS)
        if cycles:
            assert len(self.texts) == UNIQUE_ITEMS, "items beyond the unique ones repeat them"
        return cycles * cum[-1] + cum[rest] if cycles else cum[k]

    def bytes_upto(self, k: int) -> int:
        """Bytes of the first ``k`` items (commas aside)."""
        return self._upto(self.bytes_cum, k)

    def js_upto(self, k: int) -> int:
        return self._upto(self.js_cum, k)

    def chars_upto(self, k: int) -> int:
        return self._upto(self.chars_cum, k)

    def joined(self, start: int, count: int, piece_bytes: int) -> Iterator[bytes]:
        """Items ``start`` .. ``start + count - 1`` joined by commas, in pieces of about
        ``piece_bytes`` (each but the first led by its comma): slices of the unique items joined
        once (``_block``), not joins of hundreds of small items per piece."""
        block = self._block()
        index, end = start, start + count
        while index < end:
            first = index % len(self.texts)
            # Stop at the end of the unique items (the list repeats from there) or the piece size.
            stop = bisect.bisect_left(self.bytes_cum, self.bytes_cum[first] + piece_bytes, first + 1)
            stop = min(stop, len(self.texts), first + end - index)
            # In the block, item i starts at bytes_cum[i] + i (the commas before it); the comma
            # that leads a piece is the block's, but for item 0 (the list repeating).
            lead = index > start
            begin, finish = self.bytes_cum[first] + first, self.bytes_cum[stop] + stop - 1
            if lead and first == 0:
                yield b"," + block[begin:finish]
            else:
                yield block[begin - lead:finish]
            index += stop - first

    def _block(self) -> bytes:
        """Every item made so far, joined by commas (made again only when items were added)."""
        if self._joined_items != len(self.texts):
            self._joined = b",".join(self.texts)
            self._joined_items = len(self.texts)
        return self._joined


@dataclass(frozen=True)
class MessageParts:
    """A message not yet made: its sizes, and its bytes made piece by piece on demand.

    ``pieces()`` yields exactly the bytes of ``message().data``; a sweep writes them as they
    come, so a 16 MB message refused at its frame header is never made whole.
    """

    type: str
    id: str
    encoder: Encoder
    size: WireSize
    items: int
    pad_chars: int
    _before: bytes
    _pool: _Pool | None  # the type's encoded items; the first ``items`` are the message's list
    _after: bytes
    _pad_bytes: int | None
    _cjk_pad: bool = True

    def pieces(self, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
        yield self._before
        if self._pool is not None and self.items:
            yield from self._pool.joined(0, self.items, piece_bytes)
        yield self._after
        if self._pad_bytes is not None:
            yield from _pad_pieces(self.encoder, self._pad_bytes, piece_bytes, self._cjk_pad)
        yield b"}}"

    def message(self) -> Message:
        """The message made whole."""
        data = b"".join(self.pieces())
        return Message(self.type, self.id, self.encoder, data, self.size, self.items, self.pad_chars)


def _message_id(*parts: object) -> str:
    return "m" + hashlib.blake2s(repr(parts).encode(), digest_size=6).hexdigest()


class Catalog:
    """Deterministic message generator for one seed. Not thread-safe; caches encodings."""

    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self._items: dict[str, list[dict[str, Any]]] = {}
        self._pools: dict[tuple[str, Encoder], _Pool] = {}

    def item(self, type_name: str, index: int) -> dict[str, Any]:
        index %= UNIQUE_ITEMS
        items = self._items.setdefault(type_name, [])
        factory = _item_factory(type_name)
        while len(items) <= index:
            i = len(items)
            items.append(factory(random.Random(f"{self.seed}:{type_name}:{i}"), _BASE_MS - 7000 * i))
        return items[index]

    def _pool(self, type_name: str, encoder: Encoder, count: int) -> _Pool:
        """The pool, holding the unique items a list of ``count`` items uses."""
        pool = self._pools.setdefault((type_name, encoder), _Pool())
        while len(pool.texts) < min(count, UNIQUE_ITEMS):
            item = self.item(type_name, len(pool.texts))
            encoded = encode_json(item, encoder)
            node = encoded if encoder is Encoder.NODE else encode_json(item, Encoder.NODE)
            text = encoded.encode("utf-8")
            pool.texts.append(text)
            pool.bytes_cum.append(pool.bytes_cum[-1] + len(text))
            pool.js_cum.append(pool.js_cum[-1] + js_length(node))
            pool.chars_cum.append(pool.chars_cum[-1] + len(encoded))
        return pool

    def _frame(self, spec: MessageType, message_id: str, encoder: Encoder) -> tuple[str, str, str, str]:
        """Encoded text before the items, and what closes the list (for the encoder and node).

        The padding field and the closing ``}}`` follow the list.
        """
        head = {"type": spec.name, "id": message_id, "payload": _header(spec.name, self.seed)}
        out = []
        for enc in (encoder, Encoder.NODE):
            text = encode_json(head, enc)[:-2]  # drop the closing "}}" to append fields
            if spec.list_key is None:
                out += [text, ""]
            else:
                out += [text + "," + encode_json(spec.list_key, enc) + ":[", "]"]
        return out[0], out[1], out[2], out[3]

    def _parts(
        self, spec: MessageType, encoder: Encoder, message_id: str, n: int, pad_bytes: int | None,
        overhead: tuple[int, int], cjk_pad: bool = True,
    ) -> MessageParts:
        """``overhead``: the bytes and characters the frame adds around the message."""
        before, after, node_before, node_after = self._frame(spec, message_id, encoder)
        pool = None
        items_bytes = js_items = items_chars = 0
        if spec.list_key is not None:
            pool = self._pool(spec.name, encoder, n)
            items_bytes = pool.bytes_upto(n) + max(n - 1, 0)
            js_items = pool.js_upto(n) + max(n - 1, 0)
            items_chars = pool.chars_upto(n) + max(n - 1, 0)
        pad_js = pad_chars = 0
        pad_field_bytes = pad_field_chars = 0
        if pad_bytes is not None:
            pad_js, pad_chars = _pad_js_length(encoder, pad_bytes, cjk_pad)
            pad_field = len(b"," + encode_json(PAD_KEY, encoder).encode() + b':""')
            pad_field_bytes = pad_field + pad_bytes
            # python's \uXXXX escapes are ASCII: one character per byte
            pad_field_chars = pad_field + (pad_chars if encoder is Encoder.NODE else pad_bytes)
        before_b, after_b = before.encode(), after.encode()
        json_bytes = len(before_b) + items_bytes + len(after_b) + pad_field_bytes + 2
        json_chars = len(before) + items_chars + len(after) + pad_field_chars + 2
        js = js_length(node_before) + js_items + len(node_after) + pad_js + 2
        size = WireSize(json_bytes=json_bytes, js_length=js, frame_bytes=json_bytes + overhead[0],
                        frame_chars=json_chars + overhead[1])
        return MessageParts(spec.name, message_id, encoder, size, n, pad_chars, before_b, pool, after_b, pad_bytes,
                            cjk_pad)

    def natural(
        self, type_name: str, encoder: Encoder = Encoder.NODE, *, event: str = "message",
        namespace: str = "/", ack_id: int | None = None,
    ) -> Message:
        """The message as the worker would send it, at its typical size."""
        return self.natural_parts(type_name, encoder, event=event, namespace=namespace, ack_id=ack_id).message()

    def natural_parts(
        self, type_name: str, encoder: Encoder = Encoder.NODE, *, event: str = "message",
        namespace: str = "/", ack_id: int | None = None,
    ) -> MessageParts:
        """``natural()``, not yet made."""
        spec = message_type(type_name)
        message_id = _message_id(self.seed, type_name, "natural")
        overhead = frame_overhead_size(event, namespace, ack_id, encoder)
        return self._parts(spec, encoder, message_id, spec.natural_items, None, overhead)

    def smallest_frame(
        self, type_name: str, encoder: Encoder = Encoder.NODE, *, event: str = "message",
        namespace: str = "/", ack_id: int | None = None,
    ) -> int:
        """The smallest frame ``sized()`` can build for this type (no items, empty pad)."""
        spec = message_type(type_name)
        message_id = _message_id(self.seed, type_name, 0, encoder.value, event, namespace, ack_id)
        before, after, _, _ = self._frame(spec, message_id, encoder)
        pad_min = utf8_length("," + encode_json(PAD_KEY, encoder) + ':""')
        return utf8_length(before + after + "}}") + pad_min + frame_overhead_size(event, namespace, ack_id, encoder)[0]

    def sized(
        self, type_name: str, size: int, encoder: Encoder = Encoder.NODE, *,
        event: str = "message", namespace: str = "/", ack_id: int | None = None, unit: LimitUnit = LimitUnit.BYTES,
    ) -> Message:
        """A message of this type whose frame is exactly ``size`` bytes (or characters) on the wire."""
        return self.sized_parts(type_name, size, encoder, event=event, namespace=namespace, ack_id=ack_id,
                                unit=unit).message()

    def sized_parts(
        self, type_name: str, size: int, encoder: Encoder = Encoder.NODE, *,
        event: str = "message", namespace: str = "/", ack_id: int | None = None, unit: LimitUnit = LimitUnit.BYTES,
    ) -> MessageParts:
        """``sized()``, not yet made: a 16 MB message costs nothing until its bytes are written.

        ``unit``: ``size`` counts bytes, or characters (a frame of exactly ``size`` code points,
        padded with ASCII: for a master whose limit counts characters)."""
        spec = message_type(type_name)
        chars = unit is LimitUnit.CHARACTERS
        key: tuple[object, ...] = (unit.value,) if chars else ()  # byte-sized ids stay as they were
        message_id = _message_id(self.seed, type_name, size, encoder.value, event, namespace, ack_id, *key)
        overhead = frame_overhead_size(event, namespace, ack_id, encoder)
        before, after, _, _ = self._frame(spec, message_id, encoder)
        measure_text = len if chars else utf8_length
        pad_min = measure_text("," + encode_json(PAD_KEY, encoder) + ':""')
        fixed = measure_text(before + after + "}}") + pad_min + overhead[1 if chars else 0]
        if size < fixed:
            raise InputError(
                f"a {type_name} frame cannot be {size:,} {unit.value if chars else 'B'}: the smallest is "
                f"{fixed:,} {unit.value if chars else 'B'} with the {encoder.value} encoder"
            )
        n = pool_size = 0
        if spec.list_key is not None:
            budget = size - fixed  # bytes (characters) available for items and their commas

            def items_size(k: int) -> int:
                pool = self._pool(spec.name, encoder, k)
                return (pool.chars_upto(k) if chars else pool.bytes_upto(k)) + max(k - 1, 0)

            # An upper bound by doubling (making only the items it needs), then the largest k
            # with items_size(k) <= budget (k >= 1) by bisection.
            high = 1
            while items_size(high) <= budget:
                high *= 2
            n = bisect.bisect_right(range(1, high + 1), budget, key=items_size)
            pool_size = items_size(n) if n else 0
        pad = size - fixed - pool_size  # ASCII when sized in characters: one byte each
        parts = self._parts(spec, encoder, message_id, n, pad, overhead, cjk_pad=not chars)
        assert (parts.size.frame_chars if chars else parts.size.frame_bytes) == size, (parts.size, size, unit)
        return parts
