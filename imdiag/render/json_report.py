"""The JSON report (``imdiag.report/1``): a direct, versioned serialization of the result model."""

from __future__ import annotations

import datetime
from typing import Any

from imdiag import __version__
from imdiag.model import Cell, MasterRun, Report

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
        "json_bytes": cell.json_bytes,
        "js_length": cell.js_length,
        "predicted_delivered": cell.predicted_delivered,
        "delivered": cell.delivered,
        "cause": cell.cause.value if cell.cause else None,
        "evidence": cell.evidence,
        "observed": dict(cell.observed),
    }


def master_to_dict(run: MasterRun) -> dict[str, Any]:
    return {
        "server": run.server,
        "limit": run.limit,
        "transport": run.transport.value if run.transport else None,
        "url": run.url,
        "versions": dict(run.versions),
        "advertised_max_payload": run.advertised_max_payload,
    }


def report_to_dict(report: Report, *, now: datetime.datetime | None = None) -> dict[str, Any]:
    cells = sorted(report.cells, key=cell_sort_key)
    delivered = sum(1 for c in cells if c.delivered)
    generated = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    return {
        "schema": SCHEMA,
        "command": report.command,
        "tool_version": __version__,
        "generated_at": generated,
        "settings": dict(report.settings),
        "interrupted": report.interrupted,
        "elapsed_s": report.elapsed_s,
        "masters": [master_to_dict(m) for m in report.masters],
        "summary": {
            "cells": len(cells),
            "delivered": delivered,
            "dropped": len(cells) - delivered,
            "disagreements": sum(1 for c in cells if c.disagrees),
        },
        **dict(report.extra),
        "cells": [cell_to_dict(c) for c in cells],
    }
