"""What a probe of a live master found, as immutable data.

Pure. ``imdiag.runners.probe`` records an ``Observation`` per trial (one fresh connection, one
probe frame, one barrier); ``imdiag.core.judge`` decides it and ``trial()`` turns that into an
accepted / rejected / inconclusive ``Trial``; the per-transport search yields a
``TransportLimit``. The JSON report (``"command": "probe"``) serializes ``ProbeResult`` as is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imdiag.core.errors import ExitCode
from imdiag.core.judge import judge
from imdiag.core.model import PATH_CAUSES, SIZE_CAUSES, Ack, Barrier, Cause, Observation
from imdiag.core.path import StickinessCheck
from imdiag.core.probe_frames import PROBE_TYPE
from imdiag.core.refusal import Refuser, SizeClose
from imdiag.core.sizing import ListProfile, Recommendation
from imdiag.core.urls import redact_url
from imdiag.core.wire import Encoder, LimitUnit, Transport

DEFAULT_MAX_BYTES = 16 * 2**20


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"  # the server parsed the frame: it answered a later packet (or acked)
    REJECTED = "rejected"  # a size signal: close 1009, HTTP 413, or 400 over the advertised maxPayload
    INCONCLUSIVE = "inconclusive"  # no size signal: a timeout, another close, no connection


@dataclass(frozen=True)
class SizedMessage:
    """One message of ``--message FILE``, sized with the wire model; never sent."""

    index: int
    type: str
    event: str
    namespace: str
    encoder: Encoder
    frame_bytes: int  # websocket frame payload == polling body when sent alone
    json_bytes: int
    js_length: int  # JSON.stringify(message).length, the figure people log
    error: str = ""  # the sender could not encode it
    frame_chars: int | None = None  # the frame in characters (code points): what a characters limit counts


@dataclass(frozen=True)
class ProbeSettings:
    url: str  # http(s)://host:port/namespace, as Socket.IO clients take it
    path: str = "/socket.io/"
    event: str = "message"
    transports: tuple[Transport, ...] = (Transport.WEBSOCKET, Transport.POLLING)
    auth_json: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    insecure: bool = False
    timeout_s: float = 10.0
    max_bytes: int = DEFAULT_MAX_BYTES
    probe_type: str = PROBE_TYPE
    ack: bool = False
    encoder: Encoder = Encoder.NODE  # how --message is sized
    message_path: str | None = None
    messages: tuple[SizedMessage, ...] = ()
    message_profile: ListProfile | None = None  # --message: the largest message's growing list, for fix B
    # Start the search at the advertised maxPayload (off only to measure plain bisection).
    guess_advertised: bool = True

    @property
    def namespace(self) -> str:
        return urlsplit(self.url).path.rstrip("/") or "/"


@dataclass(frozen=True)
class Handshake:
    """What the server advertised in its Engine.IO OPEN packet, and the namespace's answer."""

    transport: Transport
    sid: str
    upgrades: tuple[str, ...]
    ping_interval_ms: int
    ping_timeout_ms: int
    max_payload: int | None
    namespace: str
    namespace_sid: str | None  # the Socket.IO sid the namespace gave: it accepted the connection
    seconds: float
    # The private session id socket.io (>= 4.6) sends beside the sid when connectionStateRecovery
    # is on. Kept here, never written to a report: with it a client can take over that session.
    namespace_pid: str | None = None

    @property
    def recovers_sessions(self) -> bool | None:
        """The namespace's CONNECT answer carried a pid; None when the namespace was not joined."""
        if self.namespace_sid is None:
            return None
        return self.namespace_pid is not None


@dataclass(frozen=True)
class Trial:
    """One trial: a frame of ``size`` bytes on a fresh connection, what was seen, and the verdict."""

    size: int
    transport: Transport
    observation: Observation
    outcome: Outcome
    cause: Cause | None
    evidence: str
    # "search", "retry" (of an inconclusive trial), "boundary" (a normal close checked at maxPayload),
    # "unit" (multi-byte text at and over the limit), "readmission" or "ack-control"
    purpose: str = "search"
    seconds: float = 0.0  # the whole trial: connect, send, barrier
    refused_by: Refuser | None = None  # who refused it, when something refused it

    @property
    def chars(self) -> int | None:
        """The frame's characters (code points): its bytes, but for the multi-byte unit trials."""
        return self.observation.body_chars

    @property
    def lost(self) -> bool:
        """--ack: the transport took it and the server parsed it, the master never acknowledged it."""
        return self.outcome is Outcome.ACCEPTED and self.observation.ack is Ack.MISSING

    @property
    def session_survived(self) -> bool:
        """After this frame, the same session still answered a packet."""
        return self.observation.barrier is Barrier.PARSED


def trial(size: int, transport: Transport, obs: Observation, purpose: str = "search", seconds: float = 0.0) -> Trial:
    """Judge one trial: only a size signal rejects, only a parse (or an ack) accepts."""
    verdict = judge(obs)
    if verdict.cause in SIZE_CAUSES:
        outcome = Outcome.REJECTED
    elif verdict.delivered or obs.barrier is Barrier.PARSED:
        outcome = Outcome.ACCEPTED
    else:
        outcome = Outcome.INCONCLUSIVE
    return Trial(size, transport, obs, outcome, verdict.cause, verdict.evidence, purpose, seconds, verdict.refused_by)


@dataclass(frozen=True)
class TransportLimit:
    """The measured limit of one transport: largest accepted and smallest refused frame."""

    transport: Transport
    smallest_frame: int  # the smallest probe frame that can be built
    max_bytes: int  # the largest frame the probe was allowed to send
    trials: tuple[Trial, ...]  # search trials and their retries, in order
    max_accepted: int | None  # largest frame accepted (None: no frame was accepted)
    first_rejected: int | None  # smallest frame refused (None: none up to max_bytes)
    readmission: Trial | None = None  # a small probe on a new connection after a refusal
    ack_control: Trial | None = None  # --ack and no ack at all: the smallest probe, does it get one?
    seconds: float = 0.0
    stopped: str = ""  # why the search ended before the limit was known to the byte
    # The path's fault that stopped it (session-unknown, upgrade-blocked, proxy-error): the
    # transport is diagnosed, not measured.
    diagnosis: Cause | None = None
    diagnosis_evidence: str = ""
    # What the limit counts, told by multi-byte frames at and over it (``unit_trials``); None when
    # not told (``unit_note`` says why). The ASCII probe frames have as many bytes as characters.
    limit_unit: LimitUnit | None = None
    unit_trials: tuple[Trial, ...] = ()
    unit_note: str = ""
    # A close without 1009 established as this transport's size refusal (reproduced at the boundary)
    size_close: SizeClose | None = None

    @property
    def diagnosed(self) -> bool:
        return self.diagnosis is not None

    @property
    def exact(self) -> bool:
        return not self.stopped and (
            (self.max_accepted is not None and self.first_rejected == self.max_accepted + 1)
            or (self.first_rejected is None and self.max_accepted == self.max_bytes)
            or (self.max_accepted is None and self.first_rejected == self.smallest_frame)
        )

    @property
    def failure(self) -> Trial | None:
        """The refusal of the smallest refused frame: how the server fails beyond its limit."""
        refused = [t for t in self.trials if t.outcome is Outcome.REJECTED and t.size == self.first_rejected]
        return refused[0] if refused else None

    @property
    def refusal_trial(self) -> Trial | None:
        """The trial that shows who refused: the failure beyond the limit, or the trial that diagnosed the path."""
        if self.diagnosis is not None:
            return self.trials[-1] if self.trials else None
        return self.failure

    @property
    def readmitted(self) -> bool | None:
        if self.readmission is None:
            return None
        return self.readmission.outcome is Outcome.ACCEPTED

    @property
    def all_trials(self) -> tuple[Trial, ...]:
        """The search trials, the unit trials, then the readmission and the ack check if they ran."""
        return (*self.trials, *self.unit_trials, *(t for t in (self.readmission, self.ack_control) if t is not None))

    @property
    def acked_sizes(self) -> tuple[int, ...]:
        """--ack: the sizes of the probes the master acknowledged."""
        return tuple(t.size for t in self.all_trials if t.observation.ack is Ack.RECEIVED)

    @property
    def acked(self) -> bool:
        """--ack: the master acknowledged at least one probe on this transport."""
        return bool(self.acked_sizes)

    @property
    def unacknowledged(self) -> tuple[Trial, ...]:
        """--ack: probes the transport took that the master did not acknowledge."""
        return tuple(t for t in self.trials if t.lost)

    @property
    def lost(self) -> tuple[Trial, ...]:
        """Probes lost after the transport: unacknowledged, where a smaller probe was acknowledged."""
        acked = self.acked_sizes
        return tuple(t for t in self.unacknowledged if acked and t.size > min(acked))

    @property
    def ack_check(self) -> Trial | None:
        """--ack, no ack at all: the smallest probe the transport took, on a new connection."""
        for checked in (self.ack_control, self.readmission):
            if checked is not None and checked.outcome is Outcome.ACCEPTED:
                return checked
        return None

    def agrees_with(self, advertised: int | None) -> bool | None:
        """Whether the limit is the advertised maxPayload; None when that was not observed."""
        if self.stopped or self.max_accepted is None or advertised is None:
            return None
        if self.first_rejected is None:  # nothing refused up to --max-bytes: not probed beyond it
            return False if self.max_accepted > advertised else None
        return self.max_accepted == advertised


@dataclass(frozen=True)
class Fit:
    """One message against one transport's measured limit."""

    transport: Transport
    limit: int | None  # the largest accepted frame
    fits: bool | None  # None: the probe could not tell (limit not measured that far)
    headroom: int | None  # limit - the frame's size, in ``unit`` (negative: over by)
    headroom_pct: float | None  # headroom as a share of the limit
    note: str = ""
    unit: LimitUnit = LimitUnit.BYTES  # what the limit counts (bytes where that was not told)

    @property
    def headroom_bytes(self) -> int | None:
        """The headroom, when the limit counts bytes."""
        return self.headroom if self.unit is LimitUnit.BYTES else None


@dataclass(frozen=True)
class MessageVerdict:
    message: SizedMessage
    fits: tuple[Fit, ...]


@dataclass(frozen=True)
class ProbeResult:
    settings: ProbeSettings
    handshake: Handshake
    transports: tuple[TransportLimit, ...]
    messages: tuple[MessageVerdict, ...] = ()
    elapsed_s: float = 0.0
    explanations: Mapping[Transport, str] = field(default_factory=dict)  # one line per transport
    advertised_notes: Mapping[Transport, str] = field(default_factory=dict)
    interrupted: bool = False  # Ctrl-C: what was measured until then
    stickiness: StickinessCheck | None = None  # polling: did one session stay on one master node?
    summary: Mapping[Transport, str] = field(default_factory=dict)  # one line per transport: limit, who, fix
    unit_finding: str = ""  # what the limits count, when one counts characters, and what follows
    recommendations: tuple[Recommendation, ...] = ()  # --message: fixes A and B from the path's limit

    @property
    def stopped(self) -> tuple[TransportLimit, ...]:
        return tuple(t for t in self.transports if t.stopped)

    @property
    def undiagnosed(self) -> tuple[TransportLimit, ...]:
        """Transports whose limit could not be measured and nothing explains why: a tool failure."""
        return tuple(t for t in self.stopped if not t.diagnosed)


def exit_code(result: ProbeResult) -> ExitCode:
    """0 every transport measured; 3 one could not be and nothing explains why; 4 the path breaks
    one (diagnosed, with its fix: a result, not a failure of the tool); 130 interrupted."""
    if result.interrupted:
        return ExitCode.INTERRUPTED
    if result.undiagnosed:
        return ExitCode.TARGET
    return ExitCode.DIAGNOSED if result.stopped else ExitCode.OK


def is_diagnosis(cause: Cause | None) -> bool:
    """A cause that diagnoses the path: the search stops there, the transport is not measured."""
    return cause in PATH_CAUSES


def settings_dict(settings: ProbeSettings) -> dict[str, Any]:
    """The probe's settings as the report shows them: header values and the auth payload may hold
    credentials, so the report names them only."""
    return {
        "url": redact_url(settings.url),
        "path": settings.path,
        "namespace": settings.namespace,
        "event": settings.event,
        "transports": [t.value for t in settings.transports],
        "probe_type": settings.probe_type,
        "ack": settings.ack,
        "max_bytes": settings.max_bytes,
        "timeout_s": settings.timeout_s,
        "insecure": settings.insecure,
        "headers": [name for name, _ in settings.headers],
        "auth": settings.auth_json is not None,
        "encoder": settings.encoder.value,
        "message_file": settings.message_path,
    }
