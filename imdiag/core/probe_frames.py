"""Probe frames of an exact size: harmless messages padded with ASCII to ``n`` bytes.

Pure. A probe message is ``{"type":"imdiag:probe","id":ID,"payload":{"pad":"xxx..."}}``,
emitted on the target's event and namespace. ASCII padding is one byte per character in
every encoder, so the frame hits any size from the smallest probe frame upward, to the byte.
"""

from __future__ import annotations

from collections.abc import Iterator

from imdiag.core.wire import Encoder, Streamed, encode_json, event_frame

PROBE_TYPE = "imdiag:probe"
PAD_KEY = "pad"
PAD_CHAR = b"x"
# Sent JSON.stringify-style (raw UTF-8), as the incident's Node workers send.
PROBE_ENCODER = Encoder.NODE
PAD_PIECE_BYTES = 1 << 18  # padding is made in pieces of this size as the frame is written


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


def probe_frame_streamed(size: int, *, probe_type: str, probe_id: str, event: str, namespace: str,
                         ack_id: int | None = None) -> Streamed:
    """``probe_frame()`` made piece by piece as it is written: a 16 MiB probe the server refuses
    at its header is never made whole."""
    smallest = probe_frame_padded(0, probe_type=probe_type, probe_id=probe_id, event=event,
                                  namespace=namespace, ack_id=ack_id)
    if size < len(smallest):
        raise ValueError(f"a probe frame cannot be {size:,} B: the smallest is {len(smallest):,} B")
    pad = size - len(smallest)
    cut = len(smallest) - len(b'"}}]')  # the padding goes between the quotes
    head, tail = smallest[:cut], smallest[cut:]

    def pieces() -> Iterator[bytes]:
        yield head
        block = PAD_CHAR * min(pad, PAD_PIECE_BYTES)
        for done in range(0, pad, PAD_PIECE_BYTES):
            yield block[:pad - done] if pad - done < len(block) else block
        yield tail

    return Streamed(size, pieces)
