"""Read captured traffic: the fixture format of ``imdiag replay`` and ``fake-master --record``.

Pure (no sockets, no asyncio). A fixture is one of:

- a JSON array of messages: ``[{"type": ..., "payload": ...}, ...]``;
- a wrapper object: ``{"meta": {...}, "messages": [...]}``;
- JSON Lines: one message object per line (``.jsonl`` / ``.ndjson``, or sniffed), streamed.

Each record is the message as the worker emitted it, plus optional replay keys that are not
part of the message: ``t`` (seconds since the capture started), ``event`` and ``namespace``.
A record whose message is not such an object (or has keys of its own named ``t``, ``event``
or ``namespace``) is written as ``{"t", "event", "namespace", "message": <the message>}``.
Parsed values are kept as they are (ints, floats, strings), so ``wire.encode_json`` gives the
real sender's bytes back.
"""

from __future__ import annotations

import io
import json
import math
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from imdiag.core.errors import InputError
from imdiag.core.wire import HugeInt, event_problem, namespace_problem, printable

REPLAY_KEYS = ("t", "event", "namespace")
MESSAGE_KEY = "message"  # the escape form: the whole message under one key
EXPECTED = (
    'expected a JSON array of messages ({"type": ..., "payload": ...}), '
    'an object {"meta": {...}, "messages": [...]}, or JSON Lines with one message object per line'
)
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_SNIFF_BYTES = 1 << 16
# Python's JSON parser recurses once per level and stops near the interpreter's recursion limit
# (1,000); captures nested up to this many levels are always read. Real messages nest < 20 deep.
MAX_NESTING = 500


@dataclass(frozen=True)
class Captured:
    """One captured message: what the worker emitted, and where and when."""

    index: int  # position in the capture, from 0
    message: Any  # the message object, as parsed
    event: str | None = None
    namespace: str | None = None
    t: float | None = None  # seconds since the capture started
    line: int | None = None  # line in the file where the record starts

    @property
    def type(self) -> str:
        """The message's type as a name to show and select by (``printable``: a lone surrogate
        or a control character in it is written as its ``\\uXXXX`` escape)."""
        if isinstance(self.message, dict) and isinstance(self.message.get("type"), str):
            return printable(self.message["type"])
        return "(no type)"


@dataclass(frozen=True)
class CaptureFile:
    """A capture on disk. ``messages()`` reads it (again) each time it is called."""

    path: Path
    format: str  # "json" (array or wrapper, loaded whole) or "jsonl" (streamed)
    count: int  # messages in the capture
    meta: dict[str, Any] = field(default_factory=dict)

    def messages(self) -> Iterator[Captured]:
        if self.format == "jsonl":
            return _iter_jsonl(self.path)
        return _iter_json(self.path)


def _where(path: Path, line: int | None, col: int | None = None) -> str:
    text = str(path)
    if line is not None:
        text += f":{line}"
        if col is not None:
            text += f":{col}"
    return text


def record_to_captured(record: Any, index: int, path: Path, line: int | None) -> Captured:
    """Check one record's shape and split the replay keys from the message."""
    where = _where(path, line)
    if not isinstance(record, dict):
        raise InputError(f"{where}: message {index} is a JSON {_json_kind(record)}; expected an object with "
                         '"type" and "payload"')
    if MESSAGE_KEY in record and set(record) <= {MESSAGE_KEY, *REPLAY_KEYS}:
        message = record[MESSAGE_KEY]
    else:
        message = {k: v for k, v in record.items() if k not in REPLAY_KEYS}
        if not isinstance(message.get("type"), str) or "payload" not in message:
            names = sorted(record)
            keys = ", ".join(printable(k) for k in names[:10]) + (", ..." if len(names) > 10 else "") or "none"
            raise InputError(f'{where}: message {index} has no "type" string and "payload" (keys: {keys}); '
                             'expected {"type": ..., "payload": ...}')
    t = record.get("t")
    seconds = _seconds(t)
    if t is not None and seconds is None:
        raise InputError(f'{where}: message {index} has "t" {_short(t)}; expected seconds since the capture started (>= 0)')
    event = record.get("event")
    namespace = record.get("namespace")
    if event is not None and not isinstance(event, str):
        raise InputError(f'{where}: message {index} has "event" {_short(event)}; expected a string')
    problem = event_problem(event) if event is not None else None
    if problem:
        raise InputError(f'{where}: message {index} has "event" {_short(event)}: {problem}')
    _check_namespace(namespace, f"{where}: message {index} has")
    return Captured(index, message, event, namespace, seconds, line)


def _check_namespace(namespace: Any, where: str) -> None:
    """A capture's ``namespace`` (a record's or ``meta``'s), by the rule of ``--namespace``."""
    if namespace is None:
        return
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        raise InputError(f'{where} "namespace" {_short(namespace)}; expected a string starting with "/"')
    problem = namespace_problem(namespace)
    if problem:
        raise InputError(f'{where} "namespace" {_short(namespace)}: {problem}')


def _seconds(t: Any) -> float | None:
    """A record's ``t`` as seconds, or None when it is not a finite number >= 0."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        return None
    try:
        seconds = float(t)
    except OverflowError:  # an int past the largest double
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _short(value: Any, limit: int = 60) -> str:
    """A value in an error line: its repr, cut short (a record's field may be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return "number"
    return "object"


def _decode_error(path: Path, exc: json.JSONDecodeError, line_offset: int = 0) -> InputError:
    line = exc.lineno + line_offset
    return InputError(f"{_where(path, line, exc.colno)}: malformed JSON: {exc.msg}")


def _parse_int(literal: str) -> int | float:
    limit = sys.get_int_max_str_digits()
    return int(literal) if not limit or len(literal) - literal.startswith("-") <= limit else HugeInt(literal)


def parse_json(text: str | bytes | bytearray) -> Any:
    """``json.loads`` for anything a sender can write: an integer longer than python's int parser
    takes (4,300 digits) is read as the Infinity JavaScript reads it as (``wire.HugeInt``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
    return json.loads(text, parse_int=_parse_int)


# A string token or one bracket: what the nesting scan steps through (strings may hold brackets).
_STRUCTURE_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def nesting_error(path: Path, text: str, line_offset: int = 0) -> InputError:
    """Where arrays and objects nest deeper than python's JSON parser reads (it recurses)."""
    depth = deepest = 0
    at = None
    for match in _STRUCTURE_RE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_NESTING and at is None:
                at = match.start()
        elif token in "]}":
            depth -= 1
    offset = at if at is not None else 0
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return InputError(f"{_where(path, line + line_offset, col)}: arrays and objects nested {deepest:,} levels deep; "
                      f"imdiag reads up to {MAX_NESTING} levels (python's JSON parser recurses)")


def _loads(path: Path, text: str, line_offset: int = 0) -> Any:
    """One JSON document (a whole file or one line); every error is one line with its position."""
    try:
        return parse_json(text)
    except json.JSONDecodeError as exc:
        raise _decode_error(path, exc, line_offset) from None
    except RecursionError:
        raise nesting_error(path, text, line_offset) from None


def _decode_utf8(path: Path, data: bytes | bytearray, line_offset: int) -> str:
    try:
        return data.decode("utf-8-sig" if line_offset == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1 + line_offset
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(f"{_where(path, line, col)}: not UTF-8 text ({exc.reason})") from None


# A number token of 19 digits or more (orjson would make a float of one past 64 bits), and a
# document that is a number: both read by python's json. (A character class first: fast.)
_LONG_INTEGER_RE = re.compile(rb"[:,\[][ \t\r\n]*-?[0-9]{19}")
_NUMBER_DOCUMENT_RE = re.compile(rb"[ \t\r\n]*-?[0-9]")
_BOM = b"\xef\xbb\xbf"


def _loads_bytes(path: Path, data: bytes | bytearray, line_offset: int = 0) -> Any:
    """One JSON document from the file's bytes, with the least memory for its kind: ASCII text
    is read by python's json (its str is no larger than the bytes, and its objects are built
    without orjson's intermediate tree); other text by orjson, from the bytes (a 50 MB record of
    CJK text and emoji would be a 200 MB str). What orjson does not read as python's json does
    (an error, a lone surrogate, NaN, an integer of 19+ digits) is read by python's json, which
    also names the position of an error."""
    if not data.isascii():
        body = memoryview(data)[len(_BOM):] if data.startswith(_BOM) else data
        if _LONG_INTEGER_RE.search(body) is None and _NUMBER_DOCUMENT_RE.match(body) is None:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
        del body
    return _loads(path, _decode_utf8(path, data, line_offset), line_offset)


_BLANK_RE = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n\f\v]*")


def _blank(data: bytes | bytearray | str) -> bool:
    """Only whitespace (and a BOM): checked without copying a line of any size."""
    if not isinstance(data, str):
        return _BLANK_RE.fullmatch(data) is not None
    return not data.strip()


def _load_whole(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if _blank(data):
        raise InputError(f"{path}: the file is empty; {EXPECTED}")
    return _loads_bytes(path, data)


def _records(path: Path, document: Any) -> tuple[list[Any], dict[str, Any], int | None]:
    """The record list of a whole-file fixture, its meta, and the line the list starts on."""
    if isinstance(document, list):
        return document, {}, None
    if isinstance(document, dict) and "messages" in document:
        messages, meta = document["messages"], document.get("meta", {})
        if not isinstance(messages, list):
            raise InputError(f'{path}: "messages" is a JSON {_json_kind(messages)}; expected an array of messages')
        if not isinstance(meta, dict):
            raise InputError(f'{path}: "meta" is a JSON {_json_kind(meta)}; expected an object')
        _check_namespace(meta.get("namespace"), f'{path}: "meta" has')
        return messages, meta, None
    if isinstance(document, dict):
        # One message alone in a file: accepted as a capture of one.
        return [document], {}, None
    raise InputError(f"{path}: the file holds a JSON {_json_kind(document)}; {EXPECTED}")


def _iter_json(path: Path) -> Iterator[Captured]:
    records, _, _ = _records(path, _load_whole(path))
    if not records:
        raise InputError(f"{path}: the capture holds no messages; {EXPECTED}")
    for index, record in enumerate(records):
        yield record_to_captured(record, index, path, None)


def _parse_lines(path: Path, lines: Iterator[tuple[int, bytes | bytearray | str]]) -> Iterator[Captured]:
    """JSON Lines records, each with its line number; blank lines skipped."""
    index = 0
    for number, line in lines:
        if _blank(line):
            continue
        record = _loads(path, line, number - 1) if isinstance(line, str) else _loads_bytes(path, line, number - 1)
        del line  # the bytes of a line are gone before its message is handed on
        yield record_to_captured(record, index, path, number)
        del record
        index += 1


_CHUNK = 1 << 20


class _RawLines:
    """The file's lines as bytes, one at a time, each given away whole: a capture of any size is
    held a line at a time (a generator would keep the last line alive while the next is parsed),
    and a long line grows in one buffer (readline joins its chunks: twice the line at once)."""

    def __init__(self, path: Path):
        try:
            self._handle = path.open("rb", buffering=0)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        self._chunk: bytes | None = b""  # None once the file is read to its end
        self._start = 0
        self._number = 0

    def __iter__(self) -> _RawLines:
        return self

    def __next__(self) -> tuple[int, bytes | bytearray]:
        line = bytearray()
        while self._chunk is not None:
            end = self._chunk.find(b"\n", self._start)
            if end >= 0:
                line += memoryview(self._chunk)[self._start : end + 1]
                self._start = end + 1
                return self._next_number(), line
            line += memoryview(self._chunk)[self._start :]
            chunk = self._handle.read(_CHUNK)
            self._chunk, self._start = chunk or None, 0
        if not line:
            raise StopIteration
        return self._next_number(), line

    def _next_number(self) -> int:
        self._number += 1
        return self._number

    def close(self) -> None:
        self._handle.close()


def _iter_jsonl(path: Path) -> Iterator[Captured]:
    empty = True
    lines = _RawLines(path)
    try:
        for captured in _parse_lines(path, lines):
            empty = False
            yield captured
    finally:
        lines.close()
    if empty:
        raise InputError(f"{path}: the file is empty; {EXPECTED}")


def _sniff_jsonl(path: Path) -> bool:
    """True when the file looks like JSON Lines: its first line is a whole JSON object that is
    not a wrapper, and more follows. The first line is read whole, however long (a record of
    megabytes is one line), once its first byte says it may be an object; a line at a time."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return False  # an array, or a blank head: a whole-file document (which says what is wrong)
    lines = _RawLines(path)
    try:
        first = next((line for _, line in lines if not _blank(line)), b"")
        if not first.endswith(b"\n"):
            return False  # one line: a whole-file JSON document
        try:
            record = parse_json(first.lstrip(b"\xef\xbb\xbf"))
        except (ValueError, RecursionError):  # malformed or too deep: read as a whole file, which says where
            return False
        del first
        return isinstance(record, dict) and "messages" not in record and any(not _blank(line) for _, line in lines)
    finally:
        lines.close()


def _check_regular_file(path: Path) -> None:
    """A capture is a regular file: a directory cannot be read, and a FIFO or a device would
    be read forever (or once only, when the capture is read twice)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"cannot read {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"cannot read {path}: it is a directory; give a capture file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise InputError(f"cannot read {path}: it is {kind}, not a regular file; save the capture to a file first")


def open_capture(path: str | Path) -> CaptureFile:
    """Open a capture: check it exists, find its format, read its meta (whole-file formats)."""
    fixture_path = Path(path)
    _check_regular_file(fixture_path)
    if fixture_path.suffix.lower() in _JSONL_SUFFIXES or _sniff_jsonl(fixture_path):
        # One streamed pass checks every line before anything is sent: a malformed line
        # fails at once with its position, and memory holds one line at a time.
        count = sum(1 for _ in _iter_jsonl(fixture_path))
        return CaptureFile(fixture_path, "jsonl", count)
    # Whole-file formats are parsed here once for their meta and shape, then again per pass:
    # they are small by nature; big captures belong in JSON Lines.
    records, meta, _ = _records(fixture_path, _load_whole(fixture_path))
    if not records:
        raise InputError(f"{fixture_path}: the capture holds no messages; {EXPECTED}")
    for index, record in enumerate(records):
        record_to_captured(record, index, fixture_path, None)
    return CaptureFile(fixture_path, "json", len(records), meta)


def capture_namespace(capture: CaptureFile, override: str | None) -> str:
    """The namespace a capture's messages are sent in: ``override`` (``--namespace``), else the
    capture's ``meta.namespace``, else its first record's, else ``/``. The one rule of every command."""
    if override is not None:
        return override
    meta_ns = capture.meta.get("namespace")
    if meta_ns is not None:  # checked by open_capture
        return str(meta_ns)
    for captured in capture.messages():
        return captured.namespace or "/"
    return "/"


def load_messages(path: str | Path) -> list[Captured]:
    """Every message of a capture, in a list (for small captures and tests)."""
    return list(open_capture(path).messages())


def loads(text: str, name: str = "<string>") -> list[Captured]:
    """Parse a fixture held in a string (whole-file JSON or JSON Lines)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise InputError(f"{name}: the file is empty; {EXPECTED}")
    path = Path(name)
    try:
        document = parse_json(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        if stripped.startswith("{") and exc.msg == "Extra data":
            return _loads_lines(text, path)
        raise _decode_error(path, exc) from None
    except RecursionError:
        raise nesting_error(path, text) from None
    records, _, _ = _records(path, document)
    if not records:
        raise InputError(f"{name}: the capture holds no messages; {EXPECTED}")
    return [record_to_captured(r, i, path, None) for i, r in enumerate(records)]


def _loads_lines(text: str, path: Path) -> list[Captured]:
    return list(_parse_lines(path, enumerate(io.StringIO(text), start=1)))


def dumps_record(message: Any, *, t: float | None = None, event: str | None = None,
                 namespace: str | None = None) -> str:
    """One JSON Lines record (no newline) for a message: what ``fake-master --record`` writes."""
    head: dict[str, Any] = {}
    if t is not None:
        head["t"] = t
    if event is not None:
        head["event"] = event
    if namespace is not None:
        head["namespace"] = namespace
    plain = isinstance(message, dict) and isinstance(message.get("type"), str) and "payload" in message \
        and not any(k in message for k in (*REPLAY_KEYS, MESSAGE_KEY))
    record = {**head, **message} if plain else {**head, MESSAGE_KEY: message}
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        text.encode("utf-8")  # lone surrogates cannot be written raw
        return text
    except UnicodeEncodeError:
        return json.dumps(record, ensure_ascii=True, separators=(",", ":"))
