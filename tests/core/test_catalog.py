"""The payload generator: realistic, deterministic, and exact to the byte."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imdiag.core.catalog import TYPE_NAMES, Catalog, message_type
from imdiag.core.errors import InputError
from imdiag.core.wire import Encoder, encode_json, event_frame, measure

CATALOG = Catalog(seed=7)


@settings(max_examples=150, deadline=None)
@given(
    type_name=st.sampled_from(TYPE_NAMES),
    encoder=st.sampled_from(list(Encoder)),
    target=st.integers(600, 3_000_000),
    namespace=st.sampled_from(["/", "/worker"]),
    ack_id=st.one_of(st.none(), st.integers(0, 99999)),
)
def test_sized_message_hits_target_frame_exactly(type_name, encoder, target, namespace, ack_id):
    message = CATALOG.sized(type_name, target, encoder, namespace=namespace, ack_id=ack_id)
    frame = event_frame(message.data, encoder=encoder, namespace=namespace, ack_id=ack_id)
    assert len(frame) == target == message.size.frame_bytes
    # The composed bytes are exactly what the encoder produces for the object they denote.
    obj = message.obj()
    assert encode_json(obj, encoder).encode() == message.data
    assert message.size == measure(
        message.text, encoder=encoder, namespace=namespace, ack_id=ack_id, node_json=encode_json(obj, Encoder.NODE)
    )


@pytest.mark.parametrize("type_name", TYPE_NAMES)
def test_natural_messages_are_deterministic_and_realistic(type_name):
    a, b = Catalog(1).natural(type_name), Catalog(1).natural(type_name)
    assert a.data == b.data
    obj = a.obj()
    assert obj["type"] == type_name and obj["id"] == a.id
    spec = message_type(type_name)
    if spec.list_key:
        items = obj["payload"][spec.list_key]
        assert len(items) == spec.natural_items
        assert a.size.js_length < a.size.json_bytes  # Chinese text: bytes outnumber UTF-16 units


def test_data_sync_snapshot_is_over_the_default_limit():
    assert Catalog(1).natural("worker:data:sync").size.frame_bytes > 1_000_000


def test_js_length_trap_exists_at_the_default_limit():
    message = Catalog(1).sized("worker:data:sync", 1_000_001)
    assert message.size.js_length < 1_000_000 < message.size.frame_bytes


def test_different_seeds_differ():
    assert Catalog(1).natural("worker:messages:update").data != Catalog(2).natural("worker:messages:update").data


def test_too_small_target_is_a_clear_error():
    smallest = CATALOG.smallest_frame("worker:register")
    CATALOG.sized("worker:register", smallest)
    with pytest.raises(InputError, match="smallest"):
        CATALOG.sized("worker:register", smallest - 1)


def test_unknown_type():
    with pytest.raises(InputError, match="unknown message type 'worker:nope'"):
        message_type("worker:nope")
