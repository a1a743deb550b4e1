"""Run a size sweep: masters at each limit, the reference worker emitting every type to them.

One master per (server, limit, transport), all started at once on ephemeral loopback ports, and
one lane per master sending its messages in ascending size over a reused connection (a new one
only after the master closed the last). Lanes run concurrently. A kind whose servers decode slowly
(python-socketio's stdlib json) has each lane split over identical masters in each of its host
processes, every other message each: one server decodes on one core, and one lane (10 MB,
websocket) is most of a default sweep's decoding. Messages are planned up front
(their sizes are arithmetic) and made as they are written, piece by piece: a lane holds only
the pieces of the frame in flight, and a 16 MB frame the master refuses at its header is never
made whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import aiohttp

from imdiag.clients.lanes import LaneConnection, client_session
from imdiag.clients.observe import LedgerWitness, Outgoing, observe
from imdiag.core.catalog import Catalog, MessageParts
from imdiag.core.errors import reported
from imdiag.core.judge import judged_cell
from imdiag.core.model import Cell, MasterInfo, Report
from imdiag.core.plan import Planned, SweepSettings, plan_for_limit
from imdiag.core.quirks import limit_unit, predicts_delivered, rule
from imdiag.core.wire import LimitUnit, Transport, streamed_event_frame
from imdiag.core.worker import ClientKind
from imdiag.masters.kinds import Master, master_options, new_master, shards_per_lane, started
from imdiag.masters.ledger import Ledger
from imdiag.runners.libraries import run_sweep_lane

MasterFactory = Callable[[str, int, SweepSettings], Master]
CellFn = Callable[[Cell], None]


def make_master(server: str, limit: int, settings: SweepSettings) -> Master:
    """A master of the given server kind ("python", "node" or "asgi") at ``limit``. Each of the
    sweep's messages has an id of its own, by which it is found: the master's ledger is ``by_id``."""
    return new_master(server, limit, settings.namespace, ledger=Ledger(by_id=True),
                      **master_options(server, settings.csr))


def lane_shards(server: str, client: ClientKind, messages: int) -> int:
    """How many identical masters share one lane's messages (every other one each, ascending):
    the kind's ``shards_per_lane``, at most one per message. A library client is a process per
    lane: it keeps one master."""
    if client is not ClientKind.IMDIAG:
        return 1
    return max(1, min(shards_per_lane(server), messages))


@dataclass(frozen=True)
class _Lane:
    master: Master
    transport: Transport
    messages: list[tuple[Planned, MessageParts]]


def limit_units(settings: SweepSettings) -> set[LimitUnit]:
    """What the limits of the sweep's masters count, over its transports."""
    return {limit_unit(server, transport) for server in settings.masters for transport in settings.transports}


PlanKey = tuple[int, LimitUnit]  # a limit, and what it counts


def plan_messages(settings: SweepSettings, catalog: Catalog,
                  plans: dict[PlanKey, list[Planned]]) -> dict[PlanKey, list[tuple[Planned, MessageParts]]]:
    """Per limit and unit, the planned messages (sizes and ids, no bytes yet), ascending by frame size."""
    by_limit: dict[PlanKey, list[tuple[Planned, MessageParts]]] = {}
    for key, plan in plans.items():
        planned_parts = []
        for planned in plan:
            if planned.target is None:
                parts = catalog.natural_parts(
                    planned.type, settings.encoder, event=settings.event, namespace=settings.namespace
                )
            else:
                parts = catalog.sized_parts(planned.type, planned.target, settings.encoder, event=settings.event,
                                            namespace=settings.namespace, unit=planned.unit)
            planned_parts.append((planned, parts))
        planned_parts.sort(key=lambda pm: (pm[1].size.frame_bytes, pm[0].type))
        by_limit[key] = planned_parts
    return by_limit


async def _run_lane(lane: _Lane, settings: SweepSettings, session: aiohttp.ClientSession, on_cell: CellFn) -> MasterInfo:
    """Send the lane's messages; return the master as measured (with its advertised maxPayload)."""
    info = lane.master.info
    limit_rule = rule(info.server, lane.transport)
    witness = LedgerWitness(lane.master.ledger, settings.encoder, settings.event, settings.namespace)
    lane_conn = LaneConnection.to_master(info, lane.transport, session, settings.timeout_s)
    try:
        for planned, message in lane.messages:
            conn = await lane_conn.get()
            size = message.size
            frame = streamed_event_frame(size.json_bytes, message.pieces, encoder=settings.encoder,
                                         event=settings.event, namespace=settings.namespace,
                                         frame_chars=size.frame_chars)
            (obs,) = await observe(conn, [Outgoing(frame, message_id=message.id)], witness, settings.timeout_s,
                                   size_close=limit_rule.size_close())
            on_cell(judged_cell(
                obs, type=message.type, transport=lane.transport, limit=lane.master.limit, encoder=settings.encoder,
                master=info.server, label=planned.label, json_bytes=size.json_bytes, js_length=size.js_length,
                predicted_delivered=predicts_delivered(info.server, lane.transport, lane.master.limit,
                                                       n_bytes=size.frame_bytes, n_chars=size.frame_chars),
                message_id=message.id, limit_unit=limit_rule.unit,
            ))
    finally:
        await lane_conn.close()
    return replace(info, transport=lane.transport, advertised_max_payload=lane_conn.advertised_max_payload,
                   limit_unit=limit_rule.unit)


async def run_sweep(
    settings: SweepSettings,
    cells: list[Cell],
    *,
    master_factory: MasterFactory = make_master,
    on_cell: CellFn | None = None,
    on_planned: Callable[[int], None] | None = None,
    on_lane_done: Callable[[MasterInfo, int], None] | None = None,
    on_started: Callable[[Sequence[MasterInfo]], None] | None = None,
) -> Report:
    """Measure every planned cell on every master; cells are appended to ``cells`` as they come,
    so a caller interrupted midway still holds what was measured."""
    started_at = time.monotonic()
    plans = {(limit, unit): plan_for_limit(settings, limit, unit)
             for limit in settings.limits for unit in sorted(limit_units(settings))}
    counts = {(server, limit, transport): len(plans[(limit, limit_unit(server, transport))])
              for server in settings.masters for limit in settings.limits for transport in settings.transports}
    if on_planned is not None:
        on_planned(sum(counts.values()))

    def record(cell: Cell) -> None:
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)

    shards = {key: lane_shards(key[0], settings.client, count) for key, count in counts.items()}
    # A lane's shards are made one after the other, so each goes to another host (the one that
    # serves the fewest masters).
    masters = {(*key, shard): master_factory(key[0], key[1], settings) for key in counts for shard in range(shards[key])}
    shards_left = Counter(shards)
    runs: list[MasterInfo] = []

    async def lane_task(lane: _Lane, session: aiohttp.ClientSession) -> None:
        if settings.client is ClientKind.IMDIAG:
            run = await _run_lane(lane, settings, session, record)
        else:
            run = await run_sweep_lane(lane.master, lane.transport, lane.messages, settings, session, record)
        runs.append(run)
        key = (run.server, lane.master.limit, lane.transport)
        shards_left[key] -= 1
        if on_lane_done is not None and not shards_left[key]:
            on_lane_done(run, counts[key])

    # Planned in a thread while the masters start: the catalog's items are made meanwhile.
    planning = asyncio.ensure_future(asyncio.to_thread(plan_messages, settings, Catalog(settings.seed), plans))
    try:
        async with started(list(masters.values())), client_session() as session:
            if on_started is not None:
                on_started([replace(master.info, transport=transport) for (_, _, transport, _), master in masters.items()])
            messages = await planning
            # A lane's shards take every other message each (of ``shards``), in ascending size.
            lanes = [_Lane(master, transport, messages[(limit, limit_unit(server, transport))][shard::shards[key]])
                     for (server, limit, transport, shard), master in masters.items()
                     for key in [(server, limit, transport)]]
            # A task group, not gather: cancelled (Ctrl-C), it waits until every lane has closed
            # its client (a Node process each with --client node) before the masters stop.
            try:
                async with asyncio.TaskGroup() as group:
                    for lane in lanes:
                        group.create_task(lane_task(lane, session))
            except BaseExceptionGroup as group_error:
                raise reported(group_error) from None
    finally:
        if not planning.done():
            planning.cancel()
        elif not planning.cancelled():
            planning.exception()  # seen: when the masters did not start, that is the error to report
    runs.sort(key=lambda r: (r.server, r.limit, r.transport.value if r.transport else "", r.url))
    return Report(
        command="size-sweep",
        settings=settings.to_dict(),
        cells=list(cells),
        masters=runs,
        elapsed_s=round(time.monotonic() - started_at, 3),
    )
