"""Probe a live master: its handshake, and per transport its exact frame limit and failure mode.

Each trial opens a fresh connection (handshake and namespace CONNECT), sends one harmless probe
frame of an exact size, then a barrier: a CONNECT to an unused namespace, which a Socket.IO
server answers (CONNECT_ERROR) only after parsing everything sent before it. What comes back
(a close code, the POST's status, the barrier's answer, the master's ack with ``--ack``) is
recorded by ``imdiag.clients.observe`` as an ``Observation``; ``imdiag.core.judge`` decides.
``imdiag.core.search.Bisection`` picks the sizes. One connection at a time; nothing here prints
or sleeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp

from imdiag.clients.engineio import Endpoint, engineio_path, open_connection
from imdiag.clients.observe import Outgoing, ProtocolWitness, observe
from imdiag.core.errors import InputError, TargetError
from imdiag.core.model import Observation
from imdiag.core.probe_explain import advertised_note, explanations, judge_messages
from imdiag.core.probe_frames import probe_frame, smallest_probe_frame
from imdiag.core.probe_result import (
    Handshake,
    Outcome,
    ProbeResult,
    ProbeSettings,
    TransportLimit,
    Trial,
    trial,
)
from imdiag.core.search import Bisection, max_trials
from imdiag.core.wire import Transport

ACK_ID = 1  # every trial is a fresh connection, so one ack id serves them all
# Polling holds a GET and sends a POST: two connections per session, one session at a time.
MAX_CONNECTIONS = 4


def endpoint_for(settings: ProbeSettings) -> Endpoint:
    return Endpoint.from_url(
        settings.url, settings.path, headers=tuple(settings.headers),
        auth_json=settings.auth_json, insecure=settings.insecure,
    )


def _probe_id(transport: Transport, n: int) -> str:
    # Fixed width: every trial's smallest frame is the same, so sizes stay exact.
    return f"{transport.value}-{n:03d}"


async def _handshake(endpoint: Endpoint, settings: ProbeSettings, session: aiohttp.ClientSession) -> Handshake:
    # Over polling the OPEN packet lists the upgrades; a websocket OPEN lists none.
    transport = Transport.POLLING if Transport.POLLING in settings.transports else settings.transports[0]
    start = time.monotonic()
    try:
        conn = await open_connection(endpoint, transport, session, settings.timeout_s)
    except TargetError as exc:
        raise TargetError(_with_hint(str(exc), endpoint, transport)) from None
    try:
        info = conn.open_info
        assert info is not None
        return Handshake(
            transport=transport, sid=info.sid, upgrades=info.upgrades, ping_interval_ms=info.ping_interval_ms,
            ping_timeout_ms=info.ping_timeout_ms, max_payload=info.max_payload, namespace=endpoint.namespace,
            namespace_sid=conn.sid, seconds=time.monotonic() - start,
        )
    finally:
        await conn.close()


def _with_hint(message: str, endpoint: Endpoint, transport: Transport) -> str:
    """Name the URL in every handshake error and say which option is likely wrong."""
    where = f"{endpoint.url}{engineio_path(endpoint.path)}"
    if where not in message:
        message = f"{where} ({transport.value}): {message}"
    if "refused the connection" in message:
        message += " (check the namespace in --url, and --auth if the master checks one)"
    elif "HTTP 404" in message or "no answer within" in message:
        # A Node http server without a handler for a path never answers it at all.
        message += " (check --path; Socket.IO's default is /socket.io/)"
    return message


async def _trial(endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession, settings: ProbeSettings,
                 size: int, probe_id: str, advertised: int | None, purpose: str) -> Trial:
    """One trial: fresh connection, one probe frame of ``size`` bytes, the barrier, close."""
    start = time.monotonic()
    try:
        conn = await open_connection(endpoint, transport, session, settings.timeout_s)
    except TargetError as exc:
        obs = Observation(body_bytes=size, connect_error=str(exc), advertised_max_payload=advertised)
        return trial(size, transport, obs, purpose, time.monotonic() - start)
    try:
        ack_id = ACK_ID if settings.ack else None
        frame = probe_frame(size, probe_type=settings.probe_type, probe_id=probe_id, event=settings.event,
                            namespace=endpoint.namespace, ack_id=ack_id)
        witness = ProtocolWitness(endpoint.namespace)
        (obs,) = await observe(conn, [Outgoing(frame, ack_id=ack_id)], witness, settings.timeout_s)
        return trial(size, transport, obs, purpose, time.monotonic() - start)
    finally:
        await conn.close()


@dataclass
class _Search:
    """One transport's search as it goes: what Ctrl-C can still report."""

    transport: Transport
    smallest: int
    max_bytes: int
    search: Bisection
    start: float = field(default_factory=time.monotonic)
    trials: list[Trial] = field(default_factory=list)
    finished: bool = False  # the search is over (the readmission or ack check may still run)
    stopped: str = ""  # why it ended early, once finished

    def limit(self, stopped: str, readmission: Trial | None = None, ack_control: Trial | None = None) -> TransportLimit:
        found = self.search.result
        return TransportLimit(
            transport=self.transport,
            smallest_frame=self.smallest,
            max_bytes=self.max_bytes,
            trials=tuple(self.trials),
            max_accepted=found.max_accepted if found.max_accepted >= self.smallest else None,
            first_rejected=found.first_rejected,
            readmission=readmission,
            ack_control=ack_control,
            seconds=time.monotonic() - self.start,
            stopped=stopped,
        )


@dataclass
class ProbeProgress:
    """What a probe has measured so far; ``partial_result`` turns it into a result after Ctrl-C."""

    start: float = field(default_factory=time.monotonic)
    handshake: Handshake | None = None
    limits: list[TransportLimit] = field(default_factory=list)
    current: _Search | None = None


def partial_result(settings: ProbeSettings, progress: ProbeProgress) -> ProbeResult | None:
    """The result of an interrupted probe: finished transports, and the one under way with the
    sizes it had bounded so far (never called exact). None if not even the handshake was done."""
    if progress.handshake is None:
        return None
    limits = list(progress.limits)
    current = progress.current
    if current is not None:
        done = len(current.trials)
        interrupted = f"interrupted (Ctrl-C) after {done} trial{'s' * (done != 1)}"
        limits.append(current.limit(current.stopped if current.finished else interrupted))
    return _result(settings, progress.handshake, limits, progress.start, interrupted=True)


def _result(settings: ProbeSettings, handshake: Handshake, limits: list[TransportLimit], start: float, *,
            interrupted: bool = False) -> ProbeResult:
    return ProbeResult(
        settings=settings,
        handshake=handshake,
        transports=tuple(limits),
        messages=judge_messages(settings.messages, limits),
        elapsed_s=time.monotonic() - start,
        explanations=explanations(limits, ack=settings.ack),
        advertised_notes={limit.transport: advertised_note(limit, handshake.max_payload) for limit in limits},
        interrupted=interrupted,
    )


async def _measure(endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession,
                   settings: ProbeSettings, advertised: int | None, smallest: int,
                   progress: ProbeProgress) -> TransportLimit:
    search = Bisection(smallest - 1, settings.max_bytes, guess=advertised if settings.guess_advertised else None)
    state = progress.current = _Search(transport, smallest, settings.max_bytes, search)
    trials = state.trials
    stopped = ""

    async def run_trial(size: int, purpose: str) -> Trial:
        probe_id = _probe_id(transport, len(trials) + 1)
        result = await _trial(endpoint, transport, session, settings, size, probe_id, advertised, purpose)
        if purpose not in ("readmission", "ack-control"):
            trials.append(result)
        return result

    for _ in range(max_trials(search.lo, search.hi)):  # the machine's own bound; a guard, not a wait
        size = search.next_size()
        if size is None:
            break
        result = await run_trial(size, "search")
        if result.outcome is Outcome.INCONCLUSIVE:
            result = await run_trial(size, "retry")  # once: a second silence is an answer, not bad luck
            if result.outcome is Outcome.INCONCLUSIVE:
                stopped = f"the {size:,} B trial was inconclusive twice: {result.evidence}"
                break
        search.record(size, result.outcome is Outcome.ACCEPTED)
    found = search.result
    if found.contradiction:
        stopped = f"the server does not behave like one size limit: {found.contradiction}"
    elif not stopped and not found.done:
        stopped = f"no answer after {found.trials} trials"
    state.finished, state.stopped = True, stopped
    readmission = None
    if any(t.outcome is Outcome.REJECTED for t in trials):
        # Does the server let the client back in after refusing it? A new connection, a small probe.
        readmission = await run_trial(smallest, "readmission")
    limit = state.limit(stopped, readmission)
    if settings.ack and trials and not limit.acked and not limit.readmitted:
        # Not one ack: is a probe lost, or does the master not acknowledge this event at all?
        # The smallest probe on a new connection tells which (an accepted readmission already did).
        limit = state.limit(stopped, readmission, await run_trial(smallest, "ack-control"))
    progress.limits.append(limit)
    progress.current = None
    return limit


def smallest_frame(settings: ProbeSettings, transport: Transport) -> int:
    return smallest_probe_frame(
        probe_type=settings.probe_type, probe_id=_probe_id(transport, 0), event=settings.event,
        namespace=settings.namespace, ack_id=ACK_ID if settings.ack else None,
    )


async def probe(settings: ProbeSettings, progress: ProbeProgress | None = None) -> ProbeResult:
    """Probe the master at ``settings.url``; raise TargetError if it cannot be probed at all.

    ``progress`` (optional) holds what was measured so far, for ``partial_result`` after Ctrl-C.
    """
    progress = progress if progress is not None else ProbeProgress()
    smallest = {t: smallest_frame(settings, t) for t in settings.transports}
    if settings.max_bytes < max(smallest.values()):
        raise InputError(f"--max-bytes {settings.max_bytes:,} B is below the smallest probe frame "
                         f"({max(smallest.values()):,} B)")
    endpoint = endpoint_for(settings)
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        handshake = progress.handshake = await _handshake(endpoint, settings, session)
        for transport in settings.transports:
            await _measure(endpoint, transport, session, settings, handshake.max_payload, smallest[transport], progress)
    return _result(settings, handshake, progress.limits, progress.start)
