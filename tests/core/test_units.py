import pytest

from imdiag.core.errors import InputError
from imdiag.core.units import format_size, parse_limit, parse_size


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
