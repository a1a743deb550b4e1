"""Probe frames of an exact size: harmless messages padded with ASCII to ``n`` bytes.

Pure. A probe message is ``{"type":"imdiag:probe","id":ID,"payload":{"pad":"xxx..."}}``,
emitted on the target's event and namespace. ASCII padding is one byte per character in
every encoder, so the frame hits any size from the smallest probe frame upward, to the byte.
A multi-byte probe frame (``probe_frame_multibyte``) puts Chinese characters in the padding
(3 bytes, one character): the same characters, more bytes, which tells a limit that counts
bytes from one that counts characters.
"""

from __future__ import annotations

from collections.abc import Iterator

from imdiag.core.wire import Encoder, Streamed, code_points, encode_json, event_frame

PROBE_TYPE = "imdiag:probe"
PAD_KEY = "pad"
PAD_CHAR = b"x"
# Sent JSON.stringify-style (raw UTF-8), as the incident's Node workers send.
PROBE_ENCODER = Encoder.NODE
PAD_PIECE_BYTES = 1 << 18  # padding is made in pieces of this size as the frame is written
MULTIBYTE_CHAR = "中"  # 3 bytes in UTF-8, one character (code point and UTF-16 unit)
MULTIBYTE_EXTRA = len(MULTIBYTE_CHAR.encode()) - 1  # bytes it adds over an ASCII character


def _message(probe_type: str, probe_id: str, pad: int) -> bytes:
    head = encode_json({"type": probe_type, "id": probe_id, "payload": {PAD_KEY: ""}}, PROBE_ENCODER)
    # head ends with '""}}': put the padding between the quotes.
    return head[:-3].encode() + PAD_CHAR * pad + b'"}}'


def smallest_probe_frame(*, probe_type: str, probe_id: str, event: str, namespace: str,
                         ack_id: int | None = None) -> int:
    """Bytes of the probe frame with empty padding: no probe frame can be smaller."""
    return len(probe_frame_padded(0, probe_type=probe_type, probe_id=probe_id, event=event,
                                  namespace=namespace, ack_id=ack_id))


def probe_frame_padded(pad: int, *, probe_type: str, probe_id: str, event: str, namespace: str,
                       ack_id: int | None = None) -> bytes:
    return event_frame(_message(probe_type, probe_id, pad), encoder=PROBE_ENCODER, event=event,
                       namespace=namespace, ack_id=ack_id)


def probe_frame(size: int, *, probe_type: str, probe_id: str, event: str, namespace: str,
                ack_id: int | None = None) -> bytes:
    """The probe frame of exactly ``size`` bytes (websocket payload == polling body)."""
    smallest = smallest_probe_frame(probe_type=probe_type, probe_id=probe_id, event=event,
                                    namespace=namespace, ack_id=ack_id)
    if size < smallest:
        raise ValueError(f"a probe frame cannot be {size:,} B: the smallest is {smallest:,} B")
    frame = probe_frame_padded(size - smallest, probe_type=probe_type, probe_id=probe_id, event=event,
                               namespace=namespace, ack_id=ack_id)
    assert len(frame) == size, (len(frame), size)
    return frame


def _repeated(unit: bytes, count: int) -> Iterator[bytes]:
    """``unit * count`` in pieces of about PAD_PIECE_BYTES."""
    per_piece = max(1, PAD_PIECE_BYTES // len(unit))
    block = unit * min(count, per_piece)
    for done in range(0, count, per_piece):
        yield block if count - done >= per_piece else unit * (count - done)


def _padded_streamed(ascii_pad: int, multibyte: int, *, probe_type: str, probe_id: str, event: str, namespace: str,
                     ack_id: int | None) -> Streamed:
    smallest = probe_frame_padded(0, probe_type=probe_type, probe_id=probe_id, event=event,
                                  namespace=namespace, ack_id=ack_id)
    cut = len(smallest) - len(b'"}}]')  # the padding goes between the quotes
    head, tail = smallest[:cut], smallest[cut:]

    def pieces() -> Iterator[bytes]:
        yield head
        yield from _repeated(MULTIBYTE_CHAR.encode(), multibyte)
        yield from _repeated(PAD_CHAR, ascii_pad)
        yield tail

    size = len(smallest) + ascii_pad + multibyte * len(MULTIBYTE_CHAR.encode())
    return Streamed(size, pieces, code_points(smallest) + ascii_pad + multibyte)


def probe_frame_streamed(size: int, *, probe_type: str, probe_id: str, event: str, namespace: str,
                         ack_id: int | None = None) -> Streamed:
    """``probe_frame()`` made piece by piece as it is written: a 16 MiB probe the server refuses
    at its header is never made whole."""
    smallest = smallest_probe_frame(probe_type=probe_type, probe_id=probe_id, event=event, namespace=namespace,
                                    ack_id=ack_id)
    if size < smallest:
        raise ValueError(f"a probe frame cannot be {size:,} B: the smallest is {smallest:,} B")
    return _padded_streamed(size - smallest, 0, probe_type=probe_type, probe_id=probe_id, event=event,
                            namespace=namespace, ack_id=ack_id)


def smallest_probe_chars(*, probe_type: str, probe_id: str, event: str, namespace: str,
                         ack_id: int | None = None) -> int:
    """Characters of the probe frame with empty padding."""
    return code_points(probe_frame_padded(0, probe_type=probe_type, probe_id=probe_id, event=event,
                                          namespace=namespace, ack_id=ack_id))


def probe_frame_multibyte(chars: int, multibyte: int, *, probe_type: str, probe_id: str, event: str,
                          namespace: str, ack_id: int | None = None) -> Streamed:
    """A probe frame of exactly ``chars`` characters whose padding holds ``multibyte`` Chinese
    characters (the rest ASCII): ``MULTIBYTE_EXTRA`` more bytes per Chinese character than the
    ASCII probe frame of as many characters."""
    smallest = smallest_probe_chars(probe_type=probe_type, probe_id=probe_id, event=event, namespace=namespace,
                                    ack_id=ack_id)
    pad = chars - smallest
    if pad < multibyte or multibyte < 0:
        raise ValueError(f"a probe frame of {chars:,} characters has room for {max(pad, 0):,} padding "
                         f"characters, not {multibyte:,} multi-byte ones")
    return _padded_streamed(pad - multibyte, multibyte, probe_type=probe_type, probe_id=probe_id, event=event,
                            namespace=namespace, ack_id=ack_id)
