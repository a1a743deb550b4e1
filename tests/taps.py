"""Run ``imdiag tap``'s runner in a test: its events as they come, its report at the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from imdiag.core.entries import Arrival
from imdiag.core.model import Outcome, Report, TapDetails
from imdiag.core.tap import TapEvent, TapSettings
from imdiag.masters.ledger import Ledger
from imdiag.runners.tap import Listening, run_tap

from .helpers import TIMEOUT


@dataclass
class Tap:
    listening: Listening
    stop: asyncio.Event
    task: asyncio.Task[Report]
    events: list[TapEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listening.port}"

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[TapEvent], bool], count: int = 1, timeout: float = TIMEOUT) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(found := [e for e in self.events if predicate(e)]) < count:
                await self.changed.wait()
        return found

    async def report(self) -> Report:
        self.stop.set()
        return await asyncio.wait_for(self.task, TIMEOUT)


@contextlib.asynccontextmanager
async def tapping(upstream_port: int, **options: Any) -> AsyncIterator[Tap]:
    """The tap on an ephemeral loopback port in front of ``127.0.0.1:upstream_port``."""
    stop = asyncio.Event()
    ready: asyncio.Future[Listening] = asyncio.get_running_loop().create_future()
    events: list[TapEvent] = []
    holder: dict[str, Tap] = {}

    def on_event(event: TapEvent) -> None:
        events.append(event)
        if "tap" in holder:
            holder["tap"].changed.set()
            holder["tap"].changed = asyncio.Event()

    settings = TapSettings("127.0.0.1", upstream_port, listen_port=0, **options)
    task = asyncio.create_task(run_tap(settings, stop=stop, on_event=on_event, on_ready=ready.set_result))
    try:
        done, _ = await asyncio.wait({ready, task}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what kept it from starting
        tap = holder["tap"] = Tap(ready.result(), stop, task, events)
        yield tap
    finally:
        stop.set()
        if not task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, TIMEOUT)


def outcomes_by_key(report: Report) -> dict[str, Counter[str]]:
    """Per message id (or type, for messages without one): how many the tap saw with each outcome."""
    details = report.details
    assert isinstance(details, TapDetails)
    outcome = {m.index: m.outcome for m in details.messages}
    out: dict[str, Counter[str]] = {}
    for cell in report.cells:
        key = cell.message_id or cell.type
        out.setdefault(key, Counter())[outcome[cell.index if cell.index is not None else -1].value] += 1
    return out


def assert_agrees_with_ledger(report: Report, ledger: Ledger) -> None:
    """What the tap says passed (or was acked) is exactly what the master's ledger holds, message by
    message; what it says was refused, held or lost, the ledger does not hold."""
    arrived = Counter(e.message_id or e.type or "" for e in ledger.entries if isinstance(e, Arrival))
    seen = outcomes_by_key(report)
    for key, outcomes in seen.items():
        passed = outcomes[Outcome.PASSED.value] + outcomes[Outcome.ACKED.value]
        assert passed == arrived[key], (key, dict(outcomes), arrived[key])
        assert outcomes[Outcome.IN_FLIGHT.value] == 0, (key, dict(outcomes))
    assert set(arrived) <= set(seen), set(arrived) - set(seen)
