"""Probe a live master: its handshake, and per transport its exact frame limit and failure mode.

Each trial opens a fresh connection (handshake and namespace CONNECT), sends one harmless probe
frame of an exact size, then a barrier: a CONNECT to an unused namespace, which a Socket.IO
server answers (CONNECT_ERROR) only after parsing everything sent before it. What comes back
(a close code, the POST's status, the barrier's answer, the master's ack with ``--ack``) is
recorded by ``imdiag.clients.observe`` as an ``Observation``; ``imdiag.core.judge`` decides.
``imdiag.core.search.Bisection`` picks the sizes. One connection at a time; nothing here prints
or sleeps.

Two findings take a few more trials. A close that is no size signal by itself (1000: python-engineio
under ASGI) becomes one only once it reproduces at the boundary: maxPayload accepted, maxPayload + 1
closed the same way twice. And once the limit is known with ASCII frames (as many bytes as
characters), a frame of as many characters holding multi-byte text (more bytes) tells whether the
limit counts bytes or characters: refused, bytes; accepted, and one character more refused,
characters.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import aiohttp

from imdiag.clients.engineio import (
    Endpoint,
    HandshakeRefused,
    NamespaceRefused,
    engineio_path,
    open_connection,
)
from imdiag.clients.observe import Outgoing, ProtocolWitness, observe
from imdiag.core.errors import InputError, TargetError
from imdiag.core.judge import refusal_of
from imdiag.core.model import SIZE_CAUSES, Cause, HttpAnswer, Observation
from imdiag.core.path import STICKINESS_REQUESTS, StickinessCheck, stickiness
from imdiag.core.probe_explain import (
    advertised_note,
    explanations,
    judge_messages,
    probe_recommendations,
    summaries,
    unit_line,
)
from imdiag.core.probe_frames import (
    MULTIBYTE_EXTRA,
    probe_frame_multibyte,
    probe_frame_streamed,
    smallest_probe_chars,
    smallest_probe_frame,
)
from imdiag.core.probe_result import (
    Handshake,
    Outcome,
    ProbeResult,
    ProbeSettings,
    TransportLimit,
    Trial,
    is_diagnosis,
    trial,
)
from imdiag.core.quirks import RULES
from imdiag.core.refusal import WS_MESSAGE_TOO_BIG, Refuser, SizeClose, web_server_limit
from imdiag.core.search import Bisection, max_trials
from imdiag.core.urls import redact_url
from imdiag.core.wire import EIO_PONG, LimitUnit, OpenInfo, Streamed, Transport

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


async def check_stickiness(endpoint: Endpoint, session: aiohttp.ClientSession, timeout: float,
                           requests: int = STICKINESS_REQUESTS) -> tuple[OpenInfo, StickinessCheck]:
    """One bare polling session (no namespace) and ``requests`` PONG packets on it, one POST each:
    a node that does not know the session answers "Session ID unknown". A PONG is what every
    client sends; engine.io and python-engineio take an unasked one without a word."""
    conn = await open_connection(endpoint, Transport.POLLING, session, timeout, join=False)
    answers: list[HttpAnswer | None] = []
    errors = 0
    try:
        for _ in range(requests):
            sent = await conn.send([EIO_PONG.encode()])
            if sent.http_status is None:
                errors += 1
                break  # not answered: no more requests to a server that does not answer
            answers.append(None if sent.ok else HttpAnswer("POST", sent.http_status, sent.http_server, sent.http_body))
    finally:
        await conn.close()
    assert conn.open_info is not None
    return conn.open_info, stickiness(answers, errors)


@dataclass(frozen=True)
class _Joined:
    """What joining the namespace answered: the namespace's sid, and its pid (session recovery on)."""

    sid: str | None = None
    pid: str | None = None


def _handshake_of(info: OpenInfo, transport: Transport, namespace: str, joined: _Joined, start: float) -> Handshake:
    return Handshake(
        transport=transport, sid=info.sid, upgrades=info.upgrades, ping_interval_ms=info.ping_interval_ms,
        ping_timeout_ms=info.ping_timeout_ms, max_payload=info.max_payload, namespace=namespace,
        namespace_sid=joined.sid, seconds=time.monotonic() - start, namespace_pid=joined.pid,
    )


async def _join(endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession,
                timeout: float) -> tuple[OpenInfo, _Joined]:
    """Handshake and namespace CONNECT over ``transport``: the OPEN packet and the namespace's answer."""
    try:
        conn = await open_connection(endpoint, transport, session, timeout)
    except TargetError as exc:
        message = _with_hint(str(exc), endpoint, transport)
        if isinstance(exc, HandshakeRefused):
            raise HandshakeRefused(message, exc.answer, exc.open_info) from None
        if isinstance(exc, NamespaceRefused):
            raise NamespaceRefused(message, exc.reason, exc.open_info) from None
        raise TargetError(message) from None
    try:
        assert conn.open_info is not None
        return conn.open_info, _Joined(conn.sid, conn.pid)
    finally:
        await conn.close()


async def _handshake(endpoint: Endpoint, settings: ProbeSettings,
                     session: aiohttp.ClientSession) -> tuple[Handshake, StickinessCheck | None]:
    """The master's handshake (over polling when it is probed: only its OPEN lists the upgrades),
    the namespace's answer, and whether polling sessions stick to one node.

    A path that breaks one transport (no sticky sessions, a blocked upgrade) is a finding, not a
    failure: the namespace is then joined over the other transport, and the broken one diagnosed.
    """
    start = time.monotonic()
    timeout = settings.timeout_s
    if Transport.POLLING not in settings.transports:
        try:
            info, joined_ws = await _join(endpoint, Transport.WEBSOCKET, session, timeout)
            return _handshake_of(info, Transport.WEBSOCKET, endpoint.namespace, joined_ws, start), None
        except HandshakeRefused as refused:
            # Does polling work on this URL and offer the upgrade? Then the upgrade is what is blocked.
            try:
                info, _ = await check_stickiness(endpoint, session, timeout, requests=0)
            except TargetError:
                raise refused from None
            if "websocket" not in info.upgrades:
                raise refused from None
            return _handshake_of(info, Transport.POLLING, endpoint.namespace, _Joined(), start), None
    broken: HandshakeRefused | None = None
    joined = _Joined()
    try:
        info, joined = await _join(endpoint, Transport.POLLING, session, timeout)
    except HandshakeRefused as exc:
        if exc.open_info is None:  # not even the OPEN came: nothing to diagnose
            raise
        info, broken = exc.open_info, exc  # the session broke after its OPEN: the path's fault?
    _, check = await check_stickiness(endpoint, session, timeout)
    if broken is not None and Transport.WEBSOCKET in settings.transports:
        try:
            _, joined = await _join(endpoint, Transport.WEBSOCKET, session, timeout)
            broken = None
        except HandshakeRefused:
            pass
    if broken is not None and not check.broken:
        raise broken
    return _handshake_of(info, Transport.POLLING, endpoint.namespace, joined, start), check


def _with_hint(message: str, endpoint: Endpoint, transport: Transport) -> str:
    """Name the URL in every handshake error and say which option is likely wrong."""
    where = f"{redact_url(endpoint.url)}{engineio_path(endpoint.path)}"
    if where not in message:
        message = f"{where} ({transport.value}): {message}"
    if "refused the connection" in message:
        message += " (check the namespace in --url, and --auth if the master checks one)"
    elif "HTTP 404" in message or "no answer within" in message:
        # A Node http server without a handler for a path never answers it at all.
        message += " (check --path; Socket.IO's default is /socket.io/)"
    return message


@dataclass(frozen=True)
class _Frame:
    """A trial's probe frame: ``size`` ASCII bytes, or ``size`` characters holding ``multibyte``
    Chinese characters (a unit trial)."""

    size: int
    multibyte: int = 0

    def make(self, settings: ProbeSettings, probe_id: str, namespace: str, ack_id: int | None) -> Streamed:
        if self.multibyte:
            return probe_frame_multibyte(self.size, self.multibyte, probe_type=settings.probe_type, probe_id=probe_id,
                                         event=settings.event, namespace=namespace, ack_id=ack_id)
        return probe_frame_streamed(self.size, probe_type=settings.probe_type, probe_id=probe_id, event=settings.event,
                                    namespace=namespace, ack_id=ack_id)


async def _trial(endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession, settings: ProbeSettings,
                 wanted: _Frame, probe_id: str, advertised: int | None, offered: bool, purpose: str,
                 size_close: SizeClose | None = None) -> Trial:
    """One trial: fresh connection, one probe frame, the barrier, close. ``offered``: the polling
    handshake on this URL offers the websocket upgrade; ``size_close``: a close established as
    this transport's size refusal."""
    start = time.monotonic()
    ack_id = ACK_ID if settings.ack else None
    frame = wanted.make(settings, probe_id, endpoint.namespace, ack_id)
    try:
        conn = await open_connection(endpoint, transport, session, settings.timeout_s)
    except TargetError as exc:
        obs = Observation(
            body_bytes=frame.size, body_chars=frame.chars, connect_error=str(exc), advertised_max_payload=advertised,
            ended_by=exc.answer if isinstance(exc, HandshakeRefused) else None,
            upgrade_offered=transport is Transport.WEBSOCKET and offered,
        )
        return trial(frame.size, transport, obs, purpose, time.monotonic() - start)
    try:
        witness = ProtocolWitness(endpoint.namespace)
        (obs,) = await observe(conn, [Outgoing(frame, ack_id=ack_id)], witness, settings.timeout_s,
                               size_close=size_close)
        return trial(frame.size, transport, obs, purpose, time.monotonic() - start)
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
    unit_trials: list[Trial] = field(default_factory=list)
    finished: bool = False  # the search is over (the unit, readmission or ack check may still run)
    stopped: str = ""  # why it ended early, once finished
    size_close: SizeClose | None = None  # a normal close established as the size refusal
    limit_unit: LimitUnit | None = None
    unit_note: str = ""

    def limit(self, stopped: str, readmission: Trial | None = None, ack_control: Trial | None = None,
              diagnosis: Trial | None = None) -> TransportLimit:
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
            diagnosis=diagnosis.cause if diagnosis is not None else None,
            diagnosis_evidence=diagnosis.evidence if diagnosis is not None else "",
            limit_unit=self.limit_unit,
            unit_trials=tuple(self.unit_trials),
            unit_note=self.unit_note,
            size_close=self.size_close,
        )


@dataclass
class ProbeProgress:
    """What a probe has measured so far; ``partial_result`` turns it into a result after Ctrl-C."""

    start: float = field(default_factory=time.monotonic)
    handshake: Handshake | None = None
    limits: list[TransportLimit] = field(default_factory=list)
    current: _Search | None = None
    stickiness: StickinessCheck | None = None


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
    return _result(settings, progress.handshake, limits, progress.start, progress.stickiness, interrupted=True)


def _result(settings: ProbeSettings, handshake: Handshake, limits: list[TransportLimit], start: float,
            check: StickinessCheck | None, *, interrupted: bool = False) -> ProbeResult:
    return ProbeResult(
        settings=settings,
        handshake=handshake,
        transports=tuple(limits),
        messages=judge_messages(settings.messages, limits),
        elapsed_s=time.monotonic() - start,
        explanations=explanations(limits, ack=settings.ack),
        advertised_notes={limit.transport: advertised_note(limit, handshake.max_payload) for limit in limits},
        interrupted=interrupted,
        stickiness=check,
        summary=summaries(limits, handshake, check),
        unit_finding=unit_line(limits),
        recommendations=probe_recommendations(settings.messages, settings.message_profile, limits, handshake),
    )


def upgrade_offered(handshake: Handshake) -> bool:
    """The polling handshake on this URL worked and offered the websocket upgrade."""
    return handshake.transport is Transport.POLLING and "websocket" in handshake.upgrades


def _not_measured(transport: Transport, smallest: int, settings: ProbeSettings, check: StickinessCheck) -> TransportLimit:
    """Polling without sticky sessions: every trial would be luck. Diagnosed, not measured."""
    return TransportLimit(
        transport=transport, smallest_frame=smallest, max_bytes=settings.max_bytes, trials=(), max_accepted=None,
        first_rejected=None, stopped=f"not measured: {check.finding()}", diagnosis=Cause.SESSION_UNKNOWN,
        diagnosis_evidence=check.evidence,
    )


def _normal_close(result: Trial) -> int | None:
    """The close code of a trial that ended with a close that is no size signal by itself."""
    obs = result.observation
    if result.outcome is not Outcome.INCONCLUSIVE or obs.http_status is not None or obs.connect_error:
        return None
    code = obs.close_code
    return code if code is not None and code != WS_MESSAGE_TOO_BIG else None


def _refusers_with(code: int) -> str:
    """Who is known to refuse a frame over its limit with this close code (the server rules)."""
    names = sorted({r.refuser for r in RULES.values() if r.close == code and r.refuser})
    return " / ".join(names) or "the master"


class _Measurement:
    """One transport's search to the byte, then what its limit counts; trials one at a time."""

    def __init__(self, endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession,
                 settings: ProbeSettings, advertised: int | None, offered: bool, state: _Search):
        self.endpoint, self.transport, self.session, self.settings = endpoint, transport, session, settings
        self.advertised, self.offered, self.state = advertised, offered, state
        self._ids = itertools.count(1)

    async def run(self, frame: _Frame | int, purpose: str, size_close: SizeClose | None = None) -> Trial:
        wanted = frame if isinstance(frame, _Frame) else _Frame(frame)
        probe_id = _probe_id(self.transport, next(self._ids) % 1000)  # fixed width: sizes stay exact
        result = await _trial(self.endpoint, self.transport, self.session, self.settings, wanted, probe_id,
                              self.advertised, self.offered, purpose, size_close or self.state.size_close)
        if purpose == "unit":
            self.state.unit_trials.append(result)
        elif purpose not in ("readmission", "ack-control"):
            self.state.trials.append(result)
        return result

    async def normal_close_refusal(self, size: int, code: int) -> bool:
        """A close ``code`` at ``size``, twice: a size refusal only if it reproduces at the boundary,
        consistent with the advertised maxPayload (maxPayload accepted, maxPayload + 1 closed with
        ``code`` twice). Runs what is missing of those trials; True once established, and then every
        trial closed so is judged again as the refusal it is."""
        advertised, search = self.advertised, self.state.search
        if advertised is None or size <= advertised or not search.lo < advertised < search.hi:
            return False
        if search.result.max_accepted < advertised:
            at = await self.run(advertised, "boundary")
            if at.outcome is not Outcome.ACCEPTED:
                return False
            search.record(advertised, True)
        if size != advertised + 1:
            for _ in range(2):
                if _normal_close(await self.run(advertised + 1, "boundary")) != code:
                    return False
            search.record(advertised + 1, False)
        evidence = (f"reproduced at the boundary: {advertised:,} B accepted, {advertised + 1:,} B closed with {code} "
                    f"twice, at the advertised maxPayload {advertised:,} B")
        # In bytes until the unit is told: the ASCII probe frames have as many bytes as characters.
        self.state.size_close = SizeClose(code, LimitUnit.BYTES, _refusers_with(code), evidence)
        self._judge_again(lambda t: _normal_close(t) == code)
        return True

    def _judge_again(self, closed: Callable[[Trial], bool]) -> None:
        """The search trials ``closed`` selects, judged again with the established size close."""
        trials = self.state.trials
        for i, t in enumerate(trials):
            if closed(t):
                trials[i] = trial(t.size, t.transport, replace(t.observation, size_close=self.state.size_close),
                                  t.purpose, t.seconds)

    async def find_unit(self) -> None:
        """After the limit L was found with ASCII frames: a frame of L characters that holds
        multi-byte text (more bytes than L). Refused the way L + 1 was: the limit counts bytes.
        Accepted: a frame of L + 1 such characters must be refused, and the limit counts characters."""
        state, limit = self.state, self.state.limit("")
        largest, failure = limit.max_accepted, limit.failure
        if largest is None or failure is None or not limit.exact:
            state.unit_note = "not told: the limit was not measured to the byte"
            return
        settings = self.settings
        head = smallest_probe_chars(probe_type=settings.probe_type, probe_id=_probe_id(self.transport, 0),
                                    event=settings.event, namespace=self.endpoint.namespace,
                                    ack_id=ACK_ID if settings.ack else None)
        # Enough multi-byte characters that the frame is well over L in bytes, within --max-bytes.
        multibyte = min(largest - head, largest // 4, (settings.max_bytes - largest - 1) // MULTIBYTE_EXTRA)
        if multibyte < 1:
            state.unit_note = f"not told: no multi-byte frame fits under --max-bytes {settings.max_bytes:,} B"
            return
        refused_by = failure.refused_by
        at = await self.run(_Frame(largest, multibyte), "unit")
        if at.outcome is Outcome.REJECTED and at.refused_by is refused_by:
            state.limit_unit = LimitUnit.BYTES
            state.unit_note = (f"a frame of {largest:,} characters holding {multibyte:,} Chinese ones ({at.size:,} B) "
                               f"was refused as {largest + 1:,} B was: the limit counts bytes")
            return
        if at.outcome is not Outcome.ACCEPTED:
            state.unit_note = f"not told: the multi-byte frame of {largest:,} characters ({at.size:,} B): {at.evidence}"
            return
        # It took more bytes than its limit: only characters can be counted. One more is refused?
        counted = replace(state.size_close, unit=LimitUnit.CHARACTERS) if state.size_close else None
        over = await self.run(_Frame(largest + 1, multibyte), "unit", counted)
        if over.outcome is Outcome.REJECTED and over.cause in SIZE_CAUSES:
            state.limit_unit, state.size_close = LimitUnit.CHARACTERS, counted
            self._judge_again(lambda t: t.observation.size_close is not None)  # their evidence in characters
            state.unit_note = (f"a frame of {largest:,} characters holding {multibyte:,} Chinese ones ({at.size:,} B) "
                               f"was accepted, one of {largest + 1:,} characters ({over.size:,} B) refused: the limit "
                               f"counts characters")
            return
        state.unit_note = (f"not told: {at.size:,} B of {largest:,} characters were accepted, and {over.size:,} B of "
                           f"{largest + 1:,} characters: {over.evidence}")

    def hint(self, result: Trial) -> None:
        """A web server that names its own limit in its close reason (uvicorn): try that size next."""
        refusal = refusal_of(result.observation) if result.outcome is Outcome.REJECTED else None
        named = web_server_limit(refusal.body) if refusal is not None and refusal.by is Refuser.WEB_SERVER else None
        if named is not None:
            self.state.search.hint(named[1])


async def _measure(endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession,
                   settings: ProbeSettings, advertised: int | None, offered: bool, smallest: int,
                   progress: ProbeProgress, *, lo: int | None = None, unit: bool = True) -> TransportLimit:
    """The transport's limit, to the byte, and (``unit``) what it counts. ``lo``: a size already known
    to pass (the search starts above it)."""
    guess = advertised if settings.guess_advertised and lo is None else None
    search = Bisection(max(smallest - 1, lo or 0), settings.max_bytes, guess=guess)
    state = progress.current = _Search(transport, smallest, settings.max_bytes, search)
    measurement = _Measurement(endpoint, transport, session, settings, advertised, offered, state)
    stopped = ""
    diagnosis: Trial | None = None

    for _ in range(max_trials(search.lo, search.hi)):  # the machine's own bound; a guard, not a wait
        size = search.next_size()
        if size is None:
            break
        result = await measurement.run(size, "search")
        if result.outcome is Outcome.INCONCLUSIVE and not is_diagnosis(result.cause):
            first = result
            result = await measurement.run(size, "retry")  # once: a second silence is an answer, not bad luck
            code = _normal_close(first)
            if code is not None and _normal_close(result) == code and await measurement.normal_close_refusal(size, code):
                result = next(t for t in reversed(state.trials) if t.size == size)  # judged again: refused
        if result.outcome is Outcome.INCONCLUSIVE:
            if is_diagnosis(result.cause):  # the path's fault, not the size's: diagnosed, never measured from it
                diagnosis = result
                stopped = f"not measured: {result.cause.value if result.cause else ''}: {result.evidence}"
            else:
                stopped = f"the {size:,} B trial was inconclusive twice: {result.evidence}"
            break
        search.record(size, result.outcome is Outcome.ACCEPTED)
        measurement.hint(result)
    found = search.result
    if found.contradiction:
        stopped = f"the server does not behave like one size limit: {found.contradiction}"
    elif not stopped and not found.done:
        stopped = f"no answer after {found.trials} trials"
    state.finished, state.stopped = True, stopped
    if unit and not stopped:
        await measurement.find_unit()
    readmission = None
    if any(t.outcome is Outcome.REJECTED for t in state.trials):
        # Does the server let the client back in after refusing it? A new connection, a small probe.
        readmission = await measurement.run(smallest, "readmission")
    limit = state.limit(stopped, readmission, diagnosis=diagnosis)
    if settings.ack and state.trials and not limit.acked and not limit.readmitted and diagnosis is None:
        # Not one ack: is a probe lost, or does the master not acknowledge this event at all?
        # The smallest probe on a new connection tells which (an accepted readmission already did).
        limit = state.limit(stopped, readmission, await measurement.run(smallest, "ack-control"))
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
        handshake, check = await _handshake(endpoint, settings, session)
        progress.handshake, progress.stickiness = handshake, check
        for transport in settings.transports:
            if transport is Transport.POLLING and check is not None and check.broken:
                progress.limits.append(_not_measured(transport, smallest[transport], settings, check))
                continue
            await _measure(endpoint, transport, session, settings, handshake.max_payload, upgrade_offered(handshake),
                           smallest[transport], progress)
    return _result(settings, handshake, progress.limits, progress.start, check)


async def pin_limit(settings: ProbeSettings, transport: Transport, advertised: int | None, accepted: int,
                    refused: int) -> TransportLimit:
    """The limit between a size seen to pass and one seen refused (a replay saw both), to the byte:
    bisection with probe frames, never larger than ``refused``."""
    settings = replace(settings, max_bytes=refused, transports=(transport,))
    smallest = smallest_frame(settings, transport)
    endpoint = endpoint_for(settings)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS)) as session:
        return await _measure(endpoint, transport, session, settings, advertised, False, smallest, ProbeProgress(),
                              lo=max(accepted, smallest - 1), unit=False)
