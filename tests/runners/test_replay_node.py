"""Replay against the real Node.js socket.io master: batching over polling, as a client batches."""

import json

import pytest

from imdiag.core.wire import Transport
from imdiag.runners.replay import ReplaySettings, run_replay

from ..helpers import TIMEOUT

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
