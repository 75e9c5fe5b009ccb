"""The expected output of dicom.part10.Part10Head, computed the plain way."""

from __future__ import annotations

from dicom.part10 import PREAMBLE_LEN


def scrub_preamble(head: bytes) -> bytes:
    """``head`` with its 128-byte preamble zeroed (PS3.10 §7.1; CVE-2019-11687)."""
    assert len(head) >= PREAMBLE_LEN
    return bytes(PREAMBLE_LEN) + head[PREAMBLE_LEN:]
