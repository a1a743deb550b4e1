"""``imdiag size``: every figure by the one namespace rule, any JSON a sender can write, one-line errors."""

from __future__ import annotations

import json

import pytest

from imdiag.cli.probe import load_messages
from imdiag.core.wire import Encoder

from ..helpers import assert_one_line_error, run_main

# {"type":"t","payload":"x...x"} is N + 25 bytes; 42/worker,["message", ... ] adds 22: 300,001 B.
PAD = 300_001 - 25 - 22


def test_size_takes_the_namespace_from_the_captures_meta_like_replay(tmp_path):
    capture = tmp_path / "worker.json"
    capture.write_text(json.dumps({"meta": {"namespace": "/worker"}, "messages": [{"type": "t", "payload": "x" * PAD}]}))
    code, stdout, stderr = run_main("size", str(capture), "--limit", "300000")
    assert code == 0, stderr
    assert "300,001" in stdout and "-1 B" in stdout  # in '/' it would be 8 B short and shown as fitting
    code, stdout, _ = run_main("size", str(capture), "--limit", "300000", "--namespace", "/")
    assert code == 0 and "299,993" in stdout and "+7 B" in stdout  # --namespace wins, as everywhere


def test_probe_message_file_is_sized_by_the_same_rule(tmp_path):
    capture = tmp_path / "worker.json"
    capture.write_text(json.dumps({"meta": {"namespace": "/worker"}, "messages": [{"type": "t", "payload": "x" * PAD}]}))
    (sized,) = load_messages(str(capture), encoder=Encoder.NODE, event="message", url_namespace="/")
    assert (sized.namespace, sized.frame_bytes) == ("/worker", 300_001)  # the URL names no namespace
    (sized,) = load_messages(str(capture), encoder=Encoder.NODE, event="message", url_namespace="/w")
    assert (sized.namespace, sized.frame_bytes) == ("/w", 300_001 - 5)  # the URL's namespace is where it goes


def test_numbers_no_sender_can_hold_are_sized_as_the_sender_would(tmp_path):
    capture = tmp_path / "n.json"
    capture.write_text('[{"type":"t","payload":[' + "9" * 400 + "," + "9" * 5000 + "]}]")
    code, stdout, stderr = run_main("size", str(capture))
    assert code == 0, stderr
    # JSON.stringify writes both as null: {"type":"t","payload":[null,null]} is 34 B, its frame 48 B.
    assert " 34 " in stdout and " 48 " in stdout
    assert "python encoder: cannot encode with python's json.dumps: an integer of 5,000 digits" in stdout


def test_a_capture_nested_too_deep_is_one_line(tmp_path):
    capture = tmp_path / "deep.json"
    capture.write_text('[{"type":"t","payload":' + "[" * 3000 + "]" * 3000 + "}]")
    code, _, stderr = run_main("size", str(capture))
    assert_one_line_error(code, stderr, 2, f"{capture}:1:", "nested 3,002 levels deep")


@pytest.mark.parametrize("namespace", ["/a?b", "/a,b"])
@pytest.mark.parametrize("command", [["size", "fixtures/data_sync.json"], ["replay", "fixtures/data_sync.json"],
                                     ["size-sweep"], ["fake-master"]])
def test_a_namespace_no_packet_can_carry_is_refused_up_front(command, namespace):
    code, _, stderr = run_main(*command, "--namespace", namespace)
    assert_one_line_error(code, stderr, 2, f"invalid namespace {namespace!r}", "Socket.IO")


@pytest.mark.parametrize("namespace", ["/a?b", "/a,b"])
def test_a_captures_namespace_no_packet_can_carry_names_file_and_line(tmp_path, namespace):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"meta": {"namespace": namespace}, "messages": [{"type": "t", "payload": 1}]}))
    code, _, stderr = run_main("size", str(meta))
    assert_one_line_error(code, stderr, 2, f'{meta}: "meta" has "namespace"', "Socket.IO")
    lines = tmp_path / "records.jsonl"
    lines.write_text('{"type":"t","payload":1}\n' + json.dumps({"namespace": namespace, "type": "t", "payload": 1}) + "\n")
    code, _, stderr = run_main("size", str(lines))
    assert_one_line_error(code, stderr, 2, f'{lines}:2: message 1 has "namespace"', "Socket.IO")


def test_a_probe_url_whose_path_no_packet_can_carry_is_refused():
    code, _, stderr = run_main("probe", "--url", "http://127.0.0.1:9/a,b")
    assert_one_line_error(code, stderr, 2, "invalid --url 'http://127.0.0.1:9/a,b'", "','")


@pytest.mark.parametrize("event", ["connect", "disconnect", "connect_error", "disconnecting", "newListener",
                                   "removeListener", ""])
def test_a_record_event_no_client_can_emit_names_file_and_line(tmp_path, event):
    lines = tmp_path / "events.jsonl"
    lines.write_text('{"type":"t","payload":1}\n' + json.dumps({"event": event, "type": "a", "payload": 1}) + "\n")
    code, _, stderr = run_main("size", str(lines))
    why = "must not be empty" if not event else "a reserved Socket.IO event name"
    assert_one_line_error(code, stderr, 2, f'{lines}:2: message 1 has "event"', why)
