"""Websocket frames as a relay reads them: headers, masks, close frames, permessage-deflate."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imdiag.core import frames
from imdiag.core.frames import OP_CLOSE, OP_TEXT, Deflate, Inflater


def _frame(payload: bytes, *, opcode: int = OP_TEXT, mask: bytes = b"", fin: bool = True, rsv1: bool = False) -> bytes:
    """A frame built by hand from RFC 6455, independently of the code under test."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes((first, bit | n))
    elif n < 65536:
        head = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if mask else payload
    return head + mask + body


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 1_313_011])
@pytest.mark.parametrize("mask", [b"", b"\x01\x02\x03\x04"])
def test_header_sizes_and_lengths(length: int, mask: bytes) -> None:
    head = _frame(b"\0" * length, mask=mask)[:14]
    size = frames.header_size(head[:2])
    header = frames.parse_header(head[:size])
    assert header.length == length and header.masked == bool(mask) and header.mask == mask
    assert size == 2 + (2 if 126 <= length < 65536 else 8 if length >= 65536 else 0) + len(mask)
    assert header.size == size and header.fin and header.opcode == OP_TEXT


def test_a_short_header_is_an_error() -> None:
    with pytest.raises(ValueError, match="only 3 given"):
        frames.parse_header(_frame(b"\0" * 200, mask=b"abcd")[:3])


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.integers(0, 299))
def test_unmask_in_chunks_equals_unmask_whole(payload: bytes, mask: bytes, cut: int) -> None:
    masked = _frame(payload, mask=mask)[-len(payload):] if payload else b""
    cut = min(cut, len(masked))
    assert frames.unmask(masked[:cut], mask, 0) + frames.unmask(masked[cut:], mask, cut) == payload


def test_close_frames() -> None:
    header = frames.parse_header(frames.close_header(1009))
    assert (header.opcode, header.masked, header.length) == (OP_CLOSE, False, 2)
    assert frames.parse_close(frames.close_header(1009)[2:]) == (1009, "")
    assert frames.parse_close((1000).to_bytes(2, "big") + "bye ✓".encode()) == (1000, "bye ✓")
    assert frames.parse_close(b"") == (1005, "")  # RFC 6455: no code in the frame


def test_negotiated_extensions() -> None:
    assert frames.parse_extensions("") is None
    assert frames.parse_extensions("permessage-deflate") == Deflate()
    assert frames.parse_extensions("x-other, permessage-deflate; client_no_context_takeover; server_max_window_bits=10") \
        == Deflate(client_no_context_takeover=True)


def _deflate_messages(messages: list[bytes], takeover: bool) -> list[bytes]:
    """What a permessage-deflate sender writes (RFC 7692: raw deflate, sync flush, tail removed)."""
    out, compressor = [], zlib.compressobj(wbits=-15)
    for message in messages:
        if not takeover:
            compressor = zlib.compressobj(wbits=-15)
        data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        out.append(data[:-4])
    return out


@pytest.mark.parametrize("takeover", [True, False])
def test_inflater_follows_the_context_across_messages(takeover: bool) -> None:
    messages = [b'42["message",{"type":"x"}]' * 20, os.urandom(50), b'42["message",{"type":"x"}]' * 20]
    inflater = Inflater(no_context_takeover=not takeover)
    assert [inflater.inflate(m, 10_000) for m in _deflate_messages(messages, takeover)] == messages


def test_inflater_is_bounded() -> None:
    (bomb,) = _deflate_messages([b"\0" * 1_000_000], True)
    assert len(bomb) < 2000
    assert Inflater(False).inflate(bomb, 100_000) is None
