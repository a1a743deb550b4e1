"""Replay against the real Node.js socket.io master: batching over polling, as a client batches; and
against every master at once (``--master all``)."""

import json
from pathlib import Path

import pytest

from imdiag.core.model import Cause
from imdiag.core.plan import MASTER_CHOICES
from imdiag.core.wire import LimitUnit, Transport
from imdiag.runners.replay import ReplaySettings, run_replay

from ..helpers import TIMEOUT

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

pytestmark = pytest.mark.node


def update(n_items: int) -> dict:
    items = [{"messageId": f"{i:012d}", "content": "好的，收到，谢谢亲", "n": i} for i in range(n_items)]
    return {"type": "worker:messages:update", "payload": {"workerId": "worker1", "messages": items}}


async def test_node_master_refuses_a_batched_post_whose_messages_fit_alone(tmp_path):
    messages = [{"type": "worker:heartbeat", "payload": {"ts": 1}}, update(700), update(701)]
    capture = tmp_path / "burst.jsonl"
    capture.write_text("\n".join(json.dumps({"t": 0.0, **m}, ensure_ascii=False) for m in messages) + "\n")
    common = {"path": str(capture), "limits": (100_000,), "transports": (Transport.POLLING,), "masters": ("node",),
                  "timing": "original", "timeout_s": TIMEOUT}
    report = await run_replay(ReplaySettings(**common, client_batch="whole"), [])
    by = {c.index: c for c in report.cells}
    assert by[0].delivered and all(c.master == "node" for c in report.cells)
    for index in (1, 2):
        cell = by[index]
        assert not cell.delivered and cell.observed.http_status == 413, cell.evidence
        assert cell.observed.packets_in_body == 2 and cell.wire_bytes > 100_000 > cell.message_bytes
    # engine.io-client >= 6.1 splits its flush at maxPayload: then each message arrives.
    report = await run_replay(ReplaySettings(**common, client_batch="split"), [])
    assert all(c.delivered for c in report.cells), [c.evidence for c in report.cells]


async def test_the_snapshot_fits_the_asgi_master_over_websocket_only():
    """`replay fixtures/data_sync.json --limit 1.2MB --master all`: the snapshot is 1,313,003 B but
    1,115,989 characters. The byte-counting masters refuse it; the ASGI master takes it over websocket,
    where its limit counts characters, and refuses it over polling, where it counts bytes."""
    settings = ReplaySettings(path=str(FIXTURES / "data_sync.json"), limits=(1_200_000,), masters=MASTER_CHOICES["all"],
                              timeout_s=TIMEOUT)
    report = await run_replay(settings, [])
    snapshot = {(c.master, c.transport): c for c in report.cells if c.type == "worker:data:sync"}
    assert len(snapshot) == 6
    for cell in snapshot.values():
        assert (cell.message_bytes, cell.message_chars) == (1_313_003, 1_115_989)
        assert cell.predicted_delivered == cell.delivered, cell.evidence  # the model uses each master's unit
    delivered = {key for key, cell in snapshot.items() if cell.delivered}
    assert delivered == {("asgi", Transport.WEBSOCKET)}
    assert snapshot[("asgi", Transport.WEBSOCKET)].limit_unit is LimitUnit.CHARACTERS
    assert snapshot[("asgi", Transport.POLLING)].observed.http_status == 400
    assert {c.cause for key, c in snapshot.items() if key not in delivered} == {Cause.OVERSIZE_CLOSE}
    assert all(c.delivered for c in report.cells if c.type != "worker:data:sync")
    units = {(m.server, m.transport): m.limit_unit for m in report.masters}
    assert units[("asgi", Transport.WEBSOCKET)] is LimitUnit.CHARACTERS
    assert {u for key, u in units.items() if key != ("asgi", Transport.WEBSOCKET)} == {LimitUnit.BYTES}
