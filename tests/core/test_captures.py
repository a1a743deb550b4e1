"""The capture format: JSON array, {meta, messages}, JSON Lines; errors with file:line:col."""

import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imdiag.core.captures import dumps_record, load_messages, loads, open_capture
from imdiag.core.errors import InputError
from imdiag.core.wire import Encoder, encode_json

HEARTBEAT = {"type": "worker:heartbeat", "payload": {"workerId": "worker1", "timestamp": 1764319599000}}
SYNC = {"type": "worker:data:sync", "payload": {"conversations": [{"peer": "王小明😀", "score": 1.0}]}}


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_array(tmp_path):
    path = write(tmp_path, "a.json", json.dumps([HEARTBEAT, SYNC], ensure_ascii=False))
    fixture = open_capture(path)
    assert (fixture.format, fixture.count, fixture.meta) == ("json", 2, {})
    messages = list(fixture.messages())
    assert [m.index for m in messages] == [0, 1]
    assert [m.type for m in messages] == ["worker:heartbeat", "worker:data:sync"]
    assert messages[1].message == SYNC and messages[1].t is None and messages[1].event is None


def test_meta_wrapper_and_replay_keys(tmp_path):
    record = {"t": 1.5, "event": "msg", "namespace": "/worker", **HEARTBEAT}
    path = write(tmp_path, "w.json", json.dumps({"meta": {"worker": "w1"}, "messages": [record]}))
    fixture = open_capture(path)
    assert fixture.meta == {"worker": "w1"}
    (captured,) = fixture.messages()
    assert captured.message == HEARTBEAT  # the replay keys are not part of the message
    assert (captured.t, captured.event, captured.namespace) == (1.5, "msg", "/worker")


def test_json_lines_stream_with_line_numbers(tmp_path):
    text = json.dumps(HEARTBEAT) + "\n\n" + json.dumps({"t": 2, **SYNC}, ensure_ascii=False) + "\n"
    path = write(tmp_path, "s.jsonl", text)
    fixture = open_capture(path)
    assert (fixture.format, fixture.count) == ("jsonl", 2)
    iterator = fixture.messages()
    assert not isinstance(iterator, list)  # streamed, not loaded
    messages = list(iterator)
    assert [m.line for m in messages] == [1, 3] and messages[1].t == 2.0


def test_json_lines_are_sniffed_without_the_suffix(tmp_path):
    path = write(tmp_path, "capture.txt", json.dumps(HEARTBEAT) + "\n" + json.dumps(HEARTBEAT) + "\n")
    assert open_capture(path).format == "jsonl"


@pytest.mark.parametrize("name", ["longfirst.json", "longfirst.txt"])
@pytest.mark.parametrize("size", [100_000, 2_000_000])
def test_json_lines_whose_first_line_outgrows_the_sniff_window_are_still_json_lines(tmp_path, name, size):
    first = json.dumps({"type": "big", "payload": "x" * size})
    path = write(tmp_path, name, "\n" + first + "\n" + json.dumps(HEARTBEAT) + "\n")
    fixture = open_capture(path)
    assert (fixture.format, fixture.count) == ("jsonl", 2)
    assert [(m.type, m.line) for m in fixture.messages()] == [("big", 2), (HEARTBEAT["type"], 3)]


@pytest.mark.parametrize("text", [
    json.dumps({"meta": {"namespace": "/w"}, "messages": [HEARTBEAT, SYNC]}, indent=2),
    json.dumps({"type": "big", "payload": "x" * 100_000}, indent=2),
    json.dumps({"messages": [{"type": "big", "payload": "x" * 100_000}, HEARTBEAT]}) + "\n",
    json.dumps(HEARTBEAT) + "\n\n",
])
def test_a_json_document_over_lines_or_in_one_long_line_is_still_one_document(tmp_path, text):
    assert open_capture(write(tmp_path, "doc.json", text)).format == "json"


def test_values_survive_so_encoders_give_the_senders_bytes(tmp_path):
    text = '[{"type":"x","payload":{"f":1.0,"big":12345678901234567890,"s":"中文😀"}}]'
    (captured,) = load_messages(write(tmp_path, "v.json", text))
    assert encode_json(captured.message, Encoder.PYTHON) == '{"type":"x","payload":{"f":1.0,"big":12345678901234567890,"s":"\\u4e2d\\u6587\\ud83d\\ude00"}}'
    assert encode_json(captured.message, Encoder.NODE) == '{"type":"x","payload":{"f":1,"big":12345678901234567000,"s":"中文😀"}}'


def test_malformed_json_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "bad.json", '[\n  {"type": "a", "payload": {}},\n  {"type": "b" "payload": 1}\n]')
    with pytest.raises(InputError, match=r"bad\.json:3:16: malformed JSON: Expecting ','"):
        open_capture(path)


def test_malformed_json_line_names_the_files_line(tmp_path):
    lines = [json.dumps(HEARTBEAT)] * 4 + ['{"type": "x", "payload": tru}']
    path = write(tmp_path, "bad.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:5:26: malformed JSON"):
        open_capture(path)


@pytest.mark.parametrize("text", ["", "  \n\n", "[]", '{"meta": {}, "messages": []}'])
def test_empty_says_what_was_expected(tmp_path, text):
    suffix = ".jsonl" if not text.strip() else ".json"
    with pytest.raises(InputError, match=r"(empty|no messages).*expected"):
        open_capture(write(tmp_path, "empty" + suffix, text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("42", "holds a JSON number"),
        ('"hello"', "holds a JSON string"),
        ("[1, 2]", "message 0 is a JSON number"),
        ('[{"kind": "x"}]', 'message 0 has no "type" string and "payload" (keys: kind)'),
        ('{"meta": {}, "messages": {}}', '"messages" is a JSON object; expected an array'),
        ('[{"type": "x", "payload": 1, "t": -1}]', 'has "t" -1'),
        ('[{"type": "x", "payload": 1, "namespace": "worker"}]', 'expected a string starting with "/"'),
    ],
)
def test_wrong_shape_says_what_was_expected(tmp_path, text, message):
    with pytest.raises(InputError, match="expected") as info:
        open_capture(write(tmp_path, "shape.json", text))
    assert message in str(info.value) and "shape.json" in str(info.value)


def test_wrong_shape_in_json_lines_names_the_line(tmp_path):
    path = write(tmp_path, "shape.jsonl", json.dumps(HEARTBEAT) + "\n[1]\n")
    with pytest.raises(InputError, match=r"shape\.jsonl:2: message 1 is a JSON array"):
        open_capture(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_capture(tmp_path / "nope.json")


def test_loads_both_forms():
    assert [c.type for c in loads(json.dumps([HEARTBEAT]))] == ["worker:heartbeat"]
    lines = json.dumps(HEARTBEAT) + "\n" + json.dumps(SYNC)
    assert [c.type for c in loads(lines)] == ["worker:heartbeat", "worker:data:sync"]


def test_recorded_lines_round_trip():
    line = dumps_record(SYNC, t=1.25, event="message", namespace="/worker")
    (captured,) = loads(line + "\n" + line)[:1]
    assert captured.message == SYNC and captured.t == 1.25 and captured.namespace == "/worker"
    # A message that is not {type, payload}, or that has keys of its own named like ours, is wrapped.
    odd = {"type": "x", "payload": 1, "t": "mine"}
    (wrapped,) = loads(dumps_record(odd, t=0.0))
    assert wrapped.message == odd and wrapped.t == 0.0
    (text,) = loads(dumps_record("just a string", t=0.0, event="log"))
    assert text.message == "just a string" and text.event == "log"


# --- real-world input (issue 10) -------------------------------------------------------------


def test_numbers_javascript_cannot_hold_are_read_and_sized_as_the_sender_would(tmp_path):
    # 400 digits overflow a double (JS reads Infinity); 5,000 are past python's int parser.
    text = '[{"type":"x","payload":[' + "9" * 400 + ",-" + "9" * 5000 + ',1e999]}]'
    (captured,) = load_messages(write(tmp_path, "n.json", text))
    assert encode_json(captured.message, Encoder.NODE) == '{"type":"x","payload":[null,null,null]}'
    line = json.dumps({"type": "x", "payload": 1})[:-1] + ',"big":' + "1" * 5000 + "}\n"
    assert open_capture(write(tmp_path, "n.jsonl", line * 2)).count == 2


@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl"])
def test_nesting_too_deep_for_the_parser_is_one_line_with_file_line_and_column(tmp_path, name):
    deep = '{"type":"x","payload":' + "[" * 5000 + "]" * 5000 + "}"
    text = json.dumps(HEARTBEAT) + "\n" + deep + "\n" if name.endswith("jsonl") else "[\n" + deep + "\n]"
    with pytest.raises(InputError) as info:
        open_capture(write(tmp_path, name, text))
    # Line 2 either way; the record opens level 1 (JSON Lines) or 2 (inside the array), its
    # payload's first '[' the next level at column 23: level 501 opens 498 or 499 columns later.
    column = 522 if name.endswith("jsonl") else 521
    assert str(info.value).startswith(f"{tmp_path / name}:2:{column}: arrays and objects nested")
    assert "500 levels" in str(info.value)


def test_a_t_past_the_largest_double_is_refused_not_a_crash(tmp_path):
    with pytest.raises(InputError, match='has "t" 1000'):
        open_capture(write(tmp_path, "t.json", '[{"type":"x","payload":1,"t":1' + "0" * 400 + "}]"))


def test_lone_surrogates_survive_in_type_payload_and_namespace(tmp_path):
    text = '[{"type":"w:\\ud800","namespace":"/w\\udc00","payload":"a\\ud800"}]'
    (captured,) = load_messages(write(tmp_path, "s.json", text))
    assert captured.message == {"type": "w:\ud800", "payload": "a\ud800"} and captured.namespace == "/w\udc00"
    assert captured.type == "w:\\ud800"  # shown escaped: a terminal or a report cannot hold it raw


def test_a_directory_fifo_or_device_is_named_for_what_it_is(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        open_capture(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        open_capture(fifo)  # reading it would block
    with pytest.raises(InputError, match="is a device, not a regular file"):
        open_capture("/dev/null")


_TEXT = st.text(st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _same(a, b) -> bool:
    """Equal values of the same types (1 is not 1.0), NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, ascii_only=st.booleans())
def test_the_lean_reader_reads_every_value_as_pythons_json_does(tmp_path_factory, value, ascii_only):
    """orjson reads non-ASCII records (no decoded copy); whatever it would read differently (a
    lone surrogate, a long integer it makes a float, NaN) goes to python's json."""
    text = json.dumps({"type": "t", "payload": value}, ensure_ascii=ascii_only)
    path = tmp_path_factory.mktemp("lean") / "v.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + b"\n")
    try:
        expected = json.loads(text)
    except ValueError:
        return
    if any("\ud800" <= c <= "\udfff" for c in text):
        return  # written raw (ensure_ascii off), a surrogate is not UTF-8: the reader refuses the file
    (captured,) = load_messages(path)
    assert _same(captured.message, expected)
