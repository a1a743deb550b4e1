"""Replay a capture: send its messages, as the worker did, to reference masters or a live one.

Masters: one per (server, limit, transport), as in the sweep (``worker/lanes.py``). The capture
is read once per pass (one pass per ``--scale``), message by message; each message is encoded
once and its frame handed to every lane, and the reader waits for the slowest lane: a JSON Lines
capture of any size is held a few messages at a time.

Timing: ``fast`` sends each message alone, as soon as the last one was judged. ``original``
keeps the capture's gaps (each capped at ``max_gap``) on a replay clock that the lane's own
POSTs advance. Over polling, messages that fall due while a POST is in flight are buffered
and flushed together in the next POST, as engine.io-client does. Engine.io-client >= 6.1
splits such a flush so that no POST exceeds the server's advertised ``maxPayload``
(``client_batch="split"``, the default); older clients and python-engineio send the whole
buffer in one POST (``client_batch="whole"``): that is where ``batched-oversize`` happens.

Verdicts: against a reference master the ledger proves delivery. A live master (``url``) has
no ledger: a message is only *delivered* when the master acknowledged it (``ack``); otherwise
a protocol barrier shows the server parsed past it, which proves nothing about the handler,
and the verdict says so (cause ``unknown``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp

from imdiag.errors import EncodeError, ImdiagError
from imdiag.fake_master.ledger import Arrival, canonical_digest
from imdiag.fixtures import Fixture, open_fixture
from imdiag.model import Cause, Cell, MasterRun, Observation, Report, judge
from imdiag.quirks import rule
from imdiag.sizing import ListProfile, list_profile, recommend, scale_message
from imdiag.wire import (
    SIO_ACK,
    SIO_CONNECT,
    SIO_CONNECT_ERROR,
    Encoder,
    Transport,
    connect_packet,
    encode_json,
    event_frame,
    js_length,
)
from imdiag.worker.connection import Connection, Endpoint, SendResult
from imdiag.worker.emit import send_observed
from imdiag.worker.lanes import LaneConnection, Master, new_master, started_masters

TIMINGS = ("fast", "original")
CLIENT_BATCHES = ("split", "whole")
MAX_BATCH = 256  # packets in one flush; engine.io-client has no bound, a replay needs one
_NO_ID = "\x00imdiag-replay"  # never a message id: arrivals are matched by digest instead


@dataclass(frozen=True)
class ReplaySettings:
    path: str
    limits: tuple[int, ...] = (1_000_000,)
    transports: tuple[Transport, ...] = (Transport.WEBSOCKET, Transport.POLLING)
    encoder: Encoder = Encoder.NODE
    masters: tuple[str, ...] = ("python",)
    namespace: str | None = None  # None: the capture's own (first message, meta), else "/"
    event: str = "message"  # for records without their own "event"
    timing: str = "fast"
    max_gap_s: float = 2.0
    client_batch: str = "split"
    scales: tuple[int, ...] = (1,)
    timeout_s: float = 10.0
    # a live master instead of reference masters
    url: str | None = None
    path_prefix: str = "/socket.io/"
    headers: tuple[tuple[str, str], ...] = ()
    auth_json: str | None = None
    insecure: bool = False
    ack: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.path,
            "limits": list(self.limits),
            "transports": [t.value for t in self.transports],
            "encoder": self.encoder.value,
            "masters": list(self.masters),
            "namespace": self.namespace,
            "event": self.event,
            "timing": self.timing,
            "max_gap_s": self.max_gap_s,
            "client_batch": self.client_batch,
            "scales": list(self.scales),
            "timeout_s": self.timeout_s,
        }
        if self.url is not None:
            out.update(url=self.url, path=self.path_prefix, headers=[k for k, _ in self.headers],
                       auth=self.auth_json is not None, insecure=self.insecure, ack=self.ack)
            del out["limits"], out["masters"]
        return out


@dataclass(frozen=True)
class Outgoing:
    """One captured message, encoded once, shared by every lane."""

    index: int
    type: str
    label: str  # "replay" or "x<scale>"
    event: str
    due: float | None  # seconds on the replay clock; None: right after the previous message
    frame: bytes  # the websocket frame payload / polling record (empty on encode errors)
    json_bytes: int
    js_length: int
    digest: str  # what the master's ledger will hold for it
    message_id: str | None
    encode_error: str = ""


@dataclass(frozen=True)
class _PassStart:
    scale: int


_Item = Outgoing | _PassStart | None


@dataclass
class _Capture:
    """What the producer learned while reading: for the notes and the recommendations."""

    fixture: Fixture
    namespace: str
    capped_gaps: int = 0
    longest_gap: float = 0.0
    largest: tuple[int, str, int] | None = None  # index, type, frame bytes (scale 1)
    profile: ListProfile | None = None
    messages: int = 0


ProgressFn = Callable[[Cell], None]
SendFn = Callable[[Connection, list[Outgoing]], Awaitable[tuple[list[Observation], float]]]


def capture_namespace(fixture: Fixture, override: str | None) -> str:
    if override is not None:
        return override
    meta_ns = fixture.meta.get("namespace")
    if isinstance(meta_ns, str) and meta_ns.startswith("/"):
        return meta_ns
    for captured in fixture.messages():
        return captured.namespace or "/"
    return "/"


def expected_digest(message_json: str) -> str:
    """The ledger digest of what the master will decode from this JSON (floats such as 1.0
    reach it as written, so the digest is taken from the text, not the fixture's values)."""
    return canonical_digest(json.loads(message_json))


def _outgoing(captured_index: int, message: Any, type_name: str, label: str, event: str, due: float | None,
              settings: ReplaySettings, namespace: str, with_digest: bool, ack_frames: bool) -> Outgoing:
    try:
        text = encode_json(message, settings.encoder)
        node_text = text if settings.encoder is Encoder.NODE else encode_json(message, Encoder.NODE)
    except EncodeError as exc:
        return Outgoing(captured_index, type_name, label, event, due, b"", 0, 0, "", None, str(exc))
    js_len = js_length(node_text)
    del node_text
    digest = expected_digest(text) if with_digest else ""
    data = text.encode("utf-8", "surrogatepass")
    del text
    # Live frames are built per send (they carry an ack id); keep the JSON only then.
    frame = data if ack_frames else event_frame(data, encoder=settings.encoder, event=event, namespace=namespace)
    message_id = message.get("id") if isinstance(message, dict) and isinstance(message.get("id"), str) else None
    return Outgoing(captured_index, type_name, label, event, due, frame, len(data), js_len, digest, message_id)


def _items(settings: ReplaySettings, capture: _Capture, with_digest: bool, ack_frames: bool) -> Iterator[_Item]:
    """Every pass over the capture, message by message, with its due time."""
    for scale in settings.scales:
        yield _PassStart(scale)
        label = "replay" if settings.scales == (1,) else f"x{scale}"
        clock = 0.0
        last_t: float | None = None
        for captured in capture.fixture.messages():
            due: float | None = None
            if captured.t is not None:
                gap = 0.0 if last_t is None else max(0.0, captured.t - last_t)
                if gap > settings.max_gap_s:
                    if scale == settings.scales[0]:
                        capture.capped_gaps += 1
                        capture.longest_gap = max(capture.longest_gap, gap)
                    gap = settings.max_gap_s
                clock += gap
                due = clock
                last_t = captured.t
            event = captured.event if captured.event is not None else settings.event
            message = scale_message(captured.message, scale)
            item = _outgoing(captured.index, message, captured.type, label, event, due, settings,
                             capture.namespace, with_digest, ack_frames)
            if scale == 1:
                capture.messages += 1
                frame_bytes = item.json_bytes + len(event_frame(b"", encoder=settings.encoder, event=event,
                                                                namespace=capture.namespace))
                if not item.encode_error and (capture.largest is None or frame_bytes > capture.largest[2]):
                    capture.largest = (captured.index, captured.type, frame_bytes)
                    capture.profile = list_profile(captured, encoder=settings.encoder, event=settings.event,
                                                   namespace=capture.namespace)
            # The parsed message is not needed any more: only its frame travels on.
            del message, captured
            yield item


# --- sending ---------------------------------------------------------------------------------


class _TimedConnection:
    """A connection that remembers how long the message POST took (the first send)."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self.first: SendResult | None = None

    async def send(self, packets: Sequence[bytes]) -> SendResult:
        result = await self._conn.send(packets)
        if self.first is None:
            self.first = result
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _match_digests(entries: Sequence[object], batch: Sequence[Outgoing]) -> list[Arrival | None]:
    """Each message's arrival, in order; identical messages take successive arrivals."""
    arrivals = [e for e in entries if isinstance(e, Arrival)]
    used: set[int] = set()
    out: list[Arrival | None] = []
    for item in batch:
        found = next((a for a in arrivals if a.seq not in used and a.digest == item.digest), None)
        if found is not None:
            used.add(found.seq)
        out.append(found)
    return out


def ledger_sender(master: Master, settings: ReplaySettings, namespace: str) -> SendFn:
    async def send(conn: Connection, batch: list[Outgoing]) -> tuple[list[Observation], float]:
        ledger = master.ledger
        mark = ledger.mark()
        timed = _TimedConnection(conn)
        observations = await send_observed(
            cast(Connection, timed), ledger, [o.frame for o in batch], [_NO_ID] * len(batch),
            encoder=settings.encoder, event=settings.event, namespace=namespace, timeout=settings.timeout_s,
        )
        found = _match_digests(ledger.since(mark), batch)
        observations = [
            dataclasses.replace(obs, ledger_seq=a.seq, ledger_bytes=a.bytes) if a is not None else obs
            for obs, a in zip(observations, found)
        ]
        return observations, timed.first.seconds if timed.first else 0.0

    return send


_barrier_numbers = itertools.count(1)
_ack_ids = itertools.count(1)


def live_sender(settings: ReplaySettings, namespace: str) -> SendFn:
    """Send to a live master: no ledger; a protocol barrier, and ACKs when asked for."""

    async def send(conn: Connection, batch: list[Outgoing]) -> tuple[list[Observation], float]:
        ack_ids = [next(_ack_ids) if settings.ack else None for _ in batch]
        packets = [
            event_frame(o.frame, encoder=settings.encoder, event=o.event, namespace=namespace, ack_id=a)
            if settings.ack else o.frame
            for o, a in zip(batch, ack_ids)
        ]
        result = await conn.send(packets)
        acked: set[int] = set()
        barrier = "closed"
        if result.ok and not conn.closed.done():
            barrier_ns = f"/imdiag-barrier-{next(_barrier_numbers)}"
            await conn.send([connect_packet(barrier_ns).encode()])
            barrier = "timeout"
            waiting = {a for a in ack_ids if a is not None}
            deadline = time.monotonic() + settings.timeout_s
            # Bounded by the deadline: each turn consumes one packet or ends.
            while (left := deadline - time.monotonic()) > 0 and (barrier == "timeout" or waiting - acked):
                pkt = await conn.next_packet(left)
                if pkt is None:
                    break
                if pkt.namespace == barrier_ns and pkt.type in (SIO_CONNECT, SIO_CONNECT_ERROR):
                    barrier = "parsed"
                elif pkt.type == SIO_ACK and pkt.namespace == namespace and pkt.ack_id in waiting:
                    acked.add(pkt.ack_id)
            if conn.closed.done() and barrier != "parsed":
                barrier = "closed"
        elif not conn.closed.done():
            # A refused POST ends the session: wait (bounded) for the close to be observed.
            await asyncio.wait({conn.closed}, timeout=settings.timeout_s)
        close = conn.closed.result() if conn.closed.done() else None
        advertised = conn.open_info.max_payload if conn.open_info else None
        observations = [
            Observation(
                body_bytes=result.body_bytes, packets_in_body=result.packets, message_bytes=len(packet),
                advertised_max_payload=advertised, send_error=result.error, http_status=result.http_status,
                http_body=result.http_body if result.http_status not in (None, 200) else "",
                close_code=close.code if close else None, close_reason=close.reason if close else "",
                close_error=close.error if close else "", closed=close is not None and barrier != "parsed",
                barrier=barrier, acked=a is not None and a in acked,
            )
            for packet, a in zip(packets, ack_ids)
        ]
        return observations, result.seconds

    return send


# --- lanes -----------------------------------------------------------------------------------


@dataclass
class _Lane:
    server: str  # "python", "node" or "live"
    limit: int
    transport: Transport
    connection: LaneConnection
    send: SendFn
    queue: asyncio.Queue[_Item] = field(default_factory=lambda: asyncio.Queue(maxsize=2))
    run: MasterRun | None = None


def _flushable(pending: list[Outgoing], max_payload: int | None, client_batch: str) -> list[Outgoing]:
    """What one flush sends: engine.io-client >= 6.1 stops before the body would pass maxPayload."""
    if client_batch == "whole" or max_payload is None:
        return pending[:MAX_BATCH]
    size = 0
    for i, item in enumerate(pending[:MAX_BATCH]):
        size += len(item.frame) + (1 if i else 0)
        if i and size > max_payload:
            return pending[:i]
    return pending[:MAX_BATCH]


async def _drive(lane: _Lane, settings: ReplaySettings, record: Callable[[_Lane, Outgoing, Observation], None]) -> None:
    original = settings.timing == "original"
    batching = original and lane.transport is Transport.POLLING
    clock = 0.0  # the replay clock: capture gaps (capped) plus the lane's own POST times
    lookahead: _Item = None
    have_lookahead = False
    pending: list[Outgoing] = []
    finished = False

    async def next_item() -> _Item:
        nonlocal lookahead, have_lookahead
        if have_lookahead:
            have_lookahead = False
            return lookahead
        return await lane.queue.get()

    while not (finished and not pending):
        if not pending:
            item = await next_item()
            if item is None:
                finished = True
                continue
            if isinstance(item, _PassStart):
                clock = 0.0
                continue
            if item.encode_error:
                record(lane, item, Observation(body_bytes=0, encode_error=item.encode_error))
                continue
            if original and item.due is not None and item.due > clock:
                # The capture's own gap (already capped at max_gap): pacing, not synchronization.
                await asyncio.sleep(item.due - clock)
                clock = item.due
            pending = [item]
        conn = await lane.connection.get()
        batch = _flushable(pending, lane.connection.advertised_max_payload, settings.client_batch) if batching else pending[:1]
        pending = pending[len(batch):]
        observations, seconds = await lane.send(conn, batch)
        for item, obs in zip(batch, observations):
            record(lane, item, obs)
        if not original:
            continue
        clock += seconds
        if not batching:
            continue
        # Messages that fell due while that POST was in flight were buffered by the client.
        while not finished and len(pending) < MAX_BATCH:
            nxt = await next_item()
            if isinstance(nxt, Outgoing) and not nxt.encode_error and nxt.due is not None and nxt.due <= clock:
                pending.append(nxt)
                continue
            lookahead, have_lookahead = nxt, True
            break


def _cell(lane: _Lane, settings: ReplaySettings, item: Outgoing, obs: Observation) -> Cell:
    verdict = judge(obs)
    predicted = None
    if lane.server in ("python", "node") and not item.encode_error:
        predicted = rule(lane.server, lane.transport).predicts_delivered(obs.body_bytes, lane.limit)
    return Cell(
        type=item.type, transport=lane.transport, limit=lane.limit, encoder=settings.encoder, master=lane.server,
        label=item.label, wire_bytes=obs.body_bytes,
        message_bytes=obs.message_bytes if obs.message_bytes is not None else len(item.frame),
        json_bytes=item.json_bytes, js_length=item.js_length, predicted_delivered=predicted,
        delivered=verdict.delivered, cause=verdict.cause, evidence=verdict.evidence, observed=obs.to_dict(),
        index=item.index, message_id=item.message_id,
    )


async def run_replay(
    settings: ReplaySettings,
    cells: list[Cell],
    *,
    on_cell: ProgressFn | None = None,
    on_planned: Callable[[int], None] | None = None,
) -> Report:
    """Replay the capture on every lane; cells are appended to ``cells`` as they come, so a
    caller interrupted midway still holds what was measured."""
    started = time.monotonic()
    fixture = open_fixture(settings.path)
    namespace = capture_namespace(fixture, settings.namespace)
    capture = _Capture(fixture, namespace)
    live = settings.url is not None

    def record(lane: _Lane, item: Outgoing, obs: Observation) -> None:
        cell = _cell(lane, settings, item, obs)
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)

    runs: list[MasterRun] = []
    if live:
        assert settings.url is not None
        endpoint = Endpoint.from_url(
            settings.url, path=settings.path_prefix, headers=tuple(settings.headers),
            auth_json=settings.auth_json, insecure=settings.insecure,
        )
        namespace = capture.namespace = endpoint.namespace
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            lanes = [
                _Lane("live", 0, transport, LaneConnection(endpoint, transport, session, settings.timeout_s),
                      live_sender(settings, namespace))
                for transport in settings.transports
            ]
            # Connect first: an unreachable URL is one error line before anything is sent.
            for lane in lanes:
                await lane.connection.get()
                lane.limit = lane.connection.advertised_max_payload or 0
            await _run_lanes(lanes, settings, capture, record, on_planned, with_digest=False)
            runs = [MasterRun("live", lane.limit, lane.transport, settings.url, {}, lane.connection.advertised_max_payload)
                    for lane in lanes]
    else:
        masters = [(server, limit, transport, new_master(server, limit, namespace))
                   for server in settings.masters for limit in settings.limits for transport in settings.transports]
        async with started_masters([m for *_, m in masters]) as session:
            lanes = [
                _Lane(server, limit, transport, LaneConnection.to_master(master, transport, session, settings.timeout_s),
                      ledger_sender(master, settings, namespace))
                for server, limit, transport, master in masters
            ]
            await _run_lanes(lanes, settings, capture, record, on_planned, with_digest=True)
            for (server, limit, transport, master), lane in zip(masters, lanes):
                info = master.info
                runs.append(MasterRun(info.server, limit, transport, info.url, info.versions,
                                      lane.connection.advertised_max_payload))
    runs.sort(key=lambda r: (r.server, r.limit, r.transport.value if r.transport else ""))
    return Report(
        command="replay",
        settings={**settings.to_dict(), "namespace": namespace},
        cells=list(cells),
        masters=runs,
        elapsed_s=round(time.monotonic() - started, 3),
        extra=replay_extra(settings, capture, cells, [r.limit for r in runs]),
    )


async def _run_lanes(
    lanes: list[_Lane], settings: ReplaySettings, capture: _Capture,
    record: Callable[[_Lane, Outgoing, Observation], None], on_planned: Callable[[int], None] | None,
    *, with_digest: bool,
) -> None:
    if on_planned is not None:
        on_planned(capture.fixture.count * len(settings.scales) * len(lanes))

    async def produce() -> None:
        for item in _items(settings, capture, with_digest, ack_frames=settings.url is not None and settings.ack):
            for lane in lanes:
                await lane.queue.put(item)
        for lane in lanes:
            await lane.queue.put(None)

    async def drive(lane: _Lane) -> None:
        try:
            await _drive(lane, settings, record)
        finally:
            await lane.connection.close()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for lane in lanes:
                group.create_task(drive(lane))
    except BaseExceptionGroup as group_error:
        # One line for the user: the first error imdiag knows how to report, else the first.
        errors = list(_leaves(group_error))
        known = next((e for e in errors if isinstance(e, ImdiagError)), None)
        raise (known or errors[0]) from None


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def replay_extra(settings: ReplaySettings, capture: _Capture, cells: Sequence[Cell], limits: Sequence[int]) -> dict[str, Any]:
    """The capture, notes and recommendations, for the renderer and the JSON report."""
    notes = []
    if settings.timing == "original" and capture.capped_gaps:
        notes.append(
            f"timing: {capture.capped_gaps} gap(s) longer than {settings.max_gap_s:g} s were shortened to "
            f"{settings.max_gap_s:g} s (the longest was {capture.longest_gap:.1f} s); --max-gap changes that"
        )
    recommendations = []
    if capture.largest is not None:
        index, type_name, frame = capture.largest
        largest_frame, what = frame, f"message #{index} ({type_name})"
        batched = [c for c in cells if c.label in ("replay", "x1") and c.wire_bytes > largest_frame
                   and c.observed.get("packets_in_body", 1) > 1]
        if batched:
            biggest = max(batched, key=lambda c: c.wire_bytes)
            largest_frame = biggest.wire_bytes
            what = f"a POST batching message #{biggest.index} with others"
        for limit in sorted(set(limits)):
            if limit <= 0:
                continue
            lost = [c.wire_bytes for c in cells if c.cause is Cause.SERVER_DECODE_ERROR and c.wire_bytes <= c.limit
                    and c.label in ("replay", "x1")]
            rec = recommend(limit, largest_frame, what, capture.profile, lost_under_limit=lost)
            recommendations.append({
                "limit": limit, "min_limit": rec.min_limit, "chunk_budget": rec.chunk_budget,
                "largest_frame": rec.largest_frame,
                "chunks": rec.chunk_plan.chunks if rec.chunk_plan else None,
                "items_per_chunk": rec.chunk_plan.items_per_chunk if rec.chunk_plan else None,
                "lines": rec.lines(),
            })
    return {
        "capture": {"file": str(capture.fixture.path), "format": capture.fixture.format,
                    "messages": capture.fixture.count, "meta": capture.fixture.meta},
        "notes": notes,
        "recommendations": recommendations,
    }


__all__ = ["CLIENT_BATCHES", "TIMINGS", "ReplaySettings", "run_replay"]
