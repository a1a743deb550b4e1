"""Probe frames of an exact size, whole or made piece by piece as they are written."""

from hypothesis import given, settings
from hypothesis import strategies as st

from imdiag.core.probe_frames import (
    PAD_PIECE_BYTES,
    PROBE_TYPE,
    probe_frame,
    probe_frame_streamed,
    smallest_probe_frame,
)


@settings(max_examples=60, deadline=None)
@given(
    extra=st.one_of(st.integers(0, 300), st.integers(PAD_PIECE_BYTES - 2, PAD_PIECE_BYTES + 2),
                    st.integers(0, 3 * PAD_PIECE_BYTES)),
    namespace=st.sampled_from(["/", "/worker"]),
    ack_id=st.one_of(st.none(), st.integers(0, 999)),
)
def test_a_streamed_probe_frame_is_the_probe_frame(extra, namespace, ack_id):
    names = {"probe_type": PROBE_TYPE, "probe_id": "p7", "event": "message", "namespace": namespace, "ack_id": ack_id}
    size = smallest_probe_frame(**names) + extra
    streamed = probe_frame_streamed(size, **names)
    pieces = list(streamed.pieces())
    assert streamed.size == size and b"".join(pieces) == probe_frame(size, **names)
    assert max(map(len, pieces)) <= PAD_PIECE_BYTES
    assert list(streamed.pieces()) == pieces  # each call starts from the first byte
