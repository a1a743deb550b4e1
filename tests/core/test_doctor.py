"""``imdiag doctor``'s rules without a server: what a slow link, a tap report, an interrupted or
unreachable run and a missing option make of the hypotheses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imdiag.core.doctor import (
    QUESTIONS,
    DoctorSettings,
    TapEvidence,
    Unprobed,
    Verdict,
    diagnose,
    exit_code,
    tap_evidence,
)
from imdiag.core.errors import ExitCode, InputError
from imdiag.core.model import Barrier, Observation, TypeStats
from imdiag.core.probe_explain import judge_messages
from imdiag.core.probe_result import (
    Handshake,
    ProbeResult,
    ProbeSettings,
    SizedMessage,
    TransportLimit,
    Trial,
    trial,
)
from imdiag.core.wire import Encoder, LimitUnit, OpenInfo, Transport

WS = Transport.WEBSOCKET
URL = "http://127.0.0.1:3000/worker"


def accepted(size: int, seconds: float) -> Trial:
    return trial(size, WS, Observation(body_bytes=size, barrier=Barrier.PARSED), seconds=seconds)


def refused(size: int) -> Trial:
    return trial(size, WS, Observation(body_bytes=size, close_code=1009, closed=True, barrier=Barrier.CLOSED,
                                       advertised_max_payload=1_000_000))


def sized(type_: str, frame_bytes: int, index: int = 0) -> SizedMessage:
    return SizedMessage(index, type_, "message", "/worker", Encoder.NODE, frame_bytes, frame_bytes - 20, frame_bytes - 30)


def probed(trials: tuple[Trial, ...], messages: tuple[SizedMessage, ...] = (), ping_ms: tuple[int, int] = (25_000, 20_000),
           recovers: bool = False) -> tuple[DoctorSettings, ProbeResult]:
    """A websocket-only probe of a 1MB master: these trials, then a refusal at 1,000,001 B."""
    settings = ProbeSettings(url=URL, transports=(WS,), messages=messages)
    limit = TransportLimit(WS, 80, 16 * 2**20, (*trials, refused(1_000_001)), 1_000_000, 1_000_001)
    handshake = Handshake(WS, "sid", (), ping_ms[0], ping_ms[1], 1_000_000, "/worker", "nsid", 0.01,
                          "pid" if recovers else None)
    return DoctorSettings(settings), ProbeResult(settings, handshake, (limit,))


def test_ping_timeout_from_the_measured_upload_rate():
    # A fast link: 1 MB in 0.05 s (connection included) sends 1.3 MB well within 45 s.
    settings, result = probed((accepted(1_000_000, 0.05), accepted(80, 0.01)), (sized("worker:data:sync", 1_313_011),))
    fast = diagnose(settings, result).hypothesis("ping-timeout")
    assert fast.verdict is Verdict.RULED_OUT and "within pingInterval 25,000 ms + pingTimeout 20,000 ms = 45 s" in fast.evidence
    assert "slower than 29,178 B/s" in fast.evidence  # 1,313,011 B / 45 s
    # A slow link (20 KB/s past the connection's own 0.1 s): the 1.3 MB message needs about 66 s.
    settings, result = probed((accepted(1_000_000, 50.1), accepted(80, 0.1)), (sized("worker:data:sync", 1_313_011),))
    slow = diagnose(settings, result).hypothesis("ping-timeout")
    assert slow.verdict is Verdict.CONFIRMED and "about 65.7 s to send" in slow.evidence
    assert "'ping timeout'" in slow.evidence and "at most 899,928 B" in slow.next_step
    # Only tiny probes, slow because of latency: no rate to extrapolate from, so no verdict.
    settings, result = probed((accepted(80, 0.2),), (sized("worker:data:sync", 1_313_011),), ping_ms=(1000, 500))
    assert diagnose(settings, result).hypothesis("ping-timeout").verdict is Verdict.UNKNOWN


def test_options_that_would_test_it_are_named_and_session_recovery_never_fails_the_run():
    settings, result = probed((accepted(1_000_000, 0.05),), recovers=True)
    done = diagnose(settings, result)
    stale, oversize = done.hypothesis("stale-config"), done.hypothesis("oversize")
    assert stale.verdict is Verdict.UNKNOWN and "--expect-max-payload" in stale.next_step
    assert "advertises maxPayload 1,000,000 B" in stale.evidence
    assert oversize.verdict is Verdict.UNKNOWN and "--capture" in oversize.next_step
    assert done.hypothesis("handler-silent").verdict is Verdict.UNKNOWN and "--ack" in done.hypothesis("handler-silent").next_step
    assert done.hypothesis("never-sent").verdict is Verdict.UNKNOWN and "--tap-report" in done.hypothesis("never-sent").next_step
    assert done.hypothesis("session-recovery").verdict is Verdict.CONFIRMED  # informational
    assert exit_code(done) is ExitCode.OK
    assert [h.id for h in done.hypotheses] == [q.id for q in QUESTIONS]
    assert {n for q in QUESTIONS for n in q.incident} == {1, 2, 3, 4, 5}  # every hypothesis of INCIDENT.md


def test_the_js_length_trap_is_named_when_length_says_it_fits():
    message = SizedMessage(3, "worker:data:sync", "message", "/worker", Encoder.NODE, 1_100_000, 1_099_980, 960_000)
    settings, result = probed((accepted(1_000_000, 0.05),), (message,))
    result = ProbeResult(result.settings, result.handshake, result.transports, judge_messages((message,), result.transports))
    oversize = diagnose(settings, result).hypothesis("oversize")
    assert oversize.verdict is Verdict.CONFIRMED
    assert "JSON.stringify(msg).length says 960,000, under the limit: the .length trap" in oversize.evidence


def test_a_limit_that_counts_characters_is_said_in_characters_everywhere():
    # The ASGI master's websocket: 1,000,000 characters. 1.5 MB of Chinese text is 500,000 of them and
    # fits; 1.5 million ASCII characters do not.
    chinese = SizedMessage(1, "worker:data:sync", "message", "/worker", Encoder.NODE, 1_500_000, 1_499_980, 500_000,
                           frame_chars=500_010)
    ascii_ = SizedMessage(2, "worker:messages:update", "message", "/worker", Encoder.NODE, 1_500_000, 1_499_980,
                          1_499_970, frame_chars=1_500_000)
    settings, result = probed((accepted(1_000_000, 0.05),), (chinese, ascii_))
    # The unit trial: 1,000,000 characters of Chinese text (3,000,000 B) passed.
    ws = replace(result.transports[0], limit_unit=LimitUnit.CHARACTERS, unit_trials=(accepted(3_000_000, 0.1),))
    result = ProbeResult(result.settings, result.handshake, (ws,), judge_messages((chinese, ascii_), (ws,)))
    done = diagnose(settings, result)
    oversize = done.hypothesis("oversize")
    assert oversize.verdict is Verdict.CONFIRMED
    assert "worker:messages:update (#2) is 1,500,000 B on the wire, over websocket's 1,000,000 characters" in oversize.evidence
    assert "worker:data:sync" not in oversize.evidence  # 3x the limit in bytes, but it fits in characters
    assert "websocket frames over 1,000,000 characters (close 1009)" in done.verdict
    assert "websocket frames over 1,000,000 characters" in done.hypothesis("stale-config").evidence
    # Only the Chinese text: it fits, and the room is said in characters.
    result = ProbeResult(result.settings, result.handshake, (ws,), judge_messages((chinese,), (ws,)))
    fits = diagnose(DoctorSettings(result.settings), result).hypothesis("oversize")
    assert fits.verdict is Verdict.RULED_OUT, fits.evidence
    assert "under websocket's 1,000,000 characters (499,990 characters left)" in fits.evidence


def test_unreachable_and_interrupted_runs():
    settings = DoctorSettings(ProbeSettings(url=URL))
    down = diagnose(settings, None, unprobed=Unprobed("cannot reach ...: connection refused (nothing listens on port 3000?)"))
    assert down.hypothesis("not-reachable").verdict is Verdict.CONFIRMED
    assert "ss -ltnp 'sport = :3000'" in down.hypothesis("not-reachable").next_step
    assert exit_code(down) is ExitCode.TARGET
    assert all(h.verdict is Verdict.UNKNOWN for h in down.hypotheses if h.id != "not-reachable")
    stopped = diagnose(settings, None, interrupted=True)
    assert exit_code(stopped) is ExitCode.INTERRUPTED
    assert stopped.hypothesis("oversize").evidence == "interrupted (Ctrl-C) before the probe measured anything"


def test_a_namespace_refused_by_auth_is_told_from_a_missing_one():
    settings = DoctorSettings(ProbeSettings(url=URL))
    opened = OpenInfo("sid", ("websocket",), 25_000, 20_000, 1_000_000)
    for reason, words, step in (("Invalid namespace", "the master has no namespace /worker", "a namespace the master serves"),
                                ("not authorized", "the master's auth check or a middleware", "--auth")):
        done = diagnose(settings, None, unprobed=Unprobed(f"namespace '/worker' refused the connection: {reason}", opened,
                                                          reason))
        missing = done.hypothesis("namespace-missing")
        assert missing.verdict is Verdict.CONFIRMED and words in missing.evidence and step in missing.next_step
        assert done.hypothesis("not-reachable").verdict is Verdict.RULED_OUT
        assert exit_code(done) is ExitCode.CONFIRMED


def _row(type_: str, count: int, **outcomes: int) -> TypeStats:
    return TypeStats("/worker", "message", type_, count, 100, 100, 100, 0, outcomes, 1_000_000)


def test_never_sent_from_a_tap_report():
    capture = (sized("worker:heartbeat", 122, 0), sized("worker:data:sync", 1_313_011, 1))
    settings = DoctorSettings(ProbeSettings(url=URL, messages=capture))
    both = TapEvidence("tap.json", 14.0, (_row("worker:heartbeat", 6, passed=6), _row("worker:data:sync", 1, refused=1)),
                       2, 1, 1)
    crossed = diagnose(settings, None, unprobed=Unprobed("x"), tap=both).hypothesis("never-sent")
    assert crossed.verdict is Verdict.RULED_OUT and crossed.evidence.startswith(
        "every type of the capture crossed the wire in the tap's 14.0 s: worker:heartbeat (6 crossed on /worker "
        "'message': 6 passed); worker:data:sync (1 crossed on /worker 'message': 1 refused)")
    only_heartbeats = TapEvidence("tap.json", 14.0, (_row("worker:heartbeat", 6, passed=6),), 1, 0, 0)
    missing = diagnose(settings, None, unprobed=Unprobed("x"), tap=only_heartbeats).hypothesis("never-sent")
    assert missing.verdict is Verdict.CONFIRMED and missing.evidence.startswith(
        "worker:data:sync never crossed the tap in 14.0 s, while 1 other type(s) did")
    elsewhere = TapEvidence("tap.json", 14.0, (*both.types, TypeStats("/", "message", "worker:heartbeat", 1, 9, 9, 9, 0,
                                                                     {"passed": 1}, None)), 2, 0, 0)
    other = diagnose(settings, None, unprobed=Unprobed("x"), tap=elsewhere).hypothesis("never-sent").evidence
    assert other.endswith("; worker:heartbeat (/ 'message') crossed in another namespace or on another event than the "
                          "/worker 'message' probed here: another socket?")
    no_capture = DoctorSettings(ProbeSettings(url=URL))
    assert diagnose(no_capture, None, unprobed=Unprobed("x"), tap=both).hypothesis("never-sent").verdict is Verdict.UNKNOWN


TAP_REPORT = {"schema": "imdiag.report/1", "command": "tap", "elapsed_s": 3.5, "tap": {
    "sessions": [{"sid": "a", "refused": True}, {"sid": "b", "refused": False, "reconnect_of": "a"}],
    "by_type": [{"namespace": "/worker", "event": "message", "type": "worker:data:sync", "count": 1, "bytes_min": 5,
                 "bytes_p50": 5, "bytes_max": 5, "max_payload": 1_000_000, "over_limit": 1,
                 "outcomes": {"refused": 1}, "last_refusal": "close 1009 from the master"}]}}


def test_a_tap_report_is_read_or_refused_in_one_line():
    tap = tap_evidence(TAP_REPORT, "tap report t.json")
    assert (tap.elapsed_s, tap.sessions, tap.refused_sessions, tap.reconnects) == (3.5, 2, 1, 1)
    assert tap.types[0].last_refusal == "close 1009 from the master" and tap.types[0].outcomes == {"refused": 1}
    bad_row = {**TAP_REPORT, "tap": {**TAP_REPORT["tap"], "by_type": [{"type": "x"}]}}
    for report, message in (
        ([], "not an imdiag.report/1 report"),
        ({**TAP_REPORT, "command": "probe"}, "a report of imdiag probe, not of imdiag tap"),
        ({**TAP_REPORT, "tap": None}, "the report has no 'tap' section"),
        (bad_row, "tap.by_type[0].outcomes is missing or not a dict"),
        ({**TAP_REPORT, "elapsed_s": 10**400}, "elapsed_s is not a number of seconds"),
        ({**TAP_REPORT, "elapsed_s": -1}, "elapsed_s is not a number of seconds"),
        ({**TAP_REPORT, "elapsed_s": "3.5"}, "elapsed_s is not a number of seconds"),
    ):
        with pytest.raises(InputError, match="^tap report t.json: ") as raised:
            tap_evidence(report, "tap report t.json")
        assert message in str(raised.value)
