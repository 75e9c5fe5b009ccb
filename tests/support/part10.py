"""dicom.part10 seen the plain way: the expected output of Part10Head, and the File Meta group
of a complete prefix."""

from __future__ import annotations

from dicom.part10 import PREAMBLE_BYTES, FileMeta, file_meta_scan


def scrub_preamble(head: bytes) -> bytes:
    """``head`` with its 128-byte preamble zeroed (PS3.10 §7.1; CVE-2019-11687)."""
    assert len(head) >= PREAMBLE_BYTES
    return bytes(PREAMBLE_BYTES) + head[PREAMBLE_BYTES:]


def meta_from_prefix(prefix: bytes, *, at_eof: bool = False) -> FileMeta | None:
    """The File Meta group of the first bytes of a Part-10 stream; None while more are needed."""
    result = file_meta_scan(prefix, at_eof=at_eof)
    return result if isinstance(result, FileMeta) else None
