"""The one UID rule of PrizMed (DICOM PS3.5 §9.1), for ingest, indexing and every API parameter.

PS3.5 §9.1: a UID is at most 64 characters of digits and dots; components are separated by
dots, none is empty, and a component of more than one digit does not start with "0". A UI
value is padded to an even length with one trailing NUL (PS3.5 §6.2); some writers pad with a
space instead.

The verdicts, decided once for every path (docs/decisions.md, "One UID rule"):
- **invalid** (refused): empty, over 64 characters, any character other than ASCII digits and
  dots, or an empty component (a leading or trailing dot, "..");
- **non-conformant but accepted**: a multi-digit component with a leading zero ("1.2.03"):
  PS3.5 forbids it, but such UIDs exist in the wild and Orthanc, dcm4chee and pynetdicom
  accept them, so refusing them would lose studies other archives keep;
- **padded but accepted**: an encoded value whose trailing padding is anything but the one NUL
  that makes an odd length even (a space, several NULs, a NUL after an even length);
- **conformant**: everything else.

Ingest (dicom.part10), indexing (dicom.header) and every API parameter (uid_is_acceptable)
call this module; indexing turns the two accepted faults into warnings on the upload item
(``uid_warnings``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_UID_CHARS = 64
# The same rule as a JSON Schema, for the OpenAPI description of UID parameters.
UID_SCHEMA = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)*$", "maxLength": MAX_UID_CHARS}
# Trailing padding of an encoded UI value: NUL per PS3.5 §6.2, space from lenient writers.
_PADDING = "\x00 "
_COMPONENTS = re.compile(r"[0-9]+(?:\.[0-9]+)*", re.ASCII)  # digits and dots, no empty component
_LEADING_ZERO = re.compile(r"(?:^|\.)0[0-9]", re.ASCII)  # a multi-digit component starting with 0

Reason = Literal["empty", "too-long", "bad-character", "empty-component"]
_REASONS: dict[Reason, str] = {
    "empty": "the UID is empty",
    "too-long": f"the UID is longer than {MAX_UID_CHARS} characters",
    "bad-character": "a UID holds only digits and dots",
    "empty-component": "a UID component is empty (a leading or trailing dot, or '..')",
}


class InvalidUid(ValueError):
    """Not a UID under PS3.5 §9.1, even read leniently; ``reason`` says why (stable codes)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(_REASONS[reason])
        self.reason: Reason = reason

    def __reduce__(self) -> tuple[type[InvalidUid], tuple[Reason]]:
        return (InvalidUid, (self.reason,))


@dataclass(frozen=True, slots=True)
class Uid:
    value: str  # without padding
    conformant: bool  # False: a leading-zero component PS3.5 §9.1 forbids, accepted anyway
    padded: bool = False  # True: padding other than PS3.5 §6.2's one NUL, accepted anyway


def uid_parse(raw: str | bytes) -> Uid:
    """The UID of an encoded UI value (trailing NUL or space padding stripped, PS3.5 §6.2),
    checked against PS3.5 §9.1 as this module's docstring says. Raises InvalidUid."""
    text = raw.decode("ascii", errors="replace") if isinstance(raw, bytes) else raw
    value = text.rstrip(_PADDING)
    if not value:
        raise InvalidUid("empty")
    if len(value) > MAX_UID_CHARS:
        raise InvalidUid("too-long")
    if _COMPONENTS.fullmatch(value) is None:
        only_digits_and_dots = value.strip("0123456789.") == ""
        raise InvalidUid("empty-component" if only_digits_and_dots else "bad-character")
    padding = text[len(value) :]
    standard = padding == "" or (padding == "\x00" and len(value) % 2 == 1)
    return Uid(value, conformant=_LEADING_ZERO.search(value) is None, padded=not standard)


def uid_warnings(uid: Uid) -> list[tuple[str, str]]:
    """The (code, message) warnings an accepted but faulty UID earns on its upload item:
    ``non-conformant-uid`` (a leading-zero component), ``uid-padding`` (non-standard padding)."""
    warnings = []
    if not uid.conformant:
        warnings.append(("non-conformant-uid", f"{uid.value}: a component has a leading zero (PS3.5 §9.1)"))
    if uid.padded:
        warnings.append(("uid-padding", f"{uid.value}: padded with other than one NUL (PS3.5 §6.2)"))
    return warnings


def uid_is_acceptable(value: str) -> bool:
    """True if ``value``, a UID given as text (a URL path or query parameter, so without
    padding), is one this service accepts: conformant or only leading-zero non-conformant."""
    try:
        return uid_parse(value).value == value
    except InvalidUid:
        return False
