"""The payload generator: realistic, deterministic, and exact to the byte."""

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imdiag.core.catalog import TYPE_NAMES, UNIQUE_ITEMS, Catalog, message_type
from imdiag.core.errors import InputError
from imdiag.core.wire import Encoder, LimitUnit, code_points, encode_json, event_frame, measure

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


@settings(max_examples=40, deadline=None)
@given(
    type_name=st.sampled_from(TYPE_NAMES),
    encoder=st.sampled_from(list(Encoder)),
    target=st.integers(600, 2_500_000),
    piece_bytes=st.sampled_from([1, 4096, 1 << 18]),
)
def test_message_parts_make_the_message_piece_by_piece(type_name, encoder, target, piece_bytes):
    """A sweep writes a message as it is made: the pieces are the message's bytes, in order,
    none much larger than asked (a 16 MB message is never made whole to be sent)."""
    parts = CATALOG.sized_parts(type_name, target, encoder)
    pieces = list(parts.pieces(piece_bytes))
    assert sum(map(len, pieces)) == parts.size.json_bytes
    # An item or a cycle of padding characters is the most a piece goes over.
    assert max(map(len, pieces)) <= piece_bytes + 8192
    assert b"".join(pieces) == CATALOG.sized(type_name, target, encoder).data


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 3 * UNIQUE_ITEMS), count=st.integers(0, 3 * UNIQUE_ITEMS),
       piece_bytes=st.sampled_from([1, 700, 4096, 1 << 18]))
def test_a_list_in_pieces_is_its_items_joined_by_commas(start, count, piece_bytes):
    """The pieces of a list, sliced from the items joined once, are the items (repeating after
    the unique ones) joined by commas: each but the first piece starts with its comma."""
    pool = CATALOG._pool("worker:messages:update", Encoder.NODE, UNIQUE_ITEMS)
    texts = pool.texts
    pieces = list(pool.joined(start, count, piece_bytes))
    assert b"".join(pieces) == b",".join(texts[(start + i) % len(texts)] for i in range(count))
    assert all(piece.startswith(b",") for piece in pieces[1:])


def test_planning_a_16mb_message_makes_none_of_its_bytes():
    catalog = Catalog(3)
    catalog.sized_parts("worker:messages:update", 1_000_000)  # the unique items, made once
    tracemalloc.start()
    try:
        parts = [catalog.sized_parts(t, 16_000_000) for t in ("worker:messages:update", "worker:comments:update")]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(p.size.frame_bytes == 16_000_000 for p in parts)
    assert peak < 4_000_000, peak  # a few item lists' worth, not 16 MB


@settings(max_examples=40, deadline=None)
@given(
    type_name=st.sampled_from(["worker:data:sync", "worker:messages:update", "worker:heartbeat"]),
    encoder=st.sampled_from(list(Encoder)),
    target=st.integers(600, 2_000_000),
    namespace=st.sampled_from(["/", "/wörker"]),
)
def test_sized_in_characters_hits_the_target_in_code_points(type_name, encoder, target, namespace):
    """For a master whose limit counts characters (python-engineio under ASGI): L-1, L, L+1 characters."""
    message = CATALOG.sized(type_name, target, encoder, namespace=namespace, unit=LimitUnit.CHARACTERS)
    frame = event_frame(message.data, encoder=encoder, namespace=namespace)
    assert len(frame.decode()) == target == message.size.frame_chars == code_points(frame)
    assert len(frame) == message.size.frame_bytes >= target  # the items' Chinese text is more bytes
    obj = message.obj()
    assert message.size == measure(message.text, encoder=encoder, namespace=namespace,
                                   node_json=encode_json(obj, Encoder.NODE))
