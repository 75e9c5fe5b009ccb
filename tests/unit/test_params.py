"""core.params: the one rule for integers in headers and query parameters."""

from __future__ import annotations

import pytest

from core.errors import ApiError
from core.params import integer, optional_integer


@pytest.mark.parametrize("text, value", [("0", 0), ("42", 42), (" 7\t", 7), ("0099", 99), ("9" * 18, int("9" * 18))])
def test_it_reads_ascii_digits(text: str, value: int) -> None:
    assert integer(text, name="n", high=10**19) == value


@pytest.mark.parametrize("text", ["²", "١٢", "+1", "-1", "1_000", "1.0", "", " ", "0x10", "1e3", "9" * 20])
def test_it_refuses_what_is_not_ascii_digits(text: str) -> None:
    with pytest.raises(ApiError) as raised:
        integer(text, name="X-Chunk-Seq", high=10**19)
    assert (raised.value.status, raised.value.slug) == (400, "bad-integer")
    assert raised.value.extra == {"parameter": "X-Chunk-Seq"}
    assert "X-Chunk-Seq must be an integer from 0 to" in raised.value.detail


def test_it_refuses_values_out_of_bounds() -> None:
    assert integer("5", name="n", low=5, high=6) == 5
    for text in ("4", "7"):
        with pytest.raises(ApiError, match="n must be an integer from 5 to 6"):
            integer(text, name="n", low=5, high=6)


def test_an_absent_parameter_takes_its_default() -> None:
    assert optional_integer(None, name="_count", default=50, low=1, high=200) == 50
    assert optional_integer("3", name="_count", default=50, low=1, high=200) == 3
