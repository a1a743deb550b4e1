"""The sweep makes each message as it writes it, and stops where the master answered."""

from __future__ import annotations

import tracemalloc

from imdiag.core.model import Cause, Cell
from imdiag.core.plan import SweepSettings
from imdiag.core.wire import WIRE_TRANSPORTS
from imdiag.runners.sweep import run_sweep

from ..helpers import TIMEOUT


async def test_a_refused_16mb_frame_is_never_made_whole():
    settings = SweepSettings(limits=(100_000,), sizes=(16_000_000,), types=("worker:messages:update",),
                             boundary=False, timeout_s=TIMEOUT)
    cells: list[Cell] = []
    tracemalloc.start()
    try:
        await run_sweep(settings, cells)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    big = [c for c in cells if c.label == "ladder"]
    assert {c.transport for c in big} == set(WIRE_TRANSPORTS)
    for cell in big:
        assert (cell.delivered, cell.cause, cell.wire_bytes) == (False, Cause.OVERSIZE_CLOSE, 16_000_000)
        assert cell.observed.written_bytes is not None and cell.observed.written_bytes < 8_000_000
    assert peak < 8_000_000, f"{peak:,} B allocated at the peak"  # no 16 MB frame, no 16 MB message
