"""Replay a capture: send its messages, as the worker did, to masters imdiag starts or a live one.

Masters: one per (server, limit, transport), as in the sweep. The capture is read once per pass
(one pass per ``--scale``), message by message; each message is encoded once and its frame
handed to every lane, and the reader waits for the slowest lane: a JSON Lines capture of any
size is held a few messages at a time.

Timing: ``fast`` sends each message alone, as soon as the last one was judged. ``original``
keeps the capture's gaps (each capped at ``max_gap``) on a replay clock that the lane's own
POSTs advance. Over polling, messages that fall due while a POST is in flight are buffered
and flushed together in the next POST, as engine.io-client does. Engine.io-client >= 6.1
splits such a flush so that no POST exceeds the server's advertised ``maxPayload``
(``client_batch="split"``, the default); older clients and python-engineio send the whole
buffer in one POST (``client_batch="whole"``): that is where ``batched-oversize`` happens.

Verdicts: against a master imdiag started, the ledger proves delivery (``LedgerWitness``). A
live master (``url``) has no ledger: a message is only *delivered* when the master acknowledged
it (``ack``); otherwise the protocol barrier shows the server parsed past it, which proves
nothing about the handler, and the verdict says so (cause ``unknown``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from imdiag.clients.engineio import Endpoint, HandshakeRefused, open_connection
from imdiag.clients.lanes import LaneConnection, client_session
from imdiag.clients.library import LibraryLane, LibraryMessage, SentMessage
from imdiag.clients.observe import LedgerWitness, Outgoing, ProtocolWitness, Witness, observe
from imdiag.core.captures import CaptureFile, capture_namespace, open_capture
from imdiag.core.entries import canonical_digest, message_id_of
from imdiag.core.errors import EncodeError, TargetError, reported
from imdiag.core.judge import judge, judged_cell, refusal_of
from imdiag.core.model import (
    PATH_CAUSES,
    SIZE_CAUSES,
    Barrier,
    CaptureInfo,
    Cause,
    Cell,
    MasterInfo,
    Observation,
    ReplayDetails,
    Report,
)
from imdiag.core.path import body_limit_setting, path_notes_of
from imdiag.core.plan import ReplaySettings
from imdiag.core.probe_explain import path_limits
from imdiag.core.probe_frames import PROBE_TYPE
from imdiag.core.probe_result import ProbeSettings
from imdiag.core.quirks import predicts_delivered, wire_rule
from imdiag.core.refusal import Refuser, SizeClose
from imdiag.core.sizing import (
    ListProfile,
    PathLimit,
    Recommendation,
    list_profile,
    recommend,
    scale_message,
)
from imdiag.core.urls import redact_url
from imdiag.core.wire import (
    Encoder,
    LimitUnit,
    Transport,
    code_points,
    encode_json_bytes,
    event_frame,
    frame_parts,
    js_length_utf8,
    wire_namespace,
)
from imdiag.core.worker import ClientKind, ClientView
from imdiag.masters.kinds import Master, master_options, new_master, started
from imdiag.runners.libraries import library_cell, open_library_lanes
from imdiag.runners.probe import pin_limit

MAX_BATCH = 256  # packets in one flush; engine.io-client has no bound, a replay needs one


@dataclass(frozen=True)
class ReplayMessage:
    """One captured message, encoded once, shared by every lane."""

    index: int
    type: str
    label: str  # "replay" or "x<scale>"
    event: str
    due: float | None  # seconds on the replay clock; None: right after the previous message
    frame: bytes  # the websocket frame payload / polling record (empty on encode errors)
    chars: int  # the frame's characters (code points): what a characters limit counts
    head_bytes: int  # bytes of the frame before the message JSON (``42/ns,["event",``)
    json_bytes: int
    js_length: int
    digest: str  # what the master's ledger will hold for it
    message_id: str | None
    encode_error: str = ""

    @property
    def json_text(self) -> str:
        """The message's JSON, as the worker's encoder wrote it (the frame minus its head and ``]``)."""
        return self.frame[self.head_bytes:-1].decode("utf-8", "surrogatepass")

    def outgoing(self, namespace: str, encoder: Encoder, ack_id: int | None) -> Outgoing:
        if ack_id is None:
            return Outgoing(self.frame, digest=self.digest or None)
        head, _ = frame_parts(self.event, namespace, ack_id, encoder)
        return Outgoing(head + self.frame[self.head_bytes:], digest=self.digest or None, ack_id=ack_id)


@dataclass(frozen=True)
class _PassStart:
    scale: int


_Item = ReplayMessage | _PassStart | None


@dataclass
class _Capture:
    """What the producer learned while reading: for the notes and the recommendations."""

    file: CaptureFile
    namespace: str
    capped_gaps: int = 0
    longest_gap: float = 0.0
    largest: tuple[int, str, int] | None = None  # index, type, frame bytes (scale 1)
    profile: ListProfile | None = None


CellFn = Callable[[Cell], None]


def _encode(index: int, message: Any, type_name: str, label: str, event: str, due: float | None,
            settings: ReplaySettings, namespace: str, with_digest: bool) -> ReplayMessage:
    try:
        # Bytes throughout: no str of a large message is built (encode_json_bytes).
        data = encode_json_bytes(message, settings.encoder)
        js_len = js_length_utf8(data if settings.encoder is Encoder.NODE else encode_json_bytes(message, Encoder.NODE))
    except EncodeError as exc:
        return ReplayMessage(index, type_name, label, event, due, b"", 0, 0, 0, 0, "", None, str(exc))
    # The canonical form is what both masters compute from what they decode (1.0 and 1 alike).
    # A capture's ids need not be unique: every message is found by its digest.
    digest = canonical_digest(message) if with_digest else ""
    message_id = message_id_of(message)
    head, _ = frame_parts(event, namespace, None, settings.encoder)
    frame = event_frame(data, encoder=settings.encoder, event=event, namespace=namespace)
    return ReplayMessage(index, type_name, label, event, due, frame, code_points(frame), len(head), len(data), js_len,
                         digest, message_id)


def _items(settings: ReplaySettings, capture: _Capture, with_digest: bool) -> Iterator[_Item]:
    """Every pass over the capture, message by message, with its due time."""
    for scale in settings.scales:
        yield _PassStart(scale)
        label = "replay" if settings.scales == (1,) else f"x{scale}"
        clock = 0.0
        last_t: float | None = None
        for captured in capture.file.messages():
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
            item = _encode(captured.index, message, captured.type, label, event, due, settings,
                           capture.namespace, with_digest)
            if scale == 1 and not item.encode_error:
                frame_bytes = len(item.frame)
                if capture.largest is None or frame_bytes > capture.largest[2]:
                    capture.largest = (captured.index, captured.type, frame_bytes)
                    capture.profile = list_profile(captured, encoder=settings.encoder, event=settings.event,
                                                   namespace=capture.namespace)
            # The parsed message is not needed any more: only its frame travels on.
            del message, captured
            yield item


# --- lanes -----------------------------------------------------------------------------------


@dataclass
class _Lane:
    info: MasterInfo  # server "python", "node", "asgi" or "live"; limit (live: the advertised maxPayload)
    connection: LaneConnection
    witness: Witness
    queue: asyncio.Queue[_Item] = field(default_factory=lambda: asyncio.Queue(maxsize=2))
    upgrade_offered: bool = False  # live websocket: polling works on this URL and offers the upgrade
    blocked: Observation | None = None  # live: the connection is refused for good (a blocked upgrade)
    library: LibraryLane | None = None  # a client library is the worker (--client node|python)

    @property
    def transport(self) -> Transport:
        return self.info.transport or self.connection.transport

    @property
    def size_close(self) -> SizeClose | None:
        """A master imdiag started refuses as its server rule says (python-engineio under ASGI: 1000)."""
        server_rule = wire_rule(self.info.server, self.transport)
        return server_rule.size_close() if server_rule is not None else None

    def refused(self, exc: HandshakeRefused) -> Observation:
        """What a message meets when the lane's connection is refused: not sent, and why."""
        return Observation(body_bytes=0, connect_error=str(exc), ended_by=exc.answer,
                           advertised_max_payload=self.info.advertised_max_payload,
                           upgrade_offered=self.transport is Transport.WEBSOCKET and self.upgrade_offered)


_ack_ids = itertools.count(1)


def _flushable(pending: list[ReplayMessage], max_payload: int | None, client_batch: str) -> list[ReplayMessage]:
    """What one flush sends: engine.io-client >= 6.1 stops before the body would pass maxPayload."""
    if client_batch == "whole" or max_payload is None:
        return pending[:MAX_BATCH]
    size = 0
    for i, item in enumerate(pending[:MAX_BATCH]):
        size += len(item.frame) + (1 if i else 0)
        if i and size > max_payload:
            return pending[:i]
    return pending[:MAX_BATCH]


class _Blocked(Exception):
    """The lane's connection was refused for good: do not try again."""


class _Driver:
    """One lane's loop: pace by the replay clock, batch over polling, observe, record."""

    def __init__(self, lane: _Lane, settings: ReplaySettings, namespace: str,
                 record: Callable[..., None]):
        self.lane, self.settings, self.namespace, self.record = lane, settings, namespace, record
        self.original = settings.timing == "original"
        self.batching = self.original and lane.transport is Transport.POLLING
        self.clock = 0.0  # the replay clock: capture gaps (capped) plus the lane's own POST times
        self.lookahead: list[_Item] = []
        self.finished = False

    async def next_item(self) -> _Item:
        if self.lookahead:
            return self.lookahead.pop()
        return await self.lane.queue.get()

    async def next_due(self) -> ReplayMessage | None:
        """The next message to send, paced by the capture's gaps; None at the end."""
        while True:
            item = await self.next_item()
            if item is None:
                self.finished = True
                return None
            if isinstance(item, _PassStart):
                self.clock = 0.0
                continue
            if item.encode_error:
                self.record(self.lane, item, Observation(body_bytes=0, encode_error=item.encode_error))
                continue
            if self.original and item.due is not None and item.due > self.clock:
                # The capture's own gap (already capped at max_gap): pacing, not synchronization.
                await asyncio.sleep(item.due - self.clock)  # sleep-ok: the capture's timing
                self.clock = item.due
            return item

    async def buffered(self, pending: list[ReplayMessage]) -> None:
        """Messages that fell due while the last POST was in flight: the client buffered them."""
        while not self.finished and len(pending) < MAX_BATCH:
            item = await self.next_item()
            if isinstance(item, ReplayMessage) and not item.encode_error and item.due is not None \
                    and item.due <= self.clock:
                pending.append(item)
                continue
            self.lookahead.append(item)
            return

    async def send(self, batch: list[ReplayMessage]) -> float:
        lane = self.lane
        try:
            if lane.blocked is not None:
                raise _Blocked
            conn = await lane.connection.get()
        except (HandshakeRefused, _Blocked) as exc:
            if lane.info.server != "live":
                raise
            # A live master's path refused the connection: each message is judged not sent, with why.
            # A blocked upgrade is for good; a session another node did not know is tried again, as
            # a client reconnects.
            obs = lane.blocked if isinstance(exc, _Blocked) else lane.refused(exc)
            assert obs is not None
            if judge(obs).cause is Cause.UPGRADE_BLOCKED:
                lane.blocked = obs
            for item in batch:
                self.record(lane, item, replace(obs, body_bytes=len(item.frame), message_bytes=len(item.frame),
                                                body_chars=item.chars, message_chars=item.chars))
            return 0.0
        ack = self.settings.ack and self.lane.info.server == "live"
        outgoing = [m.outgoing(self.namespace, self.settings.encoder, next(_ack_ids) if ack else None) for m in batch]
        observations = await observe(conn, outgoing, self.lane.witness, self.settings.timeout_s,
                                     size_close=self.lane.size_close)
        for item, obs in zip(batch, observations):
            self.record(self.lane, item, obs)
        return observations[0].seconds if observations else 0.0

    async def run(self) -> None:
        pending: list[ReplayMessage] = []
        while not (self.finished and not pending):
            if not pending:
                item = await self.next_due()
                if item is None:
                    continue
                pending = [item]
            max_payload = self.lane.connection.advertised_max_payload
            batch = _flushable(pending, max_payload, self.settings.client_batch) if self.batching else pending[:1]
            pending = pending[len(batch):]
            seconds = await self.send(batch)
            if self.original:
                self.clock += seconds
            if self.batching:
                await self.buffered(pending)


class _LibraryDriver(_Driver):
    """A client library as the worker: the capture's timing; batching, buffering and reconnecting
    are the library's own. With ``original`` timing each message is emitted when it falls due,
    whatever the client is doing, and its barrier and fate follow on their own; with ``fast`` the
    next message goes once this one's fate is decided."""

    async def run(self) -> None:
        library = self.lane.library
        assert library is not None
        sent: list[tuple[ReplayMessage, SentMessage]] = []
        follow: list[asyncio.Task[None]] = []
        try:
            while (item := await self.next_due()) is not None:
                message = LibraryMessage(item.json_text, item.message_id, item.digest or None, len(item.frame), item.event,
                                         model_frame_chars=item.chars)
                one = await library.send(message)
                sent.append((item, one))
                if self.original:
                    follow.append(asyncio.create_task(library.follow(one)))
                else:
                    await library.follow(one)
            await asyncio.gather(*follow)
            # What the client did after the last messages (reconnect or not) belongs to their view.
            for _, one in sent:
                await library.aftermath(one)
        finally:
            for task in follow:
                task.cancel()
            # Interrupted or not, every message emitted so far is recorded with what was seen.
            for item, one in sent:
                obs, view = library.observe(one, final=True)
                self.record_view(item, obs, view)

    def record_view(self, item: ReplayMessage, obs: Observation, view: ClientView) -> None:
        self.record(self.lane, item, obs, view)


def _unit_of(server: str, transport: Transport) -> LimitUnit | None:
    """What the master's limit counts on the lane's transport (None: a library's default transport)."""
    server_rule = wire_rule(server, transport)
    return server_rule.unit if server_rule is not None else None


def _cell(lane: _Lane, settings: ReplaySettings, item: ReplayMessage, obs: Observation,
          view: ClientView | None = None) -> Cell:
    if view is not None:
        return library_cell(
            obs, view, type=item.type, transport=lane.transport, limit=lane.info.limit, encoder=settings.encoder,
            master=lane.info.server, label=item.label, json_bytes=item.json_bytes, js_length=item.js_length,
            index=item.index, message_id=item.message_id,
        )
    server = lane.info.server
    predicted = None
    if server != "live" and not item.encode_error:
        predicted = predicts_delivered(server, lane.transport, lane.info.limit, n_bytes=obs.body_bytes,
                                       n_chars=obs.body_chars)
    return judged_cell(
        obs, type=item.type, transport=lane.transport, limit=lane.info.limit, encoder=settings.encoder,
        master=server, label=item.label, json_bytes=item.json_bytes, js_length=item.js_length,
        predicted_delivered=predicted, index=item.index, message_id=item.message_id, limit_unit=lane.info.limit_unit,
    )


async def _run_lanes(lanes: list[_Lane], settings: ReplaySettings, capture: _Capture, record: CellFn,
                     on_planned: Callable[[int], None] | None, *, with_digest: bool) -> None:
    if on_planned is not None:
        on_planned(capture.file.count * len(settings.scales) * len(lanes))

    def record_cell(lane: _Lane, item: ReplayMessage, obs: Observation, view: ClientView | None = None) -> None:
        record(_cell(lane, settings, item, obs, view))

    async def produce() -> None:
        for item in _items(settings, capture, with_digest):
            for lane in lanes:
                await lane.queue.put(item)
        for lane in lanes:
            await lane.queue.put(None)

    async def drive(lane: _Lane) -> None:
        driver = _LibraryDriver if lane.library is not None else _Driver
        try:
            await driver(lane, settings, capture.namespace, record_cell).run()
        finally:
            await lane.connection.close()
            if lane.library is not None:
                await lane.library.client.close()

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for lane in lanes:
                group.create_task(drive(lane))
    except BaseExceptionGroup as group_error:
        # One line for the user: the first error imdiag knows how to report, else the first.
        raise reported(group_error) from None


async def _upgrade_offered(endpoint: Endpoint, session: aiohttp.ClientSession, lanes: Sequence[_Lane],
                           timeout: float) -> bool:
    """Does polling work on this URL and offer the websocket upgrade? The polling lane's handshake
    tells, else a bare polling handshake (no namespace)."""
    polling = next((lane for lane in lanes if lane.transport is Transport.POLLING), None)
    if polling is not None and polling.connection.advertised_max_payload is not None:
        return "websocket" in polling.connection.upgrades
    try:
        conn = await open_connection(endpoint, Transport.POLLING, session, timeout, join=False)
    except TargetError:
        return False
    await conn.close()
    return conn.open_info is not None and "websocket" in conn.open_info.upgrades


StartedFn = Callable[[Sequence[MasterInfo]], None] | None


async def _replay_live(settings: ReplaySettings, capture: _Capture, record: CellFn,
                       on_planned: Callable[[int], None] | None, on_started: StartedFn) -> list[MasterInfo]:
    assert settings.url is not None
    endpoint = Endpoint.from_url(settings.url, path=settings.path_prefix, headers=tuple(settings.headers),
                                 auth_json=settings.auth_json, insecure=settings.insecure)
    capture.namespace = endpoint.namespace
    async with client_session() as session:
        lanes, refusals = [], []
        for transport in settings.transports:
            connection = LaneConnection(endpoint, transport, session, settings.timeout_s)
            # Connect first: an unreachable URL is one error line before anything is sent; a path
            # that refuses one transport (no sticky sessions, a blocked upgrade) is judged per message.
            refusal = None
            try:
                await connection.get()
            except HandshakeRefused as exc:
                refusal = exc
            advertised = connection.advertised_max_payload
            if advertised is None and refusal is not None and refusal.open_info is not None:
                advertised = refusal.open_info.max_payload
            info = MasterInfo("live", redact_url(settings.url), advertised or 0, {}, endpoint.namespace,
                              settings.path_prefix, transport, advertised)
            lanes.append(_Lane(info, connection, ProtocolWitness(endpoint.namespace)))
            refusals.append(refusal)
        if on_started is not None:
            on_started([lane.info for lane in lanes])
        offered = await _upgrade_offered(endpoint, session, lanes, settings.timeout_s)
        for lane, refusal in zip(lanes, refusals):
            lane.upgrade_offered = offered
            if refusal is not None and judge(lane.refused(refusal)).cause not in PATH_CAUSES:
                raise refusal  # not the path's fault: the target cannot be replayed to
        await _run_lanes(lanes, settings, capture, record, on_planned, with_digest=False)
    return [lane.info for lane in lanes]


def _probe_settings(settings: ReplaySettings) -> ProbeSettings:
    assert settings.url is not None
    return ProbeSettings(url=settings.url, path=settings.path_prefix, event=settings.event,
                         auth_json=settings.auth_json, headers=tuple(settings.headers), insecure=settings.insecure,
                         timeout_s=settings.timeout_s)


async def _pin_path_limits(settings: ReplaySettings, runs: Sequence[MasterInfo],
                           cells: Sequence[Cell]) -> tuple[tuple[PathLimit, ...], list[str]]:
    """Live: where something other than the master refused a message as too large (a proxy's body
    limit), the path's limit is pinned to the byte with probe frames, between the largest message
    that passed and the smallest refused: fixes A and B rest on it. Returns the limits and notes."""
    path: list[PathLimit] = []
    notes = []
    for info in runs:
        if info.transport is None:
            continue
        lane = [c for c in cells if c.transport is info.transport]
        refused = sorted((c for c in lane if c.cause in SIZE_CAUSES), key=lambda c: c.wire_bytes)
        if not refused or refused[0].refused_by is Refuser.MASTER or any(c.cause in PATH_CAUSES for c in lane):
            continue  # nothing refused, the master's own limit refused first, or the path is broken anyway
        smallest = refused[0].wire_bytes
        passed = [c.wire_bytes for c in lane if c.wire_bytes < smallest
                  and (c.delivered or c.observed.barrier is Barrier.PARSED)]
        advertised = info.advertised_max_payload
        limit = await pin_limit(_probe_settings(settings), info.transport, advertised, max(passed, default=0), smallest)
        found = list(path_limits([limit], advertised))
        server = refused[0].observed.http_server
        if not found and refused[0].refused_by is Refuser.PROXY:
            # The pin found the master's own limit below the proxy's: the proxy's is only known to
            # be under the size it refused, which is still too small for that message.
            found.append(PathLimit(smallest - 1, body_limit_setting(server),
                                   f"{info.transport.value}, a proxy ({server or 'no Server header'})", exact=False))
        path.extend(found)
        refusal = refusal_of(refused[0].observed)
        party = refusal.party() if refusal is not None else "the path"
        for item in found:
            if limit.stopped:
                pinned = f"the path's limit could not be pinned: {limit.stopped}"
            elif item.exact:
                pinned = (f"the path's limit, pinned with {len(limit.trials)} probe frame(s) ({PROBE_TYPE}): "
                          f"{item.bytes:,} B")
            else:
                pinned = f"the master's own limit is lower ({limit.max_accepted or 0:,} B), the proxy's is not known"
            notes.append(f"{info.transport.value}: {party} refused {smallest:,} B (the master's maxPayload is "
                         f"{advertised or 0:,} B); {pinned}")
    return tuple(path), notes


async def _replay_masters(settings: ReplaySettings, capture: _Capture, record: CellFn,
                          on_planned: Callable[[int], None] | None, on_started: StartedFn) -> list[MasterInfo]:
    masters: list[tuple[Master, Transport]] = [
        (new_master(server, limit, capture.namespace, **master_options(server, settings.csr)), transport)
        for server in settings.masters for limit in settings.limits for transport in settings.transports
    ]
    async with started([m for m, _ in masters]), client_session() as session:
        lanes = [
            _Lane(replace(master.info, transport=transport, limit_unit=_unit_of(master.server, transport)),
                  LaneConnection.to_master(master.info, transport, session, settings.timeout_s),
                  LedgerWitness(master.ledger, settings.encoder, settings.event, capture.namespace))
            for master, transport in masters
        ]
        if settings.client is not ClientKind.IMDIAG:
            libraries = await open_library_lanes(
                settings.client, [(m, t) for m, t in masters], session, event=settings.event,
                timeout=settings.timeout_s)
            for lane, library in zip(lanes, libraries):
                lane.library = library
                lane.info = replace(lane.info, advertised_max_payload=library.advertised_max_payload)
        if on_started is not None:
            on_started([lane.info for lane in lanes])
        await _run_lanes(lanes, settings, capture, record, on_planned, with_digest=True)
    return [replace(lane.info, advertised_max_payload=lane.info.advertised_max_payload
                    or lane.connection.advertised_max_payload) for lane in lanes]


async def run_replay(
    settings: ReplaySettings,
    cells: list[Cell],
    *,
    on_cell: CellFn | None = None,
    on_planned: Callable[[int], None] | None = None,
    on_started: Callable[[Sequence[MasterInfo]], None] | None = None,
) -> Report:
    """Replay the capture on every lane; cells are appended to ``cells`` as they come, and
    ``on_started`` names the masters once they are up, so a caller interrupted midway still
    holds what was measured and against what."""
    started_at = time.monotonic()
    file = open_capture(settings.path)
    # The namespace as the masters will read it from the sender's frames (lone surrogates: U+FFFD).
    capture = _Capture(file, wire_namespace(capture_namespace(file, settings.namespace), settings.encoder))

    def record(cell: Cell) -> None:
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)

    replay = _replay_live if settings.url is not None else _replay_masters
    runs = await replay(settings, capture, record, on_planned, on_started)
    runs.sort(key=lambda r: (r.server, r.limit, r.transport.value if r.transport else ""))
    path, notes = await _pin_path_limits(settings, runs, cells) if settings.url is not None else ((), [])
    return Report(
        command="replay",
        settings={**settings.to_dict(), "namespace": capture.namespace},
        cells=list(cells),
        masters=runs,
        elapsed_s=round(time.monotonic() - started_at, 3),
        details=replay_details(settings, capture, cells, [r.limit for r in runs], path, notes),
    )


def _recommendations(capture: _Capture, cells: Sequence[Cell], limits: Sequence[int],
                     path: Sequence[PathLimit]) -> tuple[Recommendation, ...]:
    if capture.largest is None:
        return ()
    index, type_name, frame = capture.largest
    largest_frame, what = frame, f"message #{index} ({type_name})"
    real = [c for c in cells if c.label in ("replay", "x1")]
    batched = [c for c in real if c.wire_bytes > largest_frame and c.observed.packets_in_body > 1]
    if batched:
        biggest = max(batched, key=lambda c: c.wire_bytes)
        largest_frame = biggest.wire_bytes
        what = f"a POST batching message #{biggest.index} with others"
    lost = [c.wire_bytes for c in real if c.cause is Cause.SERVER_DECODE_ERROR and c.wire_bytes <= c.limit]
    return tuple(recommend(limit, largest_frame, what, capture.profile, lost_under_limit=lost, path=path)
                 for limit in sorted(set(limits)) if limit > 0)


def replay_details(settings: ReplaySettings, capture: _Capture, cells: Sequence[Cell], limits: Sequence[int],
                   path: Sequence[PathLimit] = (), path_notes: Sequence[str] = ()) -> ReplayDetails:
    """The capture, notes and recommendations, for the renderers."""
    notes = [*path_notes_of(cells), *path_notes]
    if settings.timing == "original" and capture.capped_gaps:
        notes.append(
            f"timing: {capture.capped_gaps} gap(s) longer than {settings.max_gap_s:g} s were shortened to "
            f"{settings.max_gap_s:g} s (the longest was {capture.longest_gap:.1f} s); --max-gap changes that"
        )
    file = capture.file
    return ReplayDetails(
        capture=CaptureInfo(str(file.path), file.format, file.count, dict(file.meta)),
        notes=tuple(notes),
        recommendations=_recommendations(capture, cells, limits, path),
    )


__all__ = ["ReplaySettings", "run_replay"]
