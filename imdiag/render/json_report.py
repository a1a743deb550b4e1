"""The JSON report (``imdiag.report/1``): a direct, versioned serialization of the result model.

Pure. Results stay typed until here: cells with their ``Observation``, a replay's details, a
probe's ``ProbeResult``. This is the only place they become dicts.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from imdiag import __version__
from imdiag.core.doctor import DoctorResult, Hypothesis, ProtocolTry, Verdict
from imdiag.core.doctor import exit_code as doctor_exit_code
from imdiag.core.judge import refusal_of
from imdiag.core.model import Cell, MasterInfo, ReplayDetails, Report, TapDetails
from imdiag.core.path import StickinessCheck
from imdiag.core.probe_result import (
    Handshake,
    MessageVerdict,
    ProbeResult,
    ProbeSettings,
    TransportLimit,
    Trial,
    settings_dict,
)
from imdiag.core.refusal import Refusal
from imdiag.core.sizing import Recommendation
from imdiag.core.urls import redact_url
from imdiag.core.worker import ClientView
from imdiag.render.tap import message_dict, session_dict

SCHEMA = "imdiag.report/1"


def cell_sort_key(cell: Cell) -> tuple[Any, ...]:
    """Lanes finish in any order; reports list cells in one stable order."""
    return (
        cell.master, cell.transport.value, cell.limit,
        cell.index if cell.index is not None else -1, cell.type, cell.message_bytes, cell.label,
    )


def cell_to_dict(cell: Cell) -> dict[str, Any]:
    return {
        "type": cell.type,
        "transport": cell.transport.value,
        "limit": cell.limit,
        "encoder": cell.encoder.value,
        "master": cell.master,
        "label": cell.label,
        "index": cell.index,
        "message_id": cell.message_id,
        "wire_bytes": cell.wire_bytes,
        "message_bytes": cell.message_bytes,
        "message_chars": cell.message_chars,
        "limit_unit": cell.limit_unit.value if cell.limit_unit else None,
        "json_bytes": cell.json_bytes,
        "js_length": cell.js_length,
        "predicted_delivered": cell.predicted_delivered,
        "delivered": cell.delivered,
        "cause": cell.cause.value if cell.cause else None,
        "refused_by": cell.refused_by.value if cell.refused_by else None,
        "evidence": cell.evidence,
        "observed": cell.observed.non_defaults(),
        **({"client": client_to_dict(cell.client)} if cell.client is not None else {}),
    }


def client_to_dict(view: ClientView) -> dict[str, Any]:
    """The worker's view of one message, as the library reported it."""
    out = {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}
    out["sent"] = view.sent.value
    d = view.disconnect
    out["disconnect"] = None if d is None else {
        "reason": d.reason, "description": d.description, "close_code": d.close_code,
        "close_reason": d.close_reason, "http_status": d.http_status, "will_reconnect": d.will_reconnect,
        "sid": d.sid, "after_s": view.disconnect_after_s,
    }
    del out["disconnect_after_s"]
    out["bytes_agree"] = view.bytes_agree
    out["new_session"] = view.new_session
    return out


def master_to_dict(info: MasterInfo) -> dict[str, Any]:
    return {
        "server": info.server,
        "limit": info.limit,
        "transport": info.transport.value if info.transport else None,
        "url": info.url,
        "versions": dict(info.versions),
        "advertised_max_payload": info.advertised_max_payload,
        "limit_unit": info.limit_unit.value if info.limit_unit else None,
    }


def _envelope(command: str, settings: Any, interrupted: bool, elapsed_s: float, masters: Sequence[MasterInfo],
              cells: Sequence[Cell], now: datetime.datetime | None) -> dict[str, Any]:
    generated = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    delivered = sum(1 for c in cells if c.delivered)
    return {
        "schema": SCHEMA,
        "command": command,
        "tool_version": __version__,
        "generated_at": generated,
        "settings": dict(settings),
        "interrupted": interrupted,
        "elapsed_s": elapsed_s,
        "masters": [master_to_dict(m) for m in masters],
        "summary": {
            "cells": len(cells),
            "delivered": delivered,
            "dropped": len(cells) - delivered,
            "disagreements": sum(1 for c in cells if c.disagrees),
        },
    }


def recommendation_to_dict(rec: Recommendation) -> dict[str, Any]:
    return {
        "limit": rec.limit, "min_limit": rec.min_limit, "chunk_budget": rec.chunk_budget,
        "largest_frame": rec.largest_frame, "path_limit": rec.ceiling,
        "path": [{"bytes": p.bytes, "setting": p.setting, "where": p.where} for p in rec.path],
        "chunks": rec.chunk_plan.chunks if rec.chunk_plan else None,
        "items_per_chunk": rec.chunk_plan.items_per_chunk if rec.chunk_plan else None,
        "lines": rec.lines(),
    }


def replay_to_dict(details: ReplayDetails) -> dict[str, Any]:
    capture = details.capture
    return {
        "capture": {"file": capture.file, "format": capture.format, "messages": capture.messages,
                    "meta": dict(capture.meta)},
        "notes": list(details.notes),
        "recommendations": [recommendation_to_dict(r) for r in details.recommendations],
    }


def tap_to_dict(details: TapDetails) -> dict[str, Any]:
    """What ``imdiag tap`` adds: the sessions, each message's path (by the cells' ``index``), per type."""
    return {"tap": {
        "upstream": details.upstream, "listen": details.listen, "hold_oversize": details.hold_oversize,
        "stopped_by": details.stopped_by, "messages_not_kept": details.messages_not_kept,
        "sessions": [session_dict(s) for s in details.sessions],
        "messages": [message_dict(m) for m in details.messages],
        "by_type": [
            {"namespace": r.namespace, "event": r.event, "type": r.type, "count": r.count, "bytes_min": r.bytes_min, "bytes_p50": r.bytes_p50,
             "bytes_max": r.bytes_max, "max_payload": r.max_payload, "over_limit": r.over_limit,
             "outcomes": dict(r.outcomes), "last_refusal": r.last_refusal or None}
            for r in details.by_type
        ],
    }}


def report_to_dict(report: Report, *, now: datetime.datetime | None = None) -> dict[str, Any]:
    # A tap's cells keep the order the messages arrived in (their index).
    order = (lambda c: c.index or 0) if isinstance(report.details, TapDetails) else cell_sort_key
    cells = sorted(report.cells, key=order)
    out = _envelope(report.command, report.settings, report.interrupted, report.elapsed_s, report.masters, cells, now)
    if isinstance(report.details, TapDetails):
        out.update(tap_to_dict(report.details))
    elif report.details is not None:
        out.update(replay_to_dict(report.details))
    out["cells"] = [cell_to_dict(c) for c in cells]
    return out


# --- the probe ---------------------------------------------------------------------------------


def handshake_to_dict(hs: Handshake) -> dict[str, Any]:
    return {
        "transport": hs.transport.value,
        "sid": hs.sid,
        "upgrades": list(hs.upgrades),
        "ping_interval_ms": hs.ping_interval_ms,
        "ping_timeout_ms": hs.ping_timeout_ms,
        "max_payload": hs.max_payload,
        "namespace": hs.namespace,
        "namespace_accepted": hs.namespace_sid is not None,
        "namespace_sid": hs.namespace_sid,
        "session_recovery": hs.recovers_sessions,
        "seconds": round(hs.seconds, 3),
    }


def trial_to_dict(trial: Trial) -> dict[str, Any]:
    return {
        "size": trial.size,
        "chars": trial.chars,
        "purpose": trial.purpose,
        "outcome": trial.outcome.value,
        "cause": trial.cause.value if trial.cause else None,
        "refused_by": trial.refused_by.value if trial.refused_by else None,
        "evidence": trial.evidence,
        "lost": trial.lost,
        "seconds": round(trial.seconds, 4),
        "observed": trial.observation.non_defaults(),
    }


def transport_limit_to_dict(limit: TransportLimit, result: ProbeResult) -> dict[str, Any]:
    failure = limit.failure
    shown = limit.refusal_trial
    advertised = result.handshake.max_payload
    return {
        "max_accepted_frame_bytes": limit.max_accepted,
        "first_rejected_frame_bytes": limit.first_rejected,
        "exact": limit.exact,
        "trials": len(limit.trials),
        "seconds": round(limit.seconds, 3),
        "failure": None if failure is None else {
            "cause": failure.cause.value if failure.cause else None,
            "refused_by": failure.refused_by.value if failure.refused_by else None,
            "refusal": refusal_to_dict(refusal_of(failure.observation)),
            "evidence": failure.evidence,
            "http_status": failure.observation.http_status,
            "close_code": failure.observation.close_code,
            "close_reason": failure.observation.close_reason,
            "session_survived": failure.session_survived,
        },
        "refused_by": shown.refused_by.value if shown is not None and shown.refused_by else None,
        "explanation": result.explanations.get(limit.transport, ""),
        "summary": result.summary.get(limit.transport, ""),
        "diagnosis": limit.diagnosis.value if limit.diagnosis else None,
        "diagnosis_evidence": limit.diagnosis_evidence or None,
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
        # what the limit counts: "bytes" or "characters" (null: not told, unit_note says why)
        "limit_unit": limit.limit_unit.value if limit.limit_unit else None,
        "unit_note": limit.unit_note or None,
        "size_close": None if limit.size_close is None else {
            "code": limit.size_close.code, "refuser": limit.size_close.refuser, "evidence": limit.size_close.evidence,
        },
        "trial_log": [trial_to_dict(t) for t in limit.all_trials],
    }


def refusal_to_dict(refusal: Refusal | None) -> dict[str, Any] | None:
    if refusal is None:
        return None
    return {
        "by": refusal.by.value, "how": refusal.how, "status": refusal.status, "close_code": refusal.close_code,
        "server": refusal.server, "body": refusal.body, "engineio_code": refusal.engineio_code,
        "message": refusal.message,
    }


def stickiness_to_dict(check: StickinessCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "requests": check.requests, "other_node": check.other_node, "share": round(check.share, 4),
        "failed": check.failed, "broken": check.broken, "evidence": check.evidence or None,
        "refused_by": check.refused_by.value if check.refused_by else None, "finding": check.finding(),
    }


def message_verdict_to_dict(verdict: MessageVerdict) -> dict[str, Any]:
    m = verdict.message
    return {
        "index": m.index,
        "type": m.type,
        "event": m.event,
        "namespace": m.namespace,
        "encoder": m.encoder.value,
        "frame_bytes": m.frame_bytes,
        "frame_chars": m.frame_chars,
        "json_bytes": m.json_bytes,
        "js_length": m.js_length,
        "error": m.error or None,
        "transports": {
            f.transport.value: {
                "limit": f.limit,
                "fits": f.fits,
                "unit": f.unit.value,
                "headroom": f.headroom,  # in unit
                "headroom_bytes": f.headroom_bytes,
                "headroom_pct": None if f.headroom_pct is None else round(f.headroom_pct, 2),
                "note": f.note or None,
            }
            for f in verdict.fits
        },
    }


def _probe_masters(result: ProbeResult) -> list[MasterInfo]:
    hs = result.handshake
    return [
        MasterInfo("target", redact_url(result.settings.url), hs.max_payload if hs.max_payload is not None else (t.max_accepted or 0),
                   transport=t.transport, advertised_max_payload=hs.max_payload)
        for t in result.transports
    ]


def probe_sections(result: ProbeResult) -> dict[str, Any]:
    """What a probe measured: the handshake, each transport's limit, sticky sessions, the messages."""
    return {
        "advertised_max_payload": result.handshake.max_payload,
        "handshake": handshake_to_dict(result.handshake),
        "transports": {t.transport.value: transport_limit_to_dict(t, result) for t in result.transports},
        "stickiness": stickiness_to_dict(result.stickiness),
        "unit_finding": result.unit_finding or None,
        "message_verdicts": [message_verdict_to_dict(v) for v in result.messages],
        "recommendations": [recommendation_to_dict(r) for r in result.recommendations],
    }


def probe_to_dict(result: ProbeResult, *, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The probe's report (``"command": "probe"``): the envelope, then the probe's own sections."""
    out = _envelope("probe", settings_dict(result.settings), result.interrupted, round(result.elapsed_s, 3),
                    _probe_masters(result), [], now)
    out.update(probe_sections(result))
    out["cells"] = []
    return out


# --- doctor ------------------------------------------------------------------------------------


def hypothesis_to_dict(h: Hypothesis) -> dict[str, Any]:
    return {
        "id": h.id, "verdict": h.verdict.value, "evidence": h.evidence, "next_step": h.next_step or None,
        "question": h.question.question, "incident_hypotheses": list(h.question.incident),
        "informational": h.question.informational,
    }


def _protocol_try_to_dict(attempt: ProtocolTry | None) -> dict[str, Any] | None:
    if attempt is None:
        return None
    answer = attempt.answer
    return {
        "eio": 3, "answered": attempt.answered, "evidence": attempt.describe(),
        "http_status": answer.status if answer is not None else None,
        "server": answer.server if answer is not None else None,
        "body": answer.body[:80] if answer is not None else None,
    }


def doctor_to_dict(result: DoctorResult, *, now: datetime.datetime | None = None) -> dict[str, Any]:
    """``imdiag doctor``'s report (``"command": "doctor"``): the hypotheses, the verdict, the fixes,
    and under ``probe`` what the probe measured (null when it could not run)."""
    settings = {**settings_dict(result.settings.probe), "capture": result.settings.capture_path,
                "expect_max_payload": result.settings.expect_max_payload,
                "tap_report": result.settings.tap_report_path}
    probe = result.probe
    out = _envelope("doctor", settings, result.interrupted, round(result.elapsed_s, 3),
                    _probe_masters(probe) if probe is not None else [], [], now)
    out.update({
        "hypotheses": [hypothesis_to_dict(h) for h in result.hypotheses],
        "confirmed": [h.id for h in result.hypotheses if h.verdict is Verdict.CONFIRMED],
        "verdict": result.verdict,
        "advice": list(result.advice),
        "exit_code": int(doctor_exit_code(result)),
        "engineio_v3": _protocol_try_to_dict(result.eio3),
        "unreachable": result.unprobed.error if result.unprobed is not None else None,
        "probe": probe_sections(probe) if probe is not None else None,
        "cells": [],
    })
    return out


def probe_not_started_to_dict(settings: ProbeSettings, elapsed_s: float, *,
                              now: datetime.datetime | None = None) -> dict[str, Any]:
    """The report of a probe interrupted before the handshake: its settings and that nothing
    was measured (handshake null, no transport), so a script reading it is not left guessing."""
    out = _envelope("probe", settings_dict(settings), True, round(elapsed_s, 3), [], [], now)
    out.update({
        "advertised_max_payload": None,
        "handshake": None,
        "transports": {},
        "message_verdicts": [message_verdict_to_dict(MessageVerdict(m, ())) for m in settings.messages],
        "cells": [],
    })
    return out
