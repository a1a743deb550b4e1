"""The wire model, pinned to exact strings and byte counts."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio import packet as sio_packet

from imdiag.core.entries import arrival_digest, canonical_digest, canonical_json, reencoded_bytes
from imdiag.core.errors import EncodeError
from imdiag.core.wire import (
    Encoder,
    HugeInt,
    WireSize,
    code_points,
    encode_json,
    encode_json_bytes,
    event_args,
    event_frame,
    event_packet,
    frame_overhead,
    frame_parts,
    js_length,
    js_length_utf8,
    js_number,
    js_stringify,
    measure,
    parse_event,
    parse_event_head,
    parse_open,
    parse_sio,
    polling_body,
    printable,
    split_v3_payload,
    v3_packet,
    wire_namespace,
    ws_frame_header_bytes,
)

MSG = {"type": "worker:data:sync", "payload": {"text": "你好😀", "n": 1}}


def test_node_encoder_writes_raw_utf8():
    assert encode_json(MSG, Encoder.NODE) == '{"type":"worker:data:sync","payload":{"text":"你好😀","n":1}}'


def test_python_encoder_escapes_non_ascii():
    assert encode_json(MSG, Encoder.PYTHON) == (
        '{"type":"worker:data:sync","payload":{"text":"\\u4f60\\u597d\\ud83d\\ude00","n":1}}'
    )


@pytest.mark.parametrize(
    ("namespace", "ack_id", "expected"),
    [
        ("/", None, '42["message",{"a":"é"}]'),
        ("", None, '42["message",{"a":"é"}]'),
        ("/worker", None, '42/worker,["message",{"a":"é"}]'),
        ("/", 7, '427["message",{"a":"é"}]'),
        ("/worker", 123, '42/worker,123["message",{"a":"é"}]'),
    ],
)
def test_event_packet_framing(namespace, ack_id, expected):
    args = event_args("message", encode_json({"a": "é"}, Encoder.NODE), Encoder.NODE)
    assert event_packet(args, namespace, ack_id) == expected


def test_exact_byte_counts_both_encoders():
    node = measure(encode_json(MSG, Encoder.NODE), encoder=Encoder.NODE, namespace="/worker", ack_id=5)
    # 6 + 4 + 2*3 (CJK) + 4 (emoji) ... counted by hand from the strings above
    framing = len('42/worker,5["message",]')
    # characters (code points): the emoji is one, where JS .length says two
    assert node == WireSize(json_bytes=65, js_length=59, frame_bytes=65 + framing, frame_chars=58 + framing)
    py = measure(
        encode_json(MSG, Encoder.PYTHON), encoder=Encoder.PYTHON, namespace="/worker", ack_id=5,
        node_json=encode_json(MSG, Encoder.NODE),
    )
    assert py.json_bytes == 79  # "\\u4f60\\u597d\\ud83d\\ude00" is 24 bytes where node writes 10
    assert py.js_length == 59  # JS .length does not depend on who encoded it
    assert py.frame_bytes == 79 + 23
    assert py.frame_chars == py.frame_bytes  # python's escapes are ASCII


def test_code_points_count_characters_as_python_len_does():
    for text in ("abc", "你好", "😀", "é", "中文 and ASCII 🎉", "\ud800"):
        data = text.encode("utf-8", "surrogatepass")
        assert code_points(data) == len(text), text
    assert code_points("你好".encode()) == 2 and len("你好".encode()) == 6


def test_js_length_counts_utf16_units_not_bytes():
    assert js_length("abc") == 3
    assert js_length("你好") == 2  # 6 bytes in UTF-8
    assert js_length("😀") == 2  # 4 bytes in UTF-8, a surrogate pair in JS


def test_frame_overhead_and_event_frame():
    assert frame_overhead("message", "/", None, Encoder.NODE) == len('42["message",]')
    assert event_frame(b'{"a":1}', encoder=Encoder.NODE, namespace="/w", ack_id=1) == b'42/w,1["message",{"a":1}]'


def test_polling_body_joins_with_record_separator():
    assert polling_body(["42[1]", "3"]) == "42[1]\x1e3"


def test_ws_frame_header_sizes():
    assert [ws_frame_header_bytes(n) for n in (125, 126, 65535, 65536)] == [6, 8, 8, 14]
    assert ws_frame_header_bytes(10, masked=False) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"), (-0.0, "0"), (0.5, "0.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
        (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (123456.789, "123456.789"),
        (float("nan"), "null"), (float("inf"), "null"), (2.5e300, "2.5e+300"),
    ],
)
def test_js_number_matches_ecmascript(value, expected):
    assert js_number(value) == expected


def test_js_stringify_edge_cases():
    assert js_stringify({"b": 1, "2": 2, "1": 3, "01": 4}) == '{"1":3,"2":2,"b":1,"01":4}'
    assert js_stringify(["\ud800", "\x1f", "\u2028"]) == '["\\ud800","\\u001f","\u2028"]'
    assert js_stringify(2**60) == "1152921504606847000"  # a JS number: 2**60 loses its last digits
    assert js_stringify([1.0, float("nan")]) == "[1,null]"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_node_fast_path_equals_reference_stringify(value):
    assert encode_json(value, Encoder.NODE) == js_stringify(value)


@settings(max_examples=200, deadline=None)
@given(
    json_values,
    st.sampled_from(["/", "/worker", "/a-b"]),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.sampled_from(["message", "事件"]),
)
def test_python_encoder_equals_python_socketio_packet_encode(value, namespace, ack_id, event):
    message = {"type": "t", "payload": value}
    ours = event_packet(event_args(event, encode_json(message, Encoder.PYTHON), Encoder.PYTHON), namespace, ack_id)
    pkt = sio_packet.Packet(sio_packet.EVENT, data=[event, message], namespace=namespace, id=ack_id)
    assert ours == "4" + pkt.encode()


def test_parse_open_and_sio():
    info = parse_open('0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}')
    assert (info.sid, info.max_payload, info.upgrades) == ("abc", 1_000_000, ("websocket",))
    pkt = parse_sio('4/worker,{"message":"Invalid namespace"}')
    assert (pkt.type, pkt.namespace, pkt.data) == ("4", "/worker", {"message": "Invalid namespace"})
    ack = parse_sio('312["ok"]')
    assert (ack.type, ack.namespace, ack.ack_id, ack.data) == ("3", "/", 12, ["ok"])
    assert json.loads('"x"') == parse_sio('2["x"]').data[0]


@pytest.mark.parametrize("packet", ['0{"upgrades":[]}', '0[1,2]', '0{"sid":"a","pingInterval":"soon"}', "0{nope", "hello"])
def test_parse_open_refuses_a_bad_open_packet_with_a_value_error(packet):
    with pytest.raises(ValueError):
        parse_open(packet)


@given(st.text())
def test_js_length_from_utf8_bytes_equals_js_length(text):
    assert js_length_utf8(text.encode("utf-8", "surrogatepass")) == js_length(text)


def test_parse_sio_reads_the_attachment_count():
    pkt = parse_sio('52-/worker,7["message",{"_placeholder":true,"num":0}]')
    assert (pkt.type, pkt.attachments, pkt.namespace, pkt.ack_id) == ("5", 2, "/worker", 7)
    with pytest.raises(ValueError, match="attachment count"):
        parse_sio('5["x"]')


@settings(max_examples=150, deadline=None)
@given(
    json_values,
    st.sampled_from(["/", "/worker", "/名字"]),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.sampled_from(["message", "事件", 'a"b']),
    st.sampled_from(list(Encoder)),
)
def test_parse_event_sizes_the_argument_as_sent(value, namespace, ack_id, event, encoder):
    message = {"type": "t", "payload": value}
    text = encode_json(message, encoder)
    packet = event_packet(event_args(event, text, encoder), namespace, ack_id)
    parsed = parse_event(packet[1:].encode("utf-8", "surrogatepass"))
    assert (parsed.namespace, parsed.event, parsed.ack_id, parsed.type) == (namespace, event, ack_id, "t")
    assert parsed.json_bytes == len(text.encode("utf-8", "surrogatepass"))
    assert parsed.js_length == js_length(encode_json(message, Encoder.NODE))  # JSON.stringify(msg).length
    if not text.isascii():
        assert parsed.encoder is Encoder.NODE


def test_parse_event_shapes():
    binary = parse_event(b'51-/worker,3["file",{"type":"f","data":{"_placeholder":true,"num":0}}]')
    assert (binary.attachments, binary.ack_id, binary.event, binary.type) == (1, 3, "file", "f")
    several = parse_event(b'2["m",{"type":"a"},{"more":1}]')
    assert (several.json_bytes, several.type) == (len(b'{"type":"a"}'), "a")
    spaced = parse_event(b'2[ "m" , {"type":"a"} ]')  # not what clients send, still read exactly
    assert spaced.json_bytes == len(b'{"type":"a"}')
    python = parse_event(b'2["m",{"type":"\\u4f60"}]')
    assert (python.encoder, python.js_length, python.type) == (Encoder.PYTHON, len('{"type":"你"}'), "你")
    assert parse_event(b'2["m"]').message is None and parse_event(b'2[1,2]').event is None
    with pytest.raises(ValueError):
        parse_event(b'0/worker,')  # a CONNECT, not an event
    with pytest.raises(ValueError):
        parse_event(b'2["m",{"type":')  # cut short


def test_engineio_v3_payloads_count_utf16_units():
    """socket.io 2.x's polling body, as it answered an EIO=3 handshake on loopback."""
    body = '97:0{"sid":"83NjBpCHkUQUiLDNAAAB","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}2:40'
    opened, connected = split_v3_payload(body)
    assert parse_open(opened).sid == "83NjBpCHkUQUiLDNAAAB" and connected == "40"
    assert v3_packet("1") == "1:1" and v3_packet("4😀") == "3:4😀"  # an emoji is two UTF-16 units
    assert split_v3_payload(v3_packet("4😀") + v3_packet("2")) == ["4😀", "2"]
    for bad in ('0{"sid":"x"}', "9:40", ":1"):
        with pytest.raises(ValueError):
            split_v3_payload(bad)


# --- any string and number JSON can carry (issue 10) ---------------------------------------


def test_lone_surrogates_are_escaped_like_json_stringify_in_every_part_of_a_frame():
    message = {"type": "worker:\udc00", "payload": {"s": "x\ud800y", "pair": "\ud83d\ude00"}}
    assert encode_json(message, Encoder.NODE) == '{"type":"worker:\\udc00","payload":{"s":"x\\ud800y","pair":"😀"}}'
    assert encode_json(message, Encoder.PYTHON) == (
        '{"type":"worker:\\udc00","payload":{"s":"x\\ud800y","pair":"\\ud83d\\ude00"}}')
    # The event is JSON too: escaped. The namespace is written raw: Node's Buffer.from makes U+FFFD of it.
    head, _ = frame_parts("ev\ud800", "/w\ud800", None, Encoder.NODE)
    assert head == '42/w\ufffd,["ev\\ud800",'.encode()
    assert wire_namespace("/w\ud800", Encoder.NODE) == "/w\ufffd"
    with pytest.raises(EncodeError, match="lone surrogate"):
        frame_parts("message", "/w\ud800", None, Encoder.PYTHON)  # python's str.encode refuses it


def test_numbers_javascript_cannot_hold_are_written_as_the_sender_would():
    big = 10**400  # past the largest double: JS reads Infinity, JSON.stringify writes null
    assert encode_json([big, -big, 2**60], Encoder.NODE) == "[null,null,1152921504606847000]"
    assert js_stringify([big, -big]) == "[null,null]"
    assert encode_json([big], Encoder.PYTHON) == f"[{big}]"  # python writes every digit
    huge = HugeInt("9" * 5000)  # what the capture reader makes of a 5,000-digit literal
    assert encode_json({"n": huge}, Encoder.NODE) == '{"n":null}'
    with pytest.raises(EncodeError, match="5,000 digits"):
        encode_json({"n": huge}, Encoder.PYTHON)  # python's json.dumps refuses more than 4,300 digits
    assert encode_json([float("inf"), float("nan")], Encoder.PYTHON) == "[Infinity,NaN]"


@pytest.mark.parametrize("encoder", list(Encoder))
def test_any_depth_of_nesting_is_encoded(encoder):
    deep: list = []
    for _ in range(5000):  # deeper than python's recursion limit
        deep = [deep, 1.5]
    text = encode_json(deep, encoder)
    assert text == "[" * 5000 + "[]" + ",1.5]" * 5000
    assert canonical_json({"a": deep}).decode() == '{"a":' + text + "}"


def test_canonical_form_is_json_stringify_with_sorted_keys():
    message = {"b": 1.0, "a": [2**60, -0.0, 1e21, float("nan")], "\ud83d\ude00": "\ud800", "\ue000": 0}
    # 1.0 is 1 and 2**60 rounds, as in JS; keys by code point, the pair as one character (U+1F600).
    assert canonical_json(message).decode() == (
        '{"a":[1152921504606847000,0,1e+21,null],"b":1,"\ue000":0,"😀":"\\ud800"}')
    assert reencoded_bytes(message) == len(canonical_json(message))
    assert canonical_digest({"n": 1}) == canonical_digest({"n": 1.0})  # whatever encoder sent it


def test_an_arrival_found_by_its_id_is_neither_digested_nor_counted():
    """A sweep finds each message by its unique id and knows its sizes, so its masters spend
    nothing on re-encoding a message with a string id; without one (or with an id that is no
    string), or when the sender matches by digest (a replay), the digest and bytes are there."""
    with_id = {"type": "t", "id": "m-1", "payload": {"x": 1.0, "text": "张三"}}
    assert arrival_digest(with_id, by_id=True) == ("", None, None)
    assert arrival_digest(with_id) == (canonical_digest(with_id), reencoded_bytes(with_id), None)
    for without in ({"type": "t", "payload": 1}, {"type": "t", "id": 7}, ["id", "m-1"], "m-1"):
        assert arrival_digest(without, by_id=True) == (canonical_digest(without), reencoded_bytes(without), None)


_ANY_TEXT = st.text(st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=8)
_ANY_KEY = _ANY_TEXT | st.integers(0, 2**33).map(str) | st.sampled_from(["01", "-1", "1.5", "x:1.5"])
json_values_any_text = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _ANY_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_ANY_KEY, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values_any_text)
def test_canonical_and_orjson_fast_paths_equal_the_reference(value):
    reference = js_stringify(value, sort_keys=True).encode()
    assert canonical_json(value) == reference
    assert encode_json(value, Encoder.NODE, sort_keys=True).encode() == reference
    assert encode_json_bytes(value, Encoder.NODE) == js_stringify(value).encode()


@pytest.mark.parametrize("offset", range(-24, 4))
def test_a_float_or_an_index_key_across_a_megabyte_boundary_is_seen(offset):
    """The fast path scans its output a megabyte at a time: a token cut by the boundary counts."""
    pad = "x" * (2**20 - len('["",') - 2 + offset)
    assert encode_json_bytes([pad, 12345.5], Encoder.NODE) == js_stringify([pad, 12345.5]).encode()
    keyed = {"p": pad[:-6], "1234567890": 1}
    assert encode_json_bytes(keyed, Encoder.NODE) == js_stringify(keyed).encode()


def test_printable_escapes_what_would_break_a_terminal_or_a_report():
    assert printable("worker:data:sync") == "worker:data:sync"
    assert printable("t\ud800\x1b[31m\ud83d\ude00") == "t\\ud800\\u001b[31m😀"


_FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
_NESTED = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _FIELD_TEXT,
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_FIELD_TEXT, inner, max_size=3),
                       max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(before=st.dictionaries(_FIELD_TEXT.filter(lambda k: k not in ("type", "id")), _NESTED, max_size=3),
       type_=_FIELD_TEXT, id_=_FIELD_TEXT | st.integers(), encoder=st.sampled_from(list(Encoder)),
       namespace=st.sampled_from(["/", "/worker"]), ack=st.sampled_from([None, 7, 123]), data=st.data())
def test_the_head_of_a_cut_event_names_what_came_before_the_cut(before, type_, id_, encoder, namespace, ack, data):
    """A packet cut anywhere: before its event name came whole, nothing is told (a namespace or an
    ack id may be cut too); after it, the namespace, ack id and event, and the message's string
    type and id exactly when they came whole. Its sizes are not told (0)."""
    message = {**before, "type": type_, "payload": before or [1], "id": id_}
    head, _ = frame_parts("message", namespace, ack, encoder)
    packet = head[1:] + encode_json(message, encoder).encode() + b"]"  # after the Engine.IO "4"
    name_end = len(head) - 1
    cut = data.draw(st.integers(0, len(packet)))
    if cut < name_end:
        with pytest.raises(ValueError):
            parse_event_head(packet[:cut])
        return
    told = parse_event_head(packet[:cut])
    assert (told.namespace, told.ack_id, told.event, told.json_bytes, told.js_length) == (namespace, ack, "message", 0, 0)
    assert (told.message is None) == (cut == name_end)  # no byte of the message came
    found = told.message or {}
    assert found.items() <= {"type": type_, "id": id_}.items()
    text = encode_json(message, encoder).encode()
    if cut == len(packet):
        assert found == {"type": type_, **({"id": id_} if isinstance(id_, str) else {})}
    for key, value in found.items():  # told only once its value had come whole
        end = text.index(json.dumps(key).encode() + b":") + len(json.dumps(key)) + 1
        assert cut >= name_end + end + len(encode_json(value, encoder).encode())


def test_the_head_of_a_cut_event_takes_the_last_of_a_repeated_key_and_skips_nested_ones():
    """As JSON.parse does: a repeated key keeps its last value (a later value that is no string
    unsets it); keys inside nested values, or inside strings, are not the message's."""
    packet = (b'2["message",{"id":"a","p":{"type":"inner","s":"\\"type\\":\\"x\\""},"type":"t","id":"b",'
              b'"q":["{\\"id\\":1",[{}]],"type":7,"pad":"')
    assert parse_event_head(packet).message == {"id": "b"}
    assert parse_event_head(packet[:packet.index(b',"type":7')]).message == {"id": "b", "type": "t"}


def test_the_head_of_a_cut_event_is_read_in_its_first_64_kib_only():
    """The tap reads a cut message's head on its event loop: only its first 64 KiB are read, so a
    type after a 12 MB nested value is not told (and the loop is not held for it)."""
    nested = b'{"items":[' + b",".join([b'{"text":"' + b"x" * 200 + b'","n":[1,2,3]}'] * 60_000) + b"]}"
    packet = b'2["message",{"payload":' + nested + b',"type":"late","id":"z"}]'
    assert parse_event_head(packet[:-3]).message == {}
    small = b'2["message",{"payload":{"items":[{"n":[1,2]}]},"type":"late","id":"z"}]'
    assert parse_event_head(small[:-2]).message == {"type": "late", "id": "z"}
