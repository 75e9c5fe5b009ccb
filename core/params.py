"""Integers a client sends in headers and query parameters: ASCII digits only, within bounds.

``str.isdigit()`` accepts superscripts and other Unicode digits that ``int()`` refuses (``"²"``
made a 500), and ``int()`` itself takes signs, underscores and surrounding whitespace. Every
integer parsed from a request goes through ``integer()`` so there is one rule: 1 to 19 ASCII
digits (no sign), inside ``[low, high]``, else a 400 that names the parameter and the bounds.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from core.errors import ApiError

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def integer(value: str, *, name: str, low: int = 0, high: int) -> int:
    """``value`` as an int in ``[low, high]``; surrounding spaces and tabs (HTTP's OWS,
    RFC 9110 §5.5) are ignored. Raises ApiError 400 (slug ``bad-integer``) otherwise."""
    text = value.strip(" \t")
    if _ASCII_DIGITS.fullmatch(text) is None or not low <= int(text) <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}.", slug="bad-integer", parameter=name)
    return int(text)


def optional_integer(value: str | None, *, name: str, default: int, low: int = 0, high: int) -> int:
    """``integer()`` of a parameter that may be absent (None gives ``default``)."""
    return default if value is None else integer(value, name=name, low=low, high=high)


def known_only(given: Mapping[str, str], *, allowed: Collection[str]) -> None:
    """Refuse query parameters a route does not take, so a misspelt filter (``?patient=`` for
    ``patient_id``) is a 400 naming it, never a silently unfiltered answer; and refuse empty
    ones (``?modality=``), which a form-style parser would otherwise drop as if absent.
    Raises ApiError 400 (slug ``unknown-parameter`` or ``empty-parameter``, member
    ``parameters``: the names at fault, sorted)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ApiError(
            400,
            f"Unknown query parameter {', '.join(unknown)}; this route takes {', '.join(sorted(allowed))}.",
            slug="unknown-parameter",
            parameters=unknown,
        )
    empty = sorted(name for name in given if given[name] == "")
    if empty:
        raise ApiError(400, f"Query parameter {', '.join(empty)} is empty.", slug="empty-parameter", parameters=empty)
