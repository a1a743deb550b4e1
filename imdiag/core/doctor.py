"""``imdiag doctor``: the incident's hypotheses, each confirmed or ruled out with evidence.

Pure. The runner gathers what the instruments measured - the probe's result (handshake, the
namespace's answer, the limit per transport and who refused beyond it, sticky sessions, the
upgrade, ``--ack``), one Engine.IO v3 handshake try, the capture sized with the wire model (never
sent), a tap report - and ``diagnose()`` turns them into one ``Hypothesis`` per question:
``confirmed``, ``ruled-out`` or ``unknown``, each with its evidence and next step; then the verdict
in one paragraph and the fixes in numbers. Nothing is judged twice: the probe's trials were
decided by ``imdiag.core.judge``, the refusals by ``imdiag.core.refusal``; this module only says
what they mean for each hypothesis.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from imdiag.core.errors import ExitCode, InputError
from imdiag.core.gate import REPORT_SCHEMA
from imdiag.core.judge import refusal_of
from imdiag.core.model import Cause, HttpAnswer, TypeStats
from imdiag.core.path import STICKY_FIX, UPGRADE_FIX
from imdiag.core.probe_explain import amount, fit, fit_amount, limit_amount, refused_with
from imdiag.core.probe_result import (
    Fit,
    Handshake,
    Outcome,
    ProbeResult,
    ProbeSettings,
    SizedMessage,
    TransportLimit,
)
from imdiag.core.refusal import Refuser, http_refusal
from imdiag.core.sizing import HEADROOM
from imdiag.core.urls import redact_url
from imdiag.core.wire import OpenInfo, Transport


class Verdict(str, enum.Enum):
    CONFIRMED = "confirmed"
    RULED_OUT = "ruled-out"
    UNKNOWN = "unknown"  # not testable here: the next step names what would test it


@dataclass(frozen=True)
class Question:
    """One hypothesis doctor answers, and which of INCIDENT.md's five (1-5) it bears on."""

    id: str
    question: str
    incident: tuple[int, ...]
    # A fact that changes how a worker's logs read, not a cause of loss: never fails the exit code.
    informational: bool = False


NOT_REACHABLE = "not-reachable"
PROTOCOL_MISMATCH = "protocol-mismatch"
NAMESPACE_MISSING = "namespace-missing"
STALE_CONFIG = "stale-config"
OVERSIZE = "oversize"
PROXY_LIMIT = "proxy-limit"
STICKY_SESSIONS = "sticky-sessions"
UPGRADE_BLOCKED = "upgrade-blocked"
SESSION_RECOVERY = "session-recovery"
PING_TIMEOUT = "ping-timeout"
HANDLER_SILENT = "handler-silent"
NEVER_SENT = "never-sent"

QUESTIONS: tuple[Question, ...] = (
    Question(NOT_REACHABLE, "Does anything answer Socket.IO on this URL and path?", (5,)),
    Question(PROTOCOL_MISMATCH, "Does the master speak Engine.IO v4 / Socket.IO v5, and which versions answer?", (4,)),
    Question(NAMESPACE_MISSING, "Does the namespace accept a connection?", (1,)),
    Question(STALE_CONFIG, "Does the running process have the limit the code on disk sets?", (2, 5)),
    Question(OVERSIZE, "Which of your messages are over the real limit, per transport?", (2, 4)),
    Question(PROXY_LIMIT, "Does something on the path refuse large messages before the master?", (2, 4)),
    Question(STICKY_SESSIONS, "Do the requests of one polling session reach one master node?", (4,)),
    Question(UPGRADE_BLOCKED, "Does the websocket upgrade get through to the master?", (4,)),
    Question(SESSION_RECOVERY, "Does the master recover sessions, and what does a worker's socket id after a refusal "
             "tell?", (4,), informational=True),
    Question(PING_TIMEOUT, "Does the largest message take longer to send than pingInterval + pingTimeout allow?", (4,)),
    Question(HANDLER_SILENT, "Does the master's handler take a small message on the event (listener registered, "
             "not swallowed by validation)?", (1, 3)),
    Question(NEVER_SENT, "Did the worker's messages cross the wire at all?", (4,)),
)
_QUESTION = {q.id: q for q in QUESTIONS}


@dataclass(frozen=True)
class Hypothesis:
    id: str
    verdict: Verdict
    evidence: str
    next_step: str

    @property
    def question(self) -> Question:
        return _QUESTION[self.id]

    @property
    def problem(self) -> bool:
        """Confirmed, and a cause of loss (what exit code 1 counts)."""
        return self.verdict is Verdict.CONFIRMED and not self.question.informational


@dataclass(frozen=True)
class DoctorSettings:
    probe: ProbeSettings  # the probe's options; its ``messages`` are the capture, sized, never sent
    expect_max_payload: int | None = None  # the maxHttpBufferSize the code on disk sets
    tap_report_path: str | None = None

    @property
    def capture_path(self) -> str | None:
        return self.probe.message_path

    @property
    def where(self) -> str:
        """The master's URL as shown: a password in it masked, like headers and --auth."""
        return redact_url(self.probe.url)


@dataclass(frozen=True)
class Unprobed:
    """Why the probe could not run: its one-line error, and what answered before it stopped."""

    error: str
    open_info: OpenInfo | None = None  # the Engine.IO v4 handshake was answered (the namespace was not)
    namespace_refusal: str | None = None  # the CONNECT_ERROR's message


@dataclass(frozen=True)
class ProtocolTry:
    """The Engine.IO v3 handshake (``EIO=3``, what socket.io-client 2.x sends) and its answer."""

    answer: HttpAnswer | None  # None: no HTTP answer at all
    open_info: OpenInfo | None = None  # the server opened an Engine.IO v3 session
    error: str = ""

    @property
    def answered(self) -> bool:
        return self.open_info is not None

    def describe(self) -> str:
        if self.open_info is not None:
            info = self.open_info
            return (f"EIO=3 (socket.io-client 2.x) opens a session (sid {info.sid}, pingInterval "
                    f"{info.ping_interval_ms:,} ms, pingTimeout {info.ping_timeout_ms:,} ms)")
        if self.answer is None:
            return f"EIO=3 (socket.io-client 2.x) got no answer ({self.error})"
        refusal = http_refusal(self.answer.status, self.answer.body, self.answer.server)
        said = f" {refusal.message!r}" if refusal.message else ""
        return f"EIO=3 (socket.io-client 2.x) is refused: HTTP {self.answer.status}{said} from {refusal.party()}"


@dataclass(frozen=True)
class TapEvidence:
    """What an ``imdiag tap --json`` report says crossed the wire, per type."""

    source: str
    elapsed_s: float
    types: tuple[TypeStats, ...]
    sessions: int
    refused_sessions: int
    reconnects: int  # refused workers that came back as a new sid


@dataclass(frozen=True)
class DoctorResult:
    settings: DoctorSettings
    hypotheses: tuple[Hypothesis, ...]
    verdict: str  # one paragraph, in the user's terms
    advice: tuple[str, ...]  # the fixes, in numbers
    probe: ProbeResult | None = None
    unprobed: Unprobed | None = None
    eio3: ProtocolTry | None = None
    tap: TapEvidence | None = None
    elapsed_s: float = 0.0
    interrupted: bool = False

    def hypothesis(self, id_: str) -> Hypothesis:
        return next(h for h in self.hypotheses if h.id == id_)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for h in self.hypotheses if h.verdict is verdict)


# --- in words, for every renderer ----------------------------------------------------------------

# What a reader sees per verdict: a symbol and words, so that nothing rests on colour.
VERDICT_WORDS = {
    Verdict.CONFIRMED: "✗ confirmed",
    Verdict.RULED_OUT: "✓ ruled out",
    Verdict.UNKNOWN: "? not testable here",
}


def verdict_words(h: Hypothesis) -> str:
    words = VERDICT_WORDS[h.verdict]
    return words + " (informational)" if h.verdict is Verdict.CONFIRMED and h.question.informational else words


def headline(result: DoctorResult) -> str:
    s = result.settings.probe
    counts = (f"{result.count(Verdict.CONFIRMED)} confirmed, {result.count(Verdict.RULED_OUT)} ruled out, "
              f"{result.count(Verdict.UNKNOWN)} not testable here")
    done = ": interrupted, partial results" if result.interrupted else ""
    return f"doctor {result.settings.where} (path {s.path}, event {s.event!r}) in {result.elapsed_s:.2f} s{done}: {counts}"


def exit_code(result: DoctorResult) -> ExitCode:
    """130 interrupted; 3 nothing answers; 1 a cause of loss confirmed; 3 the master could not be
    probed, or a limit not measured, and no hypothesis explains why; 0 no problem found."""
    if result.interrupted:
        return ExitCode.INTERRUPTED
    if result.hypothesis(NOT_REACHABLE).verdict is Verdict.CONFIRMED:
        return ExitCode.TARGET
    if any(h.problem for h in result.hypotheses):
        return ExitCode.CONFIRMED
    if result.probe is None or result.probe.undiagnosed:
        return ExitCode.TARGET
    return ExitCode.OK


# --- a tap report, read ---------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str, kinds: tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InputError(f"{where}.{key} is missing or not a {kinds[0].__name__}")
    return value


def _seconds(value: object, where: str) -> float:
    """A duration read from a report: a finite number of seconds, at least 0 (an integer of 400
    digits is no float)."""
    try:
        seconds = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"{where} is not a number of seconds (expected a finite number of at least 0)")
    return seconds


def tap_evidence(report: Any, source: str) -> TapEvidence:
    """The per-type table of an ``imdiag tap --json`` report; InputError (exit 2) when it is not one."""
    if not isinstance(report, Mapping) or report.get("schema") != REPORT_SCHEMA:
        raise InputError(f"{source}: not an {REPORT_SCHEMA} report")
    if report.get("command") != "tap":
        raise InputError(f"{source}: a report of imdiag {report.get('command')}, not of imdiag tap "
                         "(imdiag tap --json FILE writes one)")
    tap = report.get("tap")
    if not isinstance(tap, Mapping):
        raise InputError(f"{source}: the report has no 'tap' section")
    rows, sessions = tap.get("by_type"), tap.get("sessions")
    if not isinstance(rows, list) or not isinstance(sessions, list):
        raise InputError(f"{source}: tap.by_type or tap.sessions is missing or not a list")
    types = []
    for i, row in enumerate(rows):
        where = f"{source}: tap.by_type[{i}]"
        if not isinstance(row, Mapping):
            raise InputError(f"{where} is not an object")
        outcomes = _get(row, "outcomes", (dict,), where)
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in outcomes.items()):
            raise InputError(f"{where}.outcomes is not a table of counts")
        max_payload = row.get("max_payload")
        types.append(TypeStats(
            namespace=_get(row, "namespace", (str,), where), event=_get(row, "event", (str,), where),
            type=_get(row, "type", (str,), where), count=_get(row, "count", (int,), where),
            bytes_min=_get(row, "bytes_min", (int,), where), bytes_p50=_get(row, "bytes_p50", (int,), where),
            bytes_max=_get(row, "bytes_max", (int,), where), over_limit=_get(row, "over_limit", (int,), where),
            outcomes=dict(outcomes), max_payload=max_payload if isinstance(max_payload, int) else None,
            last_refusal=str(row.get("last_refusal") or ""),
        ))
    return TapEvidence(
        source=source, elapsed_s=_seconds(report.get("elapsed_s", 0.0), f"{source}: elapsed_s"), types=tuple(types),
        sessions=len(sessions),
        refused_sessions=sum(1 for s in sessions if isinstance(s, Mapping) and s.get("refused") is True),
        reconnects=sum(1 for s in sessions if isinstance(s, Mapping) and s.get("reconnect_of")),
    )


# --- what the instruments measured, in one place ---------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    settings: DoctorSettings
    probe: ProbeResult | None
    unprobed: Unprobed | None
    eio3: ProtocolTry | None
    tap: TapEvidence | None
    interrupted: bool

    @property
    def where(self) -> str:
        return self.settings.where

    @property
    def port(self) -> int:
        parts = urlsplit(self.settings.probe.url)
        try:
            port = parts.port
        except ValueError:
            port = None
        return port if port is not None else (443 if parts.scheme in ("https", "wss") else 80)

    @property
    def handshake(self) -> Handshake | None:
        return self.probe.handshake if self.probe is not None else None

    @property
    def opened(self) -> OpenInfo | None:
        """What the master advertised in its Engine.IO v4 OPEN, whether or not the probe ran."""
        hs = self.handshake
        if hs is not None:
            return OpenInfo(hs.sid, hs.upgrades, hs.ping_interval_ms, hs.ping_timeout_ms, hs.max_payload)
        return self.unprobed.open_info if self.unprobed is not None else None

    @property
    def limits(self) -> tuple[TransportLimit, ...]:
        return self.probe.transports if self.probe is not None else ()

    @property
    def measured(self) -> tuple[TransportLimit, ...]:
        """Transports whose limit was measured (a size found, or none up to --max-bytes)."""
        return tuple(t for t in self.limits if not t.stopped and t.max_accepted is not None)

    @property
    def messages(self) -> tuple[SizedMessage, ...]:
        return self.settings.probe.messages

    def untested(self) -> tuple[Verdict, str, str]:
        """For the hypotheses that need the probe when it did not run: why, and what to do first."""
        if self.interrupted and self.probe is None:
            return (Verdict.UNKNOWN, "interrupted (Ctrl-C) before the probe measured anything",
                    "run imdiag doctor again without interrupting it")
        if self.unprobed is not None and self.unprobed.namespace_refusal is not None:
            return (Verdict.UNKNOWN, "the namespace refused the connection, so no message could be sent",
                    "fix the namespace or the auth (see namespace-missing), then run doctor again")
        if self.eio3 is not None and self.eio3.answered and self.opened is None:
            return (Verdict.UNKNOWN, "the master speaks Engine.IO v3 only and imdiag's probe speaks v4",
                    "see protocol-mismatch")
        return (Verdict.UNKNOWN, "the master could not be probed",
                "make the master reachable (see not-reachable), then run doctor again")


def _unit(transport: Transport, plural: bool = True) -> str:
    if transport is Transport.POLLING:
        return "POST bodies" if plural else "POST body"
    return "frames" if plural else "frame"


def _refuser(limit: TransportLimit) -> Refuser | None:
    failure = limit.failure
    refusal = refusal_of(failure.observation) if failure is not None else None
    return refusal.by if refusal is not None else None


def _party(limit: TransportLimit) -> str:
    failure = limit.failure
    refusal = refusal_of(failure.observation) if failure is not None else None
    return refusal.party() if refusal is not None else "an unknown party"


def _who(limit: TransportLimit) -> str:
    """``the master (close 1009)``, ``a proxy (nginx/1.22.1, HTTP 413)``."""
    failure = limit.failure
    refusal = refusal_of(failure.observation) if failure is not None else None
    return refusal.who() if refusal is not None else f"an unknown party ({refused_with(limit)})"


def _limit_words(limit: TransportLimit, *, party: bool = True) -> str:
    """``websocket frames over 1,000,000 B (close 1009, the master)``; ``polling POST bodies up to 16,777,216 B``."""
    unit = _unit(limit.transport)
    assert limit.max_accepted is not None
    if limit.failure is None:
        return (f"{limit.transport.value} {unit} up to {limit_amount(limit.max_accepted, limit)} "
                "(none refused up to --max-bytes)")
    how = refused_with(limit) + (f", {_party(limit)}" if party else "")
    return f"{limit.transport.value} {unit} over {limit_amount(limit.max_accepted, limit)} ({how})"


def _join(parts: Sequence[str], word: str = "and") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {word} " + parts[-1]


def _by_type(messages: Sequence[SizedMessage]) -> dict[str, SizedMessage]:
    """The largest message of each type, in the capture's order of first appearance."""
    out: dict[str, SizedMessage] = {}
    for m in messages:
        if not m.error and (m.type not in out or m.frame_bytes > out[m.type].frame_bytes):
            out[m.type] = m
    return out


# --- the rules: one function per hypothesis -------------------------------------------------------

_Answer = tuple[Verdict, str, str]  # verdict, evidence, next step


def _a(verdict: Verdict, evidence: str, next_step: str = "") -> _Answer:
    return verdict, evidence, next_step


def _not_reachable(f: _Facts) -> _Answer:
    hs = f.handshake
    path = f.settings.probe.path
    if hs is not None:
        return _a(Verdict.RULED_OUT, f"{f.where} (path {path}) answered the Engine.IO v4 handshake over "
                f"{hs.transport.value} (sid {hs.sid}) in {hs.seconds:.2f} s", "")
    opened = f.opened
    if opened is not None and f.unprobed is not None:
        after = ("only the namespace refused (see namespace-missing)" if f.unprobed.namespace_refusal is not None
                 else f"then the session broke: {f.unprobed.error}")
        return _a(Verdict.RULED_OUT, f"{f.where} (path {path}) answered the Engine.IO v4 handshake (sid {opened.sid}); "
                + after, "")
    if f.eio3 is not None and f.eio3.answered:
        return _a(Verdict.RULED_OUT, f"{f.where} (path {path}) answers, but in Engine.IO v3 only: {f.eio3.describe()} "
                "(see protocol-mismatch)", "")
    if f.unprobed is None:
        return f.untested()
    return _a(Verdict.CONFIRMED, f"nothing answers Socket.IO at {f.where} (path {path}): {f.unprobed.error}",
            f"check that the master runs and listens on port {f.port} (on its host: ss -ltnp 'sport = :{f.port}' "
            "names the process), the host in --url, --path (Socket.IO's default is /socket.io/) and, for https, "
            "--insecure with a self-signed certificate")


def _protocol_mismatch(f: _Facts) -> _Answer:
    v3 = f.eio3.describe() if f.eio3 is not None else "EIO=3 was not tried"
    if f.opened is not None:
        if f.eio3 is not None and f.eio3.answered:
            return _a(Verdict.RULED_OUT, f"Engine.IO v4 answers (socket.io-client 3.x and 4.x connect), and {v3}: the "
                    "master also lets socket.io-client 2.x in (allowEIO3)", "")
        old = (": a worker on socket.io-client 2.x could never connect at all (a connect_error on every attempt)"
               if f.eio3 is not None and f.eio3.answer is not None else "")
        return Verdict.RULED_OUT, f"Engine.IO v4 answers (socket.io-client 3.x and 4.x connect); {v3}{old}", ""
    if f.eio3 is not None and f.eio3.answered:
        v4 = f.unprobed.error if f.unprobed is not None else "no Engine.IO v4 answer"
        return _a(Verdict.CONFIRMED, f"the master speaks Engine.IO v3 only (socket.io 2.x): {v3}, while the Engine.IO v4 "
                f"handshake failed ({v4}). socket.io-client 3.x and 4.x cannot talk to it (a connect_error on every "
                "attempt), and imdiag's probe, which speaks v4, cannot measure it",
                "use socket.io-client 2.x in the workers to match this master, or move the master to socket.io 4 "
                "(new Server(httpServer, {allowEIO3: true}) keeps 2.x workers connected meanwhile), then run doctor "
                "again to test the rest")
    if f.unprobed is None:
        return f.untested()
    return _a(Verdict.UNKNOWN, f"neither Engine.IO v4 nor v3 answered ({v3}): see not-reachable",
            "make the URL and --path reachable first")


# socket.io's and python-socketio's CONNECT_ERROR for a namespace no handler serves.
MISSING_NAMESPACE_MESSAGES = ("Invalid namespace", "Unable to connect")


def _namespace_missing(f: _Facts) -> _Answer:
    ns = f.settings.probe.namespace
    hs = f.handshake
    if hs is not None:
        if hs.namespace_sid is None:
            return _a(Verdict.UNKNOWN, f"namespace {ns} was not joined: no transport the path lets through could join "
                    "it (see upgrade-blocked and sticky-sessions)", "fix the path first, then run doctor again")
        return _a(Verdict.RULED_OUT, f"namespace {ns} accepted the connection over {hs.transport.value} (sid "
                f"{hs.namespace_sid})", "")
    refusal = f.unprobed.namespace_refusal if f.unprobed is not None else None
    if refusal is None:
        return f.untested()
    if refusal in MISSING_NAMESPACE_MESSAGES:
        return _a(Verdict.CONFIRMED, f"the master has no namespace {ns}: its CONNECT was answered CONNECT_ERROR "
                f"{refusal!r} (what the server says for a namespace no handler serves); a worker connecting there "
                "gets a connect_error and no handler ever sees its messages",
                "use a namespace the master serves (the io.of('/...') of its code), the same in the worker's "
                "io(URL) and in --url")
    return _a(Verdict.CONFIRMED, f"namespace {ns} refused this client: CONNECT_ERROR {refusal!r}. That is the master's "
            "auth check or a middleware (next(new Error(...))), not necessarily a missing namespace",
            "pass what the worker sends: --auth '{\"token\": \"...\"}' (its auth payload) and --header for the "
            "headers or cookies the master checks")


def _stale_config(f: _Facts) -> _Answer:
    expected = f.settings.expect_max_payload
    opened = f.opened
    advertised = opened.max_payload if opened is not None else None
    own = [t for t in f.measured if t.failure is not None and _refuser(t) is Refuser.MASTER]
    seen = "; its own refusals: " + _join([_limit_words(t, party=False) for t in own]) if own else ""
    if opened is None:
        return f.untested()
    running = (f"the running process advertises maxPayload {advertised:,} B" if advertised is not None
               else "the running process advertises no maxPayload")
    if expected is None:
        return _a(Verdict.UNKNOWN, running + seen,
                "pass --expect-max-payload SIZE: the maxHttpBufferSize the code on disk sets (e.g. 10MB)")
    if advertised is not None:
        if advertised == expected:
            return _a(Verdict.RULED_OUT, f"{running}, as expected: the process on port {f.port} runs that "
                      f"configuration{seen}")
        return _a(Verdict.CONFIRMED, f"{running} although {expected:,} B was expected: the process on port {f.port} "
                f"does not run that configuration{seen}",
                f"find the process that owns port {f.port} (on its host: ss -ltnp 'sport = :{f.port}' or lsof -i "
                f":{f.port}) and compare its start time with the deploy: restart it on the code on disk, or pass "
                f"the option where the Server is created (new Server(httpServer, {{maxHttpBufferSize: {expected}}})); "
                "then run doctor again")
    if not own:
        return _a(Verdict.UNKNOWN, running + " and no limit of its own was measured",
                "check the master's start-up log or code for maxHttpBufferSize")
    # No maxPayload advertised: the master's own refusals stand for it (python refuses a frame of exactly L).
    off = [t for t in own if t.max_accepted is not None and not expected - 1 <= t.max_accepted <= expected]
    if off:
        return _a(Verdict.CONFIRMED, f"{running}, and it refuses {_join([_limit_words(t, party=False) for t in off])} "
                f"itself although {expected:,} B was expected: the process on port {f.port} does not run that "
                "configuration", f"find and restart the process that owns port {f.port}")
    return Verdict.RULED_OUT, f"{running}; its own limit matches the {expected:,} B expected{seen}", ""


def _over_words(m: SizedMessage, fits: Sequence[Fit], limits: Mapping[Transport, TransportLimit]) -> str:
    # A fit is in what its limit counts: bytes, or characters (python-engineio under ASGI's websocket).
    over = [fit for fit in fits if fit.fits is False and fit.headroom is not None]
    where = _join([f"{fit.transport.value}'s {amount(fit.limit or 0, fit.unit)} ({refused_with(limits[fit.transport])}, "
                   f"{_party(limits[fit.transport])}) by {amount(-(fit.headroom or 0), fit.unit)}" for fit in over])
    smallest = min(fit.limit or 0 for fit in over)
    trap = (f"; JSON.stringify(msg).length says {m.js_length:,}, under the limit: the .length trap - the server counts "
            "UTF-8 bytes (log Buffer.byteLength(JSON.stringify(msg)))" if m.js_length <= smallest
            else f" (JSON.stringify(msg).length says {m.js_length:,}: UTF-16 units, not the bytes the server counts)")
    return f"{m.type} (#{m.index}) is {m.frame_bytes:,} B on the wire, over {where}{trap}"


def _oversize(f: _Facts) -> _Answer:
    if f.probe is None:
        return f.untested()
    limits_text = _join([_limit_words(t) for t in f.measured]) or "no transport could be measured"
    if not f.messages:
        return _a(Verdict.UNKNOWN, f"no capture to size; the limits are: {limits_text}",
                "pass --capture FILE: the messages your worker emits (one JSON message, an array or JSON Lines; "
                "imdiag tap --record or fake-master --record writes one); it is sized, never sent")
    limits = {t.transport: t for t in f.limits}
    verdicts = f.probe.messages
    over: dict[str, str] = {}
    unknown = []
    for v in verdicts:
        if v.message.error:
            continue
        if any(fit.fits is False for fit in v.fits):
            over.setdefault(v.message.type, _over_words(v.message, v.fits, limits))
        elif any(fit.fits is None for fit in v.fits):
            unknown.append(v)
    sized = [m for m in f.messages if not m.error]
    if over:
        return _a(Verdict.CONFIRMED, "; ".join(over.values()),
                "make every message fit the smallest limit on the path: raise the limit or split the message (the "
                "fix advice gives the numbers)")
    if not sized:
        return Verdict.UNKNOWN, "no message of the capture could be encoded (see never-sent)", "fix the capture"
    if unknown:
        m = unknown[0].message
        notes = _join([f"{fit.transport.value}: {fit.note}" for fit in unknown[0].fits if fit.fits is None])
        return _a(Verdict.UNKNOWN, f"{len(unknown)} message(s) could not be placed against every limit, e.g. {m.type} "
                f"(#{m.index}, {m.frame_bytes:,} B): {notes}", "raise --max-bytes above your largest message, or fix "
                "the path so that every transport can be measured")
    m = max(sized, key=lambda s: s.frame_bytes)
    # Each transport's room in what its limit counts (characters where it counts them).
    room = [f"{t.transport.value}'s {_accepted(t)} ({fit_amount(fit(m, t))})" for t in f.measured]
    return _a(Verdict.RULED_OUT, f"all {len(sized)} message(s) of the capture fit: the largest, {m.type} "
            f"(#{m.index}), is {m.frame_bytes:,} B on the wire (JSON.stringify(msg).length "
            f"{m.js_length:,}), under {_join(room)}", "")


def _proxy_limit(f: _Facts) -> _Answer:
    if f.probe is None:
        return f.untested()
    proxied = [t for t in f.limits if t.diagnosis is Cause.PROXY_ERROR or
               (not t.stopped and t.failure is not None and _refuser(t) is Refuser.PROXY)]
    if proxied:
        lines = [f.probe.summary.get(t.transport, "") for t in proxied]
        return _a(Verdict.CONFIRMED, "; ".join(line for line in lines if line),
                "raise the proxy's limit to at least the master's, or keep messages under the proxy's (the fix "
                "advice gives the numbers)")
    own = [t for t in f.measured if t.failure is None or _refuser(t) is Refuser.MASTER]
    rest = [t for t in f.limits if t not in own]
    if not own:
        text = _join([f"{t.transport.value}: {f.probe.summary.get(t.transport, '')}" for t in rest], "and")
        return Verdict.UNKNOWN, text or "no transport was measured", "see the transports' diagnoses"
    evidence = "nothing on the path refused first: " + _join([_limit_words(t) for t in own])
    if rest:
        evidence += "; not measured: " + _join([f"{t.transport.value} ({refused_with(t)})" for t in rest])
    return Verdict.RULED_OUT, evidence, ""


def _sticky_sessions(f: _Facts) -> _Answer:
    check = f.probe.stickiness if f.probe is not None else None
    if check is None:
        return f.untested() if f.probe is None else _a(Verdict.UNKNOWN, "polling was not probed")
    if check.broken:
        return Verdict.CONFIRMED, check.finding().removesuffix("; fix: " + STICKY_FIX), STICKY_FIX
    return Verdict.RULED_OUT, check.finding(), ""


def _upgrade_blocked(f: _Facts) -> _Answer:
    ws = next((t for t in f.limits if t.transport is Transport.WEBSOCKET), None)
    if ws is None:
        return f.untested() if f.probe is None else _a(Verdict.UNKNOWN, "websocket was not probed")
    if ws.diagnosis is Cause.UPGRADE_BLOCKED:
        assert f.probe is not None
        return _a(Verdict.CONFIRMED, f.probe.summary.get(Transport.WEBSOCKET, "").removesuffix("; fix: " + UPGRADE_FIX),
                UPGRADE_FIX)
    opened = [t for t in ws.all_trials if not t.observation.connect_error]
    if not opened:
        return Verdict.UNKNOWN, f"no websocket trial connected: {ws.stopped or 'no trial ran'}", "see the websocket summary"
    offered = f.opened.upgrades if f.opened is not None else ()
    hs = f.handshake
    offer = f"; the polling handshake offers upgrades: {', '.join(offered) or 'none'}" \
        if hs is not None and hs.transport is Transport.POLLING else ""
    return _a(Verdict.RULED_OUT, f"{len(opened)} websocket connection(s) opened on this URL and path and joined the "
            f"namespace{offer}", "")


def _session_recovery(f: _Facts) -> _Answer:
    hs = f.handshake
    if hs is None or hs.recovers_sessions is None:
        if hs is None:
            return f.untested()
        return _a(Verdict.UNKNOWN, "the namespace was not joined (see namespace-missing)",
                  "join the namespace first, then run doctor again")
    seen = ""
    if f.tap is not None and f.tap.refused_sessions:
        seen = f" In the tap report, {f.tap.refused_sessions} session(s) ended by a refusal"
        seen += f", {f.tap.reconnects} refused worker(s) came back as a new sid." if f.tap.reconnects else "."
    if hs.recovers_sessions:
        return _a(Verdict.CONFIRMED, f"the namespace's CONNECT answer carries a pid beside the sid: the master has "
                "connectionStateRecovery. A worker refused for size reconnects about 1 s later with the SAME socket "
                "id (socket.recovered === true) if the master had sent it an event before, else with a new id; the "
                "refused message itself is not replayed: it is lost. The same id on every attempt does not show that "
                f"the messages arrived.{seen}",
                "log the disconnect reason (socket.on('disconnect', (reason, details) => ...)) and socket.recovered "
                "in the worker, not only the socket id")
    return _a(Verdict.RULED_OUT, "the namespace's CONNECT answer carries no pid: no connectionStateRecovery. A worker "
            "refused for size is disconnected and comes back about 1 s later with a NEW socket id (python-socketio's "
            "client after a polling 400: never). So a worker that logs the same socket id on attempts seconds apart "
            "was not refused for size on that connection: those messages never crossed the wire (see never-sent) or "
            f"were not over the limit.{seen}",
            "compare the worker's socket id before and after a large emit, or put imdiag tap between them "
            "(--tap-report)")


def _ping_timeout(f: _Facts) -> _Answer:
    opened = f.opened
    accepted = [t for limit in f.limits for t in limit.all_trials if t.outcome is Outcome.ACCEPTED and t.seconds > 0]
    if f.probe is None:
        return f.untested()
    if opened is None or not accepted:
        return _a(Verdict.UNKNOWN, "no probe was accepted, so no upload was timed", "see the transports' summaries")
    big, small = max(accepted, key=lambda t: t.size), min(accepted, key=lambda t: t.size)
    sized = [m for m in f.messages if not m.error]
    if sized:
        largest = max(sized, key=lambda m: m.frame_bytes)
        what, size = f"the largest message ({largest.type}, {largest.frame_bytes:,} B)", largest.frame_bytes
    else:
        what, size = f"a message of the largest size accepted ({big.size:,} B; --capture sizes yours)", big.size
    budget_ms = opened.ping_interval_ms + opened.ping_timeout_ms
    budget = (f"pingInterval {opened.ping_interval_ms:,} ms + pingTimeout {opened.ping_timeout_ms:,} ms = "
              f"{budget_ms / 1000:g} s")
    floor = big.size / big.seconds  # connection and answer included: the rate is at least this
    slowest = f"an uplink slower than {size * 1000 / budget_ms:,.0f} B/s would not send it in time"
    upper_ms = size / floor * 1000
    rate = f"{big.size:,} B in {big.seconds:.3f} s over {big.transport.value}, connection included: at least {floor:,.0f} B/s"
    if upper_ms <= budget_ms:
        return _a(Verdict.RULED_OUT, f"at the upload rate measured during the probe ({rate}), {what} takes at most "
                f"{upper_ms / 1000:.3g} s to send, within {budget}; {slowest}",
                "" if upper_ms <= budget_ms / 10 else "run doctor from the worker's host: the rate is measured from here")
    if big.size > small.size and big.seconds > small.seconds:
        transfer = (big.size - small.size) / (big.seconds - small.seconds)
        est_ms = size / transfer * 1000
        if est_ms > budget_ms:
            return _a(Verdict.CONFIRMED, f"at the upload rate measured during the probe ({transfer:,.0f} B/s: "
                    f"{big.size - small.size:,} B more took {big.seconds - small.seconds:.3f} s more), {what} takes "
                    f"about {est_ms / 1000:.3g} s to send, more than {budget}: the master drops the connection "
                    "('ping timeout') before the message is in",
                    f"raise pingTimeout on the master, or send messages of at most {transfer * budget_ms / 1000:,.0f} B "
                    "from here (split them)")
    return _a(Verdict.UNKNOWN, f"the probe's uploads ({rate}) were too small or too few to time {what} against {budget}",
            "run doctor with a larger limit to measure, or time a large upload from the worker's host")


def _handler_silent(f: _Facts) -> _Answer:
    event, ns = f.settings.probe.event, f.settings.probe.namespace
    if not f.settings.probe.ack:
        return _a(Verdict.UNKNOWN, "not testable without --ack: a live master has no ledger, so only its ack shows that "
                f"a handler ran (heartbeats in the master's log already show a listener on {event!r})",
                f"pass --ack if the master's handler calls its callback (socket.on({event!r}, (msg, ack) => ...))")
    if f.probe is None:
        return f.untested()
    acked = sorted({size for limit in f.limits for size in limit.acked_sizes})
    if acked:
        lost = [t.size for limit in f.limits for t in limit.lost]
        text = (f"the master acknowledged {len(acked)} probe size(s) on {event!r} in {ns} (from {acked[0]:,} B to "
                f"{acked[-1]:,} B, type {f.settings.probe.probe_type!r}): a listener is registered and its handler "
                "ran for them")
        if lost:
            text += (f"; but {len(lost)} larger probe(s), from {min(lost):,} B, were taken by the transport and never "
                     "acknowledged: the master lost them after the transport")
        return Verdict.RULED_OUT, text, ""
    checks = [limit.ack_check for limit in f.limits if limit.ack_check is not None]
    if checks:
        check = min(checks, key=lambda t: t.size)
        return _a(Verdict.CONFIRMED, f"the master parsed the smallest probe ({check.size:,} B over "
                f"{check.transport.value}, type {f.settings.probe.probe_type!r}) but never called its ack: no "
                f"listener on {event!r} in {ns}, a handler that does not call the ack, or a check (validateMessage) "
                "that drops the message without a word",
                f"if the handler calls its ack for valid messages: register the listener on io.of({ns!r}), not on io, "
                "and log before the validation")
    return _a(Verdict.UNKNOWN, "no probe could be checked for an ack on a connection of its own",
            "see the transports' summaries")


def _crossed(row: TypeStats) -> str:
    shown = [f"{n} {name}" for name, n in row.outcomes.items() if n]
    text = f"{row.type} ({row.count} crossed on {row.namespace} {row.event!r}: {', '.join(shown) or 'no outcome'}"
    return text + (f"; last refusal: {row.last_refusal})" if row.last_refusal else ")")


def _never_sent(f: _Facts) -> _Answer:
    broken = [m for m in f.messages if m.error]
    encode = "; ".join(f"{m.type} (#{m.index}) cannot be serialized: {m.error}" for m in broken[:3])
    if f.tap is None:
        if broken:
            return _a(Verdict.CONFIRMED, encode + ": the worker's emit() throws or sends nothing",
                    "make the message JSON-serializable (no BigInt, no circular reference)")
        return _a(Verdict.UNKNOWN, "not testable from outside: a message the worker never writes to its socket leaves "
                "no trace on the wire",
                "run imdiag tap --upstream URL --json tap.json between a worker and the master while it sends, then "
                "doctor --tap-report tap.json --capture FILE")
    tap = f.tap
    seen = {row.type: row for row in tap.types}
    crossed = [_crossed(row) for row in tap.types]
    emitted = list(_by_type(f.messages)) + [m.type for m in broken if m.type not in seen]
    if not emitted:
        return _a(Verdict.UNKNOWN, f"the tap saw {len(seen)} type(s) cross in {tap.elapsed_s:.1f} s: "
                f"{'; '.join(crossed) or 'none'}; which types the worker emitted is not known",
                "pass --capture FILE with the types the worker emits")
    ns, event = f.settings.probe.namespace, f.settings.probe.event
    elsewhere = [f"{row.type} ({row.namespace} {row.event!r})" for row in tap.types
                 if (row.namespace, row.event) != (ns, event)]
    other = (f"; {_join(elsewhere)} crossed in another namespace or on another event than the {ns} {event!r} "
             "probed here: another socket?") if elsewhere else ""
    missing = [t for t in dict.fromkeys(emitted) if t not in seen]
    if missing:
        text = (f"{_join(missing)} never crossed the tap in {tap.elapsed_s:.1f} s, while {len(seen)} other type(s) "
                f"did ({'; '.join(crossed) or 'none'}): the worker did not write them to this socket - a serialization "
                "error (JSON.stringify throws on a BigInt or a circular value), an emit on another socket, or they "
                "were not emitted while the tap ran")
        if broken:
            text += "; " + encode
        return _a(Verdict.CONFIRMED, text + other,
                "log right before each socket.emit of those types (in a try/catch, with "
                "Buffer.byteLength(JSON.stringify(msg))), and watch again with imdiag tap")
    return _a(Verdict.RULED_OUT, f"every type of the capture crossed the wire in the tap's {tap.elapsed_s:.1f} s: "
              + "; ".join(crossed) + other)


_RULES = {
    NOT_REACHABLE: _not_reachable, PROTOCOL_MISMATCH: _protocol_mismatch, NAMESPACE_MISSING: _namespace_missing,
    STALE_CONFIG: _stale_config, OVERSIZE: _oversize, PROXY_LIMIT: _proxy_limit, STICKY_SESSIONS: _sticky_sessions,
    UPGRADE_BLOCKED: _upgrade_blocked, SESSION_RECOVERY: _session_recovery, PING_TIMEOUT: _ping_timeout,
    HANDLER_SILENT: _handler_silent, NEVER_SENT: _never_sent,
}


# --- the verdict and the fixes ---------------------------------------------------------------------


def _accepted(limit: TransportLimit) -> str:
    """The largest accepted, in what the limit counts: ``1,000,000 B``, ``10,000 characters``."""
    assert limit.max_accepted is not None
    return limit_amount(limit.max_accepted, limit)


def _oversize_sentence(f: _Facts) -> str:
    """The issue's own words: who refuses what over which size, against your largest frames."""
    refused = [t for t in f.measured if t.failure is not None]
    all_master = all(_refuser(t) is Refuser.MASTER for t in refused)
    if all_master:
        head = f"The master at {f.where} refuses " + _join([
            f"{t.transport.value} {_unit(t.transport)} over {_accepted(t)} ({refused_with(t)})" for t in refused])
    else:
        parts = [f"{t.transport.value} {_unit(t.transport)} over {_accepted(t)}" + (" are refused" if i == 0 else "")
                 + f" by {_who(t)}" for i, t in enumerate(refused)]
        head = f"At {f.where}, " + _join(parts)
    over: list[tuple[str, int]] = []
    for v in f.probe.messages if f.probe is not None else ():
        if any(fit.fits is False for fit in v.fits) and v.message.type not in (m for m, _ in over):
            over.append((v.message.type, v.message.frame_bytes))
    sizes = {t: max(b for m, b in over if m == t) for t, _ in over}
    yours = _join([f"{t} frames are {b:,} B" for t, b in sizes.items()])
    return f"{head} while your {yours}: confirmed."


def _sentence(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _verdict(f: _Facts, hypotheses: Sequence[Hypothesis]) -> str:
    by = {h.id: h for h in hypotheses}
    # The size first, as a user asks it ("is it the size?"), then the rest in the table's order.
    confirmed = sorted((h for h in hypotheses if h.verdict is Verdict.CONFIRMED), key=lambda h: h.id != OVERSIZE)
    unknown = [h.id for h in hypotheses if h.verdict is Verdict.UNKNOWN]
    ruled = [h.id for h in hypotheses if h.verdict is Verdict.RULED_OUT]
    sentences = []
    if by[NOT_REACHABLE].verdict is Verdict.CONFIRMED:
        sentences.append(f"Nothing answers Socket.IO at {f.where} (path {f.settings.probe.path}), so nothing else "
                         f"could be tested: {by[NOT_REACHABLE].evidence.split(': ', 1)[-1]}.")
    for h in confirmed:
        if h.id == NOT_REACHABLE:
            continue
        if h.id == OVERSIZE:
            sentences.append(_oversize_sentence(f))
        elif h.id == STALE_CONFIG:
            sentences.append(_sentence(h.evidence.split("; its own refusals")[0]))
        elif h.id == SESSION_RECOVERY:
            sentences.append("The master recovers sessions, so a refused worker keeps its socket id: the id in its "
                             "logs does not show whether messages arrived.")
        else:
            sentences.append(_sentence(h.evidence.split(". ")[0]))
    if not any(h.problem for h in confirmed) and by[NOT_REACHABLE].verdict is not Verdict.CONFIRMED:
        limits = _join([_limit_words(t) for t in f.measured])
        sentences.insert(0, f"No cause of loss was confirmed at {f.where}" + (f": it refuses {limits}." if limits else "."))
    if ruled:
        sentences.append(f"Ruled out with evidence: {', '.join(ruled)}.")
    if unknown:
        sentences.append(f"Not testable here: {', '.join(unknown)} (each says what would test it).")
    return " ".join(sentences)


def _advice(f: _Facts, hypotheses: Sequence[Hypothesis]) -> tuple[str, ...]:
    by = {h.id: h for h in hypotheses}
    out: list[str] = []
    expected = f.settings.expect_max_payload
    sized = [m for m in f.messages if not m.error]
    largest = max(sized, key=lambda m: m.frame_bytes) if sized else None
    if by[STALE_CONFIG].verdict is Verdict.CONFIRMED and expected is not None:
        line = f"restart the master on port {f.port} with the configuration on disk (maxHttpBufferSize {expected:,})"
        if largest is not None:
            share = (expected - largest.frame_bytes) / expected * 100
            fits = largest.frame_bytes * (1 + HEADROOM) <= expected
            line += (f": it holds your largest message ({largest.type}, {largest.frame_bytes:,} B) with "
                     f"{share:.1f}% to spare" if fits else
                     f", although that is still too small for your largest message ({largest.frame_bytes:,} B "
                     f"with {int(HEADROOM * 100)}% headroom): see fix A")
        out.append(line)
    if f.probe is not None and (by[OVERSIZE].verdict is Verdict.CONFIRMED or by[PROXY_LIMIT].verdict is Verdict.CONFIRMED):
        out += [line for rec in f.probe.recommendations for line in rec.lines()]
    for id_, fix in ((STICKY_SESSIONS, STICKY_FIX), (UPGRADE_BLOCKED, UPGRADE_FIX)):
        if by[id_].verdict is Verdict.CONFIRMED:
            out.append(f"{id_}: {fix}")
    for h in hypotheses:
        if h.problem and h.id not in (STALE_CONFIG, OVERSIZE, PROXY_LIMIT, STICKY_SESSIONS, UPGRADE_BLOCKED) \
                and h.next_step:
            out.append(f"{h.id}: {h.next_step}")
    if by[OVERSIZE].verdict is Verdict.UNKNOWN and not f.messages and f.probe is not None:
        out.append("pass --capture FILE to get the fixes for your messages in numbers")
    return tuple(dict.fromkeys(out))


def diagnose(settings: DoctorSettings, probe: ProbeResult | None, *, unprobed: Unprobed | None = None,
             eio3: ProtocolTry | None = None, tap: TapEvidence | None = None, elapsed_s: float = 0.0,
             interrupted: bool = False) -> DoctorResult:
    """Every hypothesis, from what was measured: ``probe`` (None when it could not run: ``unprobed``
    says why), the ``EIO=3`` try, the tap report."""
    facts = _Facts(settings, probe, unprobed, eio3, tap, interrupted)
    hypotheses = tuple(Hypothesis(q.id, *_RULES[q.id](facts)) for q in QUESTIONS)
    return DoctorResult(settings, hypotheses, _verdict(facts, hypotheses), _advice(facts, hypotheses), probe,
                        unprobed, eio3, tap, elapsed_s, interrupted)
