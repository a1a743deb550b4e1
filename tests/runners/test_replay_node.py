"""Replay against the real Node.js socket.io master: batching over polling, as a client batches; and
against every master at once (``--master all``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imdiag.core.model import Cause
from imdiag.core.plan import MASTER_CHOICES
from imdiag.core.wire import Encoder, LimitUnit, Transport, encode_json, event_frame, wire_namespace
from imdiag.runners.replay import ReplaySettings, run_replay

from ..helpers import TIMEOUT

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def run_imdiag_sync(*args: str) -> tuple[int, str, str]:
    """The CLI in a process of its own: its stdout is a real pipe, with the locale's encoding."""
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "imdiag", *args], capture_output=True, env=env, timeout=TIMEOUT * 12,
                          check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()

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
        assert cell.cause is Cause.BATCHED_OVERSIZE, cell.evidence
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
# A lone surrogate, which JSON.stringify writes as a 6-byte \udXXX escape and socket.io-client
# sends: in a payload, in the type, in the event, and in the namespace (written raw: U+FFFD).
NAMESPACE = "/w\ud800"
SURROGATE_MESSAGES = [
    {"type": "worker:heartbeat", "id": "s-1", "payload": {"text": "a\ud800b", "n": 1.0, "big": 2**60}},
    {"type": "worker:\udc00", "id": "s-2", "payload": {"pair": "\ud83d\ude00", "lone": "\udfff"}},
    {"type": "worker:plain", "payload": {"no id": "found by digest \ud800"}},  # matched by digest
]
EVENTS = ["message", "message", "ev\udc00"]


def _table_rows(stdout: str) -> dict[int, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if line.startswith("│") and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_size_and_replay_give_json_stringify_bytes_and_right_verdicts_for_lone_surrogates(tmp_path, node_oracle):
    records = [{**m, "event": e} if e != "message" else m for m, e in zip(SURROGATE_MESSAGES, EVENTS)]
    capture = tmp_path / "surrogates.json"
    capture.write_text(json.dumps({"meta": {"namespace": NAMESPACE}, "messages": records}))  # \u escapes
    expected = [node_oracle.frame(e, NAMESPACE, m) for m, e in zip(SURROGATE_MESSAGES, EVENTS)]
    assert expected[2].startswith("42/w\ufffd,".encode())  # the namespace: U+FFFD, 3 bytes
    for message, event, frame in zip(SURROGATE_MESSAGES, EVENTS, expected):
        # The very bytes replay sends: the model equals socket.io-client's encoder.
        ours = event_frame(encode_json(message, Encoder.NODE).encode(), encoder=Encoder.NODE, event=event,
                           namespace=wire_namespace(NAMESPACE, Encoder.NODE))
        assert ours == frame

    code, stdout, stderr = run_imdiag_sync("size", str(capture))
    assert code == 0 and "Traceback" not in stderr, stderr
    rows = _table_rows(stdout)
    for index, message in enumerate(SURROGATE_MESSAGES):
        stringified = node_oracle.stringify(message)
        _, type_shown, js_len, json_bytes, frame_bytes, _, *python = rows[index]
        assert type_shown == message["type"].replace("\udc00", "\\udc00")
        assert int(json_bytes.replace(",", "")) == len(stringified.encode())
        assert int(js_len.replace(",", "")) == len(stringified.encode("utf-16-le")) // 2  # .length, UTF-16 units
        assert int(frame_bytes.replace(",", "")) == len(expected[index])
        assert python[0] == "cannot encode"  # python-socketio cannot send a lone surrogate in the namespace

    out = tmp_path / "report.json"
    code, stdout, stderr = run_imdiag_sync("replay", str(capture), "--master", "both", "--json", str(out))
    assert code == 0 and "Traceback" not in stderr, stderr
    report = json.loads(out.read_text())
    assert report["settings"]["namespace"] == "/w\ufffd"
    cells = report["cells"]
    assert {(c["master"], c["transport"]) for c in cells} == {
        (m, t) for m in ("python", "node") for t in ("websocket", "polling")}
    for cell in cells:
        assert cell["delivered"] is True, cell["evidence"]  # the masters' ledgers hold each one
        assert cell["message_bytes"] == len(expected[cell["index"]])
