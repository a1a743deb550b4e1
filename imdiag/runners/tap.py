"""Run ``imdiag tap``: the relay in front of the upstream, the tracker behind it, until stopped.

The relay forwards every byte; the tracker (pure) decides what each session and message did and
emits events as they happen; this runner wires them, settles quiet websocket frames on a timer,
writes ``--record`` as messages arrive, and returns the report when ``stop`` is set or the
duration is over. It prints nothing: events go to ``on_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from imdiag.core.model import MasterInfo, Report, TypeStats
from imdiag.core.tap import Captured, TapEvent, TapSettings, Tracker
from imdiag.masters.record import Recorder
from imdiag.relays.server import Relay, Upstream

TICK_S = 0.25  # how often quiet websocket frames are settled (SETTLE_S is what decides)


@dataclass(frozen=True)
class Listening:
    """Handed to ``on_ready`` once the tap listens: its port, and the live per-type figures."""

    port: int
    by_type: Callable[[], tuple[TypeStats, ...]]
    buffered: Callable[[], int]  # bytes the relay holds right now


async def run_tap(settings: TapSettings, *, stop: asyncio.Event, on_event: Callable[[TapEvent], None],
                  on_ready: Callable[[Listening], None] = lambda listening: None) -> Report:
    """Relay until ``stop`` is set or ``settings.duration_s`` has passed; TargetError when the
    address cannot be bound or the upstream cannot be reached at all."""
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        recorder = None
        if settings.record_path is not None:
            recorder = Recorder(settings.record_path, append=False)
            stack.callback(recorder.close)
        live = True

        def emit(event: TapEvent) -> None:
            if not live:
                return
            if isinstance(event, Captured):
                if recorder is not None:
                    recorder.write(event.message, t=event.t, event=event.event, namespace=event.namespace)
                return
            on_event(event)

        tracker = Tracker(path=settings.path, clock=time.monotonic, emit=emit, hold_oversize=settings.hold_oversize,
                          record=recorder is not None)
        upstream = Upstream(settings.upstream_host, settings.upstream_port, settings.tls, settings.insecure)
        relay = Relay(upstream, tracker, host=settings.listen_host, port=settings.listen_port)
        await relay.check_upstream()
        await relay.start()
        ticker = asyncio.create_task(_tick(tracker))
        stopped_by = "ctrl-c"
        try:
            on_ready(Listening(relay.port, tracker.by_type, lambda: relay.buffered))
            try:
                await asyncio.wait_for(stop.wait(), settings.duration_s)
            except TimeoutError:
                stopped_by = "duration"
            tracker.tick()
            cells, details = tracker.finish(upstream=upstream.url, listen=settings.listen, stopped_by=stopped_by)
            live = False  # what the shutdown itself does to the sessions is not the worker's traffic
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await relay.stop()
    advertised = next((s.max_payload for s in details.sessions if s.max_payload is not None), None)
    master = MasterInfo("live", upstream.url, advertised or 0, path=settings.path, advertised_max_payload=advertised)
    return Report("tap", settings.to_dict(), cells, masters=[master], elapsed_s=round(time.monotonic() - start, 3),
                  details=details)


async def _tick(tracker: Tracker) -> None:
    while True:
        await asyncio.sleep(TICK_S)  # sleep-ok: a period, the settle time itself is measured per frame
        tracker.tick()
