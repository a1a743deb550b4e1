import pytest

from imdiag.core.errors import InputError
from imdiag.core.units import (
    MAX_FRAME,
    MAX_LIMIT,
    format_size,
    parse_duration,
    parse_limit,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000", 1000), ("1e6", 1_000_000), ("512KB", 512_000), ("1MB", 1_000_000), ("1MiB", 1_048_576),
     ("1.5MB", 1_500_000), ("10mb", 10_000_000), ("16 MB", 16_000_000), ("2KiB", 2048), ("1e+3", 1000), ("0", 0)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["1.5XB", "", "MB", "-1", "1.5B", "1,000", "1e-3", "abc", "1 M B"])
def test_parse_size_rejects(text):
    with pytest.raises(InputError, match="invalid size"):
        parse_size(text)


def test_limit_must_be_positive():
    with pytest.raises(InputError, match="at least 1 byte"):
        parse_limit("0")


def test_format_size():
    assert [format_size(n) for n in (100_000, 1_000_000, 1_048_576, 999_999)] == ["100KB", "1MB", "1MiB", "999,999 B"]


def test_the_largest_limit_is_what_the_servers_enforce_and_the_largest_size_one_more():
    assert parse_limit("2147483647") == MAX_LIMIT == 2**31 - 1  # Node's ws: a 32-bit signed int
    assert parse_size("2GiB") == MAX_FRAME == MAX_LIMIT + 1
    with pytest.raises(InputError, match="at most 2,147,483,647 B: Node's ws reads maxPayload as a 32-bit"):
        parse_limit("2GiB")
    with pytest.raises(InputError, match=r"at most 2,147,483,648 B \(2GiB\): one byte over the largest limit"):
        parse_size("10GB")


@pytest.mark.parametrize("text", ["1e999", "1e999999999", "9" * 5000, "1e" + "9" * 5000, "1." + "1" * 5000])
def test_huge_sizes_are_refused_at_once_in_one_short_line(text):
    with pytest.raises(InputError) as info:
        parse_size(text)  # 1e999999999 must not build a billion-digit integer first
    assert len(str(info.value)) < 200 and "\n" not in str(info.value)


def test_zeros_are_zero_whatever_their_exponent():
    assert parse_size("0e999999999") == 0 and parse_size("0" * 5000 + "1") == 1


@pytest.mark.parametrize("text", ["１", "１MB", "١٠٠KB", "1e３"])  # full-width and Arabic-Indic digits
def test_sizes_take_ascii_digits_only(text):
    with pytest.raises(InputError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize("text, seconds", [("2s", 2.0), ("500ms", 0.5), ("1.5", 1.5), ("1m", 60.0), (".5s", 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text, "--max-gap") == seconds


@pytest.mark.parametrize("text", ["1e999s", "inf", "nan", "１s", "8d", "1e3", "700000s", "-1s", ""])
def test_durations_are_plain_finite_numbers_of_at_most_a_week(text):
    with pytest.raises(InputError, match="--max-gap"):
        parse_duration(text, "--max-gap")
