"""Lanes whose worker is a real client library (``--client node|python``), for the sweep and replay.

The master, its ledger and the judge are the same as with imdiag's own client; what changes is
who sends: the library encodes, batches, buffers and reconnects by itself, and each cell carries
the worker's view (``Cell.client``) beside the master's. The master's advertised maxPayload is
read with imdiag's own handshake (the libraries keep it to themselves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

import aiohttp

from imdiag.clients.lanes import LaneConnection
from imdiag.clients.library import LibraryClient, LibraryLane, LibraryMessage
from imdiag.clients.node_client import NodeClient
from imdiag.clients.python_client import PythonClient
from imdiag.core.catalog import MessageParts
from imdiag.core.judge import judged_cell
from imdiag.core.model import Cell, MasterInfo, Observation
from imdiag.core.plan import Planned, SweepSettings
from imdiag.core.quirks import predicts_delivered, wire_rule
from imdiag.core.wire import Encoder, Transport
from imdiag.core.worker import ClientKind, ClientView
from imdiag.masters.kinds import Master

CLIENTS: dict[ClientKind, type[LibraryClient]] = {ClientKind.NODE: NodeClient, ClientKind.PYTHON: PythonClient}


def new_client(kind: ClientKind, info: MasterInfo, transport: Transport, timeout: float) -> LibraryClient:
    return CLIENTS[kind](info.url, info.namespace, info.path, transport, timeout)


async def advertised_max_payload(info: MasterInfo, transport: Transport, session: aiohttp.ClientSession,
                                 timeout: float) -> int | None:
    """What the master advertises in its Engine.IO handshake, read with imdiag's own client."""
    wire = Transport.POLLING if transport is Transport.DEFAULT else transport
    connection = LaneConnection.to_master(info, wire, session, timeout)
    try:
        await connection.get()
        return connection.advertised_max_payload
    finally:
        await connection.close()


def _carried_by(lane_transport: Transport, view: ClientView) -> Transport:
    """The transport that carried what the library sent (the lane's, when the view does not say)."""
    return Transport(view.transport) if view.transport else lane_transport


def _predicted(server: str, transport: Transport, view: ClientView, obs: Observation, limit: int) -> bool:
    """The wire model's prediction for what the library sent, over the wire ``transport`` that
    carried it (a compressed websocket frame by the server's rule for those), in what its limit counts."""
    written = view.body_bytes is not None
    size = obs.body_bytes if written else view.model_frame_bytes
    compressed = transport is Transport.WEBSOCKET and "permessage-deflate" in view.extensions
    return predicts_delivered(server, transport, limit, n_bytes=size,
                              n_chars=obs.body_chars if written else obs.message_chars, compressed=compressed)


def library_cell(obs: Observation, view: ClientView, *, type: str, transport: Transport, limit: int,
                 encoder: Encoder, master: str, label: str, json_bytes: int, js_length: int,
                 index: int | None = None, message_id: str | None = None) -> Cell:
    carried = _carried_by(transport, view)
    server_rule = wire_rule(master, carried)  # None: the library's default transport, or no rule
    predicted = None
    if server_rule is not None:
        # A master imdiag started refuses as its rule says (python-engineio under ASGI: a close 1000).
        obs = replace(obs, size_close=server_rule.size_close())
        predicted = _predicted(master, carried, view, obs, limit)
    return judged_cell(
        obs, type=type, transport=transport, limit=limit, encoder=encoder, master=master, label=label,
        json_bytes=json_bytes, js_length=js_length, predicted_delivered=predicted,
        index=index, message_id=message_id, client=view, limit_unit=server_rule.unit if server_rule else None,
    )


async def open_library_lanes(kind: ClientKind, masters: Sequence[tuple[Master, Transport]],
                             session: aiohttp.ClientSession, *, event: str, timeout: float) -> list[LibraryLane]:
    """One started client per (master, transport), all at once; if one fails, every client is closed."""
    clients: list[LibraryClient] = []
    try:
        advertised = await asyncio.gather(*(advertised_max_payload(m.info, t, session, timeout) for m, t in masters))
        clients = [new_client(kind, m.info, t, timeout) for m, t in masters]
        outcomes = await asyncio.gather(*(c.start() for c in clients), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    except BaseException:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        raise
    return [LibraryLane(c, m.ledger, event=event, timeout=timeout, advertised_max_payload=a)
            for c, (m, _), a in zip(clients, masters, advertised)]


async def run_sweep_lane(master: Master, transport: Transport, messages: Sequence[tuple[Planned, MessageParts]],
                         settings: SweepSettings, session: aiohttp.ClientSession,
                         on_cell: Callable[[Cell], None]) -> MasterInfo:
    """One sweep lane: each message on a connected client (the library reconnects by itself; one
    that gave up is replaced), its fate and what the client did next, then the next message."""
    info = master.info
    timeout = settings.timeout_s
    advertised = await advertised_max_payload(info, transport, session, timeout)
    client = new_client(settings.client, info, transport, timeout)
    try:
        await client.start()
        lane = LibraryLane(client, master.ledger, event=settings.event, timeout=timeout,
                           advertised_max_payload=advertised)
        for planned, parts in messages:
            await lane.ready()
            # Made whole: the library takes the message as one object.
            sent = await lane.send(LibraryMessage(parts.message().text, parts.id, None, parts.size.frame_bytes,
                                                  model_frame_chars=parts.size.frame_chars))
            await lane.follow(sent)
            await lane.aftermath(sent)
            obs, view = lane.observe(sent)
            on_cell(library_cell(
                obs, view, type=parts.type, transport=transport, limit=master.limit, encoder=settings.encoder,
                master=info.server, label=planned.label, json_bytes=parts.size.json_bytes,
                js_length=parts.size.js_length, message_id=parts.id,
            ))
    finally:
        await client.close()
    return replace(info, transport=transport, advertised_max_payload=advertised)
