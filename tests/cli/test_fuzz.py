"""Fuzz the capture reader and ``imdiag size`` with what real workers and careless hands produce.

Arbitrary JSON values (deep nesting, integers of thousands of digits, lone surrogates, NUL,
control characters), captures in every format, and captures mutated byte by byte (a BOM,
invalid UTF-8, truncation): ``imdiag size`` exits 0 or 2, with one error line, never a
traceback. The CLI runs in this process (``run_main``), so each example costs milliseconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imdiag.core.captures import open_capture
from imdiag.core.errors import InputError

from ..helpers import run_main

# JSON text is built by hand: json.dumps cannot write a lone surrogate raw, a 6,000-digit
# integer, or a nesting deeper than python recurses.
_CHARS = st.sampled_from(["a", "中", "😀", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\\u001b", "\\n",
                          '\\"', "\\\\", "/", "\\u2028", "\ufeff", "\x7f"])
_STRINGS = st.lists(_CHARS, max_size=6).map(lambda parts: '"' + "".join(parts) + '"')
_NUMBERS = st.one_of(
    st.sampled_from(["0", "-0", "1.0", "0.1", "1e21", "1e999", "-1E400", "5e-324", "9007199254740993"]),
    st.integers(1, 6000).map(lambda n: "9" * n),  # past a double at 310 digits, past python's parser at 4,301
    st.integers(-(2**70), 2**70).map(str),
)
_SCALARS = st.one_of(st.sampled_from(["null", "true", "false"]), _NUMBERS, _STRINGS)
_DEEP = st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
_KEYS = st.one_of(_STRINGS, st.sampled_from(['"type"', '"payload"', '"t"', '"event"', '"namespace"', '"id"',
                                             '"message"', '"messages"', '"meta"']))
_VALUES = st.recursive(
    st.one_of(_SCALARS, _DEEP),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(_KEYS, inner), max_size=4).map(lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"),
    ),
    max_leaves=10,
)


@st.composite
def _records(draw: st.DrawFn) -> str:
    fields = {'"type"': draw(st.one_of(_STRINGS, st.just('"worker:heartbeat"'), _VALUES)), '"payload"': draw(_VALUES)}
    for key, value in (('"t"', _NUMBERS), ('"event"', _STRINGS), ('"namespace"', _STRINGS.map(lambda s: '"/' + s[1:])),
                       ('"id"', _STRINGS)):
        if draw(st.booleans()):
            fields[key] = draw(value)
    if draw(st.integers(0, 9)) == 0:
        return draw(_VALUES)  # not a record at all
    return "{" + ",".join(f"{k}:{v}" for k, v in fields.items()) + "}"


@st.composite
def _captures(draw: st.DrawFn) -> tuple[str, bytes]:
    records = draw(st.lists(_records(), min_size=0, max_size=4))
    shape = draw(st.sampled_from(["array", "wrapper", "lines", "one"]))
    if shape == "array":
        name, text = "c.json", "[" + ",".join(records) + "]"
    elif shape == "wrapper":
        namespace = draw(st.one_of(_STRINGS.map(lambda s: '"/' + s[1:]), _VALUES))
        name, text = "c.json", '{"meta":{"namespace":' + namespace + '},"messages":[' + ",".join(records) + "]}"
    elif shape == "lines":
        name, text = draw(st.sampled_from(["c.jsonl", "c.txt"])), "\n".join(records) + draw(st.sampled_from(["", "\n"]))
    else:
        name, text = "c.json", records[0] if records else draw(_VALUES)
    return name, _mutate(draw, text.encode("utf-8", "surrogatepass"))


def _mutate(draw: st.DrawFn, data: bytes) -> bytes:
    """Damage as files get damaged: a BOM, bytes that are not UTF-8, NUL, cuts, flips."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["bom", "insert", "cut", "flip", "none"]))
        at = draw(st.integers(0, len(data)))
        if kind == "bom":
            data = data[:at] + b"\xef\xbb\xbf" + data[at:]
        elif kind == "insert":
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00", b"\n", b"{", b'"', b"]"])) \
                + data[at:]
        elif kind == "cut":
            data = data[:at]
        elif kind == "flip" and data:
            i = min(at, len(data) - 1)
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    return data


_SESSION = (Path(__file__).resolve().parents[2] / "fixtures" / "session.jsonl").read_bytes()[:20_000]
_DIR = tempfile.TemporaryDirectory(prefix="imdiag-fuzz-")


def _check(name: str, data: bytes, *options: str) -> None:
    path = Path(_DIR.name) / name
    path.write_bytes(data)
    try:  # the reader alone: only InputError, with the file's name
        capture = open_capture(path)
        for _ in capture.messages():
            pass
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    code, _, stderr = run_main("size", str(path), *options)  # anything else escaping fails the test
    assert code in (0, 2), stderr
    assert "Traceback" not in stderr
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("imdiag: error: "), stderr


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(capture=_captures(), options=st.sampled_from([(), ("--namespace", "/w"), ("--limit", "100")]))
def test_size_on_arbitrary_captures_exits_0_or_2_in_one_line(capture: tuple[str, bytes], options: tuple[str, ...]) -> None:
    _check(*capture, *options)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_size_on_a_real_capture_mutated_exits_0_or_2_in_one_line(data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(_SESSION)))
    _check("session.jsonl", _mutate(data.draw, _SESSION[:cut]))
