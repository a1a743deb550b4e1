"""What a probe of a live master found, as immutable data, and its JSON report form.

Pure. ``imdiag/probe/run.py`` records a ``TrialObservation`` per trial; ``verdicts.classify``
turns it into a ``Trial``; the per-transport search yields a ``TransportLimit``. The JSON
report (``"command": "probe"``) is a direct serialization of ``ProbeResult``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imdiag.model import Cause, MasterRun, Report
from imdiag.probe.frames import PROBE_TYPE
from imdiag.wire import Encoder, Transport

DEFAULT_MAX_BYTES = 16 * 2**20


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"  # the server parsed the frame: it answered a later packet (or acked)
    REJECTED = "rejected"  # close 1009, HTTP 413 or HTTP 400 on the probe itself
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
    # Start the search at the advertised maxPayload (off only to measure plain bisection).
    guess_advertised: bool = True

    @property
    def namespace(self) -> str:
        return urlsplit(self.url).path.rstrip("/") or "/"

    def to_dict(self) -> dict[str, Any]:
        # Header values and the auth payload may hold credentials: the report names them only.
        return {
            "url": self.url,
            "path": self.path,
            "namespace": self.namespace,
            "event": self.event,
            "transports": [t.value for t in self.transports],
            "probe_type": self.probe_type,
            "ack": self.ack,
            "max_bytes": self.max_bytes,
            "timeout_s": self.timeout_s,
            "insecure": self.insecure,
            "headers": [name for name, _ in self.headers],
            "auth": self.auth_json is not None,
            "encoder": self.encoder.value,
            "message_file": self.message_path,
        }


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport.value,
            "sid": self.sid,
            "upgrades": list(self.upgrades),
            "ping_interval_ms": self.ping_interval_ms,
            "ping_timeout_ms": self.ping_timeout_ms,
            "max_payload": self.max_payload,
            "namespace": self.namespace,
            "namespace_accepted": True,
            "namespace_sid": self.namespace_sid,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class TrialObservation:
    """Everything seen in one trial: one fresh connection, one probe frame, one barrier."""

    size: int
    transport: Transport
    connect_error: str = ""  # the trial's connection could not be opened
    http_status: int | None = None  # polling: the status of the POST that carried the probe
    http_body: str = ""
    send_error: str = ""  # raised while the frame was written
    close_code: int | None = None  # websocket close code from the server
    close_reason: str = ""
    close_error: str = ""
    closed: bool = False  # the connection ended (by the server) before we closed it
    barrier: str = "unsent"  # "answered", "closed", "timeout", "unsent"
    barrier_answer: str = ""  # what the server answered to the barrier, e.g. CONNECT_ERROR 'Invalid namespace'
    ack: str = "not-asked"  # "received", "missing", "not-asked"
    advertised_max_payload: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in self.__dict__.items()
                if v not in (None, "", False) or k in ("barrier", "size")}


@dataclass(frozen=True)
class Trial:
    observation: TrialObservation
    outcome: Outcome
    cause: Cause | None
    evidence: str
    lost: bool = False  # --ack: the transport took it, the master never acknowledged it
    purpose: str = "search"  # "search", "retry" (of an inconclusive trial), "readmission" or "ack-control"

    @property
    def size(self) -> int:
        return self.observation.size

    @property
    def session_survived(self) -> bool:
        """After this frame, the same session still answered a packet."""
        return self.observation.barrier == "answered"

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "purpose": self.purpose,
            "outcome": self.outcome.value,
            "cause": self.cause.value if self.cause else None,
            "evidence": self.evidence,
            "lost": self.lost,
            "seconds": round(self.observation.seconds, 4),
            "observed": self.observation.to_dict(),
        }


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
    def readmitted(self) -> bool | None:
        if self.readmission is None:
            return None
        return self.readmission.outcome is Outcome.ACCEPTED

    @property
    def all_trials(self) -> tuple[Trial, ...]:
        """The search trials, then the readmission and the ack check if they ran."""
        return (*self.trials, *(t for t in (self.readmission, self.ack_control) if t is not None))

    @property
    def acked_sizes(self) -> tuple[int, ...]:
        """--ack: the sizes of the probes the master acknowledged."""
        return tuple(t.size for t in self.all_trials if t.observation.ack == "received")

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
        for trial in (self.ack_control, self.readmission):
            if trial is not None and trial.outcome is Outcome.ACCEPTED:
                return trial
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
    headroom_bytes: int | None  # limit - frame_bytes (negative: over by)
    headroom_pct: float | None  # headroom as a share of the limit
    note: str = ""


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

    @property
    def stopped(self) -> tuple[TransportLimit, ...]:
        return tuple(t for t in self.transports if t.stopped)


# --- the JSON report ---------------------------------------------------------------------------


def _transport_dict(limit: TransportLimit, result: ProbeResult) -> dict[str, Any]:
    failure = limit.failure
    advertised = result.handshake.max_payload
    return {
        "max_accepted_frame_bytes": limit.max_accepted,
        "first_rejected_frame_bytes": limit.first_rejected,
        "exact": limit.exact,
        "trials": len(limit.trials),
        "seconds": round(limit.seconds, 3),
        "failure": None if failure is None else {
            "cause": failure.cause.value if failure.cause else None,
            "evidence": failure.evidence,
            "http_status": failure.observation.http_status,
            "close_code": failure.observation.close_code,
            "close_reason": failure.observation.close_reason,
            "session_survived": failure.session_survived,
        },
        "explanation": result.explanations.get(limit.transport, ""),
        "readmitted": limit.readmitted,
        "readmission_evidence": limit.readmission.evidence if limit.readmission else None,
        "agrees_with_advertised": limit.agrees_with(advertised),
        "advertised_note": result.advertised_notes.get(limit.transport, ""),
        "smallest_probe_frame_bytes": limit.smallest_frame,
        "max_bytes": limit.max_bytes,
        "lost_frame_bytes": [t.size for t in limit.lost],
        "unacknowledged_frame_bytes": [t.size for t in limit.unacknowledged],
        "master_acknowledged": limit.acked if result.settings.ack else None,
        "stopped": limit.stopped or None,
        "trial_log": [t.to_dict() for t in limit.all_trials],
    }


def _verdict_dict(verdict: MessageVerdict) -> dict[str, Any]:
    m = verdict.message
    return {
        "index": m.index,
        "type": m.type,
        "event": m.event,
        "namespace": m.namespace,
        "encoder": m.encoder.value,
        "frame_bytes": m.frame_bytes,
        "json_bytes": m.json_bytes,
        "js_length": m.js_length,
        "error": m.error or None,
        "transports": {
            f.transport.value: {
                "limit": f.limit,
                "fits": f.fits,
                "headroom_bytes": f.headroom_bytes,
                "headroom_pct": None if f.headroom_pct is None else round(f.headroom_pct, 2),
                "note": f.note or None,
            }
            for f in verdict.fits
        },
    }


def to_report(result: ProbeResult) -> Report:
    """The probe as a ``Report`` (``imdiag.report/1``, ``"command": "probe"``)."""
    hs = result.handshake
    masters = [
        MasterRun(
            server="target",
            limit=hs.max_payload if hs.max_payload is not None else (t.max_accepted or 0),
            transport=t.transport,
            url=result.settings.url,
            versions={},
            advertised_max_payload=hs.max_payload,
        )
        for t in result.transports
    ]
    extra = {
        "advertised_max_payload": hs.max_payload,
        "handshake": hs.to_dict(),
        "transports": {t.transport.value: _transport_dict(t, result) for t in result.transports},
        "message_verdicts": [_verdict_dict(v) for v in result.messages],
    }
    return Report(command="probe", settings=result.settings.to_dict(), cells=[], masters=masters,
                  interrupted=result.interrupted, elapsed_s=round(result.elapsed_s, 3), extra=extra)
