"""Sizes of captured messages, the JS .length trap, payload scaling, and the fixes as numbers.

Pure. ``imdiag size`` is this module plus a renderer; ``imdiag replay`` uses it to label what
it sends and to turn what it measured into the incident's fixes A (raise the limit) and B
(split into chunks), with numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from imdiag.core.captures import Captured
from imdiag.core.errors import EncodeError
from imdiag.core.units import format_bytes, format_size
from imdiag.core.wire import Encoder, encode_json_bytes, frame_overhead, js_length_utf8, json_size

HEADROOM = 0.25  # fixes leave a quarter of the limit free: captures grow
# Lists that grow with the data, in the incident's payloads; scaled and chunked first.
GROWING_KEYS = ("conversations", "messages", "comments")
DEFAULT_EVENT = "message"
DEFAULT_NAMESPACE = "/"


@dataclass(frozen=True)
class EncodedSize:
    """One message's bytes with one encoder."""

    encoder: Encoder
    json_bytes: int  # UTF-8 bytes of the message object alone
    frame_bytes: int  # websocket frame payload == polling body when sent alone
    error: str = ""  # this sender cannot encode the message (the sizes are then 0)


@dataclass(frozen=True)
class MessageSize:
    index: int
    type: str
    event: str
    namespace: str
    js_length: int  # JSON.stringify(msg).length: UTF-16 code units
    sizes: tuple[EncodedSize, ...]  # one per encoder, node first

    def of(self, encoder: Encoder) -> EncodedSize:
        return next(s for s in self.sizes if s.encoder is encoder)


def message_event(captured: Captured, default: str = DEFAULT_EVENT) -> str:
    return captured.event if captured.event is not None else default


def size_of(captured: Captured, *, event: str = DEFAULT_EVENT, namespace: str = DEFAULT_NAMESPACE,
            encoders: Sequence[Encoder] = (Encoder.NODE, Encoder.PYTHON)) -> MessageSize:
    """Every figure of one captured message, sent on its own event (or ``event``) in ``namespace``."""
    ev = message_event(captured, event)
    # Bytes, not a str: a message of 50 MB of CJK text and emoji would be a 200 MB str.
    node_json = encode_json_bytes(captured.message, Encoder.NODE)
    js_len, node_bytes = js_length_utf8(node_json), len(node_json)
    del node_json
    sizes = []
    for encoder in encoders:
        try:
            json_bytes = node_bytes if encoder is Encoder.NODE else json_size(captured.message, encoder)
            sizes.append(EncodedSize(encoder, json_bytes, json_bytes + frame_overhead(ev, namespace, None, encoder)))
        except EncodeError as exc:  # e.g. python refuses an integer of 5,000 digits: so would its sender
            sizes.append(EncodedSize(encoder, 0, 0, str(exc)))
    return MessageSize(captured.index, captured.type, ev, namespace, js_len, tuple(sizes))


@dataclass(frozen=True)
class Headroom:
    bytes: int  # limit - frame bytes; negative when over
    percent: float  # of the limit

    @property
    def fits(self) -> bool:
        return self.bytes >= 0


def headroom(frame_bytes: int, limit: int) -> Headroom:
    """Room left under ``limit`` (a frame of exactly the limit fits Node's ``<=`` rule)."""
    left = limit - frame_bytes
    return Headroom(left, round(100.0 * left / limit, 1))


def js_length_explanation(js_len: int, frame_bytes: int, json_bytes: int, limit: int, encoder: Encoder) -> str | None:
    """A sentence when ``JSON.stringify(msg).length`` and the bytes put the message on different
    sides of the limit; None when they agree."""
    if (js_len <= limit) == (frame_bytes <= limit):
        return None
    framing = frame_bytes - json_bytes
    extra = json_bytes - js_len
    if js_len <= limit:
        per_char = (
            "non-ASCII characters are one UTF-16 unit each (emoji two) but 3 bytes in UTF-8 (emoji 4)"
            if encoder is Encoder.NODE
            else "python's json.dumps escapes every non-ASCII character as \\uXXXX: 6 bytes (emoji 12)"
        )
        return (
            f"JS .length {js_len:,} is under the limit {limit:,} but the frame is {frame_bytes:,} B: "
            f"{per_char}, so the JSON is {extra:,} B longer than .length says, plus {framing} B of framing. "
            f"The server counts bytes: log Buffer.byteLength(JSON.stringify(msg)), not .length"
        )
    return (
        f"JS .length {js_len:,} is over the limit {limit:,} but the frame is only {frame_bytes:,} B: "
        f"the server counts bytes, and these fit"
    )


# --- scaling ---------------------------------------------------------------------------------


def growing_list_key(payload: Any) -> str | None:
    """The payload's list that grows with the data: a known key, else its largest list."""
    if not isinstance(payload, dict):
        return None
    for key in GROWING_KEYS:
        if isinstance(payload.get(key), list) and payload[key]:
            return key
    lists = [(len(v), k) for k, v in payload.items() if isinstance(v, list) and v]
    return max(lists)[1] if lists else None


def scale_message(message: Any, scale: int) -> Any:
    """The message with the items of its growing payload lists repeated ``scale`` times.

    Only the top-level lists of the payload are repeated (a snapshot's conversations, not the
    messages inside each one), so the message grows about ``scale`` times. Items are shared,
    not copied: encoders write each occurrence. Messages without such a list are unchanged.
    """
    if scale == 1 or not isinstance(message, dict) or not isinstance(message.get("payload"), dict):
        return message
    payload = message["payload"]
    keys = [k for k in GROWING_KEYS if isinstance(payload.get(k), list) and payload[k]]
    if not keys:
        key = growing_list_key(payload)
        keys = [key] if key is not None else []
    if not keys:
        return message
    return {**message, "payload": {**payload, **{k: payload[k] * scale for k in keys}}}


# --- fix B: chunks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListProfile:
    """A message's growing list, item by item, for planning chunks."""

    index: int
    type: str
    key: str
    fixed_bytes: int  # the frame of this message with the list emptied
    item_bytes: tuple[int, ...]  # each item's encoded bytes


def list_profile(captured: Captured, *, encoder: Encoder, event: str, namespace: str) -> ListProfile | None:
    message = captured.message
    if not isinstance(message, dict):
        return None
    key = growing_list_key(message.get("payload"))
    if key is None:
        return None
    items = message["payload"][key]
    empty = {**message, "payload": {**message["payload"], key: []}}
    ev = message_event(captured, event)
    fixed = json_size(empty, encoder) + frame_overhead(ev, namespace, None, encoder)
    sizes = tuple(json_size(item, encoder) for item in items)
    return ListProfile(captured.index, captured.type, key, fixed, sizes)


@dataclass(frozen=True)
class ChunkPlan:
    budget: int  # largest frame a chunk may have
    chunks: int  # how many messages the list becomes
    items_per_chunk: int  # the fewest items any full chunk holds (greedy, in order)
    largest_chunk: int  # frame bytes of the largest chunk
    fits: bool  # False when one item alone is over the budget


def plan_chunks(profile: ListProfile, budget: int) -> ChunkPlan:
    """Greedy, in order: as many items per chunk as fit ``budget`` bytes of frame."""
    chunks: list[tuple[int, int]] = []  # (items, frame bytes)
    count, size = 0, profile.fixed_bytes
    fits = profile.fixed_bytes <= budget
    for item in profile.item_bytes:
        extra = item + (1 if count else 0)  # the comma between items
        if count and size + extra > budget:
            chunks.append((count, size))
            count, size, extra = 0, profile.fixed_bytes, item
        count += 1
        size += extra
        if size > budget:
            fits = False
    if count:
        chunks.append((count, size))
    full = [n for n, _ in chunks[:-1]] or [n for n, _ in chunks]
    return ChunkPlan(budget, len(chunks), min(full) if full else 0, max((s for _, s in chunks), default=0), fits)


# --- the recommendations ---------------------------------------------------------------------


MASTER_SETTING = "maxHttpBufferSize"


@dataclass(frozen=True)
class PathLimit:
    """A limit on the path to the master below the master's own: a proxy's body limit, say."""

    bytes: int  # the largest frame or POST body it lets through (exact: measured; else at most this)
    setting: str  # what to change: "the proxy's body limit (nginx: client_max_body_size)"
    where: str  # "polling, a proxy (nginx/1.22.1)"
    exact: bool = True


@dataclass(frozen=True)
class Recommendation:
    """Fixes A and B as numbers, for one current limit and the limits observed on the path."""

    limit: int  # the master's limit (maxHttpBufferSize)
    largest_frame: int  # the largest message frame or POST body that had to pass
    largest_what: str  # which message (or batch) that was
    min_limit: int  # the smallest limit that passes everything with HEADROOM to spare
    chunk_budget: int  # the largest chunk frame that fits the path's smallest limit with HEADROOM to spare
    chunk_plan: ChunkPlan | None  # the largest message, split at ``chunk_budget``
    chunk_type: str
    notes: tuple[str, ...] = ()
    path: tuple[PathLimit, ...] = ()  # limits between client and master

    @property
    def ceiling(self) -> int:
        """The smallest limit on the path: what every message must fit."""
        return min([self.limit, *(p.bytes for p in self.path)])

    def _raise(self) -> list[str]:
        """Each limit on the path below ``min_limit``, and by how much to raise it."""
        limits = [*sorted(self.path, key=lambda p: p.bytes), PathLimit(self.limit, MASTER_SETTING, "the master")]
        return [f"{p.setting} >= {self.min_limit:,} (now {p.bytes:,}: +{self.min_limit - p.bytes:,} B)" if p.exact
                else f"{p.setting} >= {self.min_limit:,} (now under {p.bytes + 1:,} B)"
                for p in limits if p.bytes < self.min_limit]

    def lines(self) -> list[str]:
        headroom_pct = int(HEADROOM * 100)
        raise_ = self._raise()
        if raise_:
            a = (f"fix A (raise the limit): everything here passes with {headroom_pct}% headroom once "
                 f"{' and '.join(raise_)} (e.g. {nice_ceiling(self.min_limit):,})")
        else:
            a = (f"fix A (raise the limit): not needed: everything here fits the path's smallest limit "
                 f"{self.ceiling:,} B with {headroom_pct}% headroom (it needs {self.min_limit:,} B)")
        out = [a + f"; the largest was {self.largest_what}, {format_bytes(self.largest_frame)}"]
        if self.ceiling < self.limit:
            lowest = min(self.path, key=lambda p: p.bytes)
            at = f"at the path's limit {format_bytes(lowest.bytes)} ({lowest.where}; the master's is {self.limit:,} B)"
        else:
            at = f"at the current limit {format_size(self.limit)}"
        b = f"fix B (split into chunks) {at}: keep each message under {format_bytes(self.chunk_budget)} on the wire"
        if self.chunk_plan is not None:
            plan = self.chunk_plan
            if plan.fits:
                b += (
                    f"; the largest {self.chunk_type} becomes {plan.chunks} chunk(s) of up to "
                    f"{plan.items_per_chunk:,} items (largest chunk {format_bytes(plan.largest_chunk)})"
                )
            else:
                b += f"; some single item of the largest {self.chunk_type} does not fit even alone"
        out.append(b)
        out.extend(self.notes)
        return out


def nice_ceiling(n: int) -> int:
    """``n`` rounded up to two significant digits: 1,641,280 -> 1,700,000."""
    if n <= 100:
        return n
    step: int = 10 ** (len(str(n)) - 2)
    return math.ceil(n / step) * step


def recommend(
    limit: int,
    largest_frame: int,
    largest_what: str,
    profile: ListProfile | None,
    *,
    lost_under_limit: Iterable[int] = (),
    headroom_share: float = HEADROOM,
    path: Sequence[PathLimit] = (),
) -> Recommendation:
    """Fix A: the smallest limit with headroom, and which limits on the path to raise to it; fix B:
    the chunk size for the smallest limit on the path (``limit``, or one in ``path`` below it).

    ``lost_under_limit`` are wire sizes of messages a master lost although they were under its
    limit (the python master's polling decode errors): chunks must stay under those too.
    """
    min_limit = math.ceil(largest_frame * (1 + headroom_share))
    budget = math.floor(min([limit, *(p.bytes for p in path)]) / (1 + headroom_share))
    notes = []
    lost = sorted(lost_under_limit)
    if lost and lost[0] <= budget:
        notes.append(
            f"note: a master lost bodies from {format_bytes(lost[0])} although they were under its limit "
            f"(server-decode-error): raising the limit does not fix that; chunks must stay under that size too"
        )
        budget = lost[0] - 1
    plan = plan_chunks(profile, budget) if profile is not None else None
    return Recommendation(limit, largest_frame, largest_what, min_limit, budget, plan,
                          profile.type if profile else "", tuple(notes), tuple(path))
