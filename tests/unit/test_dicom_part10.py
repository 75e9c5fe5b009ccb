"""dicom.part10: early Part-10 checks (DICOM PS3.10 §7.1), no Django needed."""

from __future__ import annotations

import io
import struct

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dicom.part10 import (
    HEAD_BYTES,
    PREAMBLE_BYTES,
    FileMeta,
    FileMetaTruncated,
    NotDicom,
    Part10Head,
    check_head,
    file_meta_read,
)
from tests.support.part10 import meta_from_prefix, scrub_preamble

CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")


def element(elem: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian group 0002 element (PS3.5 §7.1.2)."""
    if vr in (b"OB", b"UN", b"UT", b"SQ"):
        return struct.pack("<HH2s2xI", 2, elem, vr, len(value)) + value
    return struct.pack("<HH2sH", 2, elem, vr, len(value)) + value


def uid(text: str) -> bytes:
    raw = text.encode()
    return raw + b"\x00" * (len(raw) % 2)


def meta_group(*, group_length: bool = True, transfer_syntax: str | None = "1.2.840.10008.1.2.1") -> bytes:
    body = element(0x0001, b"OB", b"\x00\x01") + element(0x0002, b"UI", uid(CT_IMAGE))
    body += element(0x0003, b"UI", uid("1.2.3.4"))
    if transfer_syntax is not None:
        body += element(0x0010, b"UI", uid(transfer_syntax))
    if not group_length:
        return body
    return element(0x0000, b"UL", struct.pack("<I", len(body))) + body


def part10(*, group_length: bool = True, transfer_syntax: str | None = "1.2.840.10008.1.2.1") -> bytes:
    """A tiny Part-10 file: executable-looking preamble, meta group, one 10-byte element."""
    preamble = b"MZ\x90\x00" * 32
    dataset = struct.pack("<HH2sH", 0x0008, 0x0060, b"CS", 2) + b"CT"
    return preamble + b"DICM" + meta_group(group_length=group_length, transfer_syntax=transfer_syntax) + dataset


def pydicom_file() -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = CT_IMAGE
    ds.Modality = "CT"
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def feed_all(data: bytes, size: int) -> tuple[bytes, Part10Head]:
    head = Part10Head()
    out = b"".join(head.feed(data[i : i + size]) for i in range(0, len(data), size))
    head.finish()
    return out, head


def test_it_accepts_the_dicm_prefix() -> None:
    check_head(part10()[:HEAD_BYTES])


def test_it_rejects_a_body_without_the_dicm_prefix() -> None:
    with pytest.raises(NotDicom, match="DICM"):
        check_head(b"\x00" * 128 + b"DICX")


def test_it_rejects_a_body_shorter_than_the_head() -> None:
    with pytest.raises(NotDicom, match="shorter than a DICOM preamble"):
        check_head(b"\x00" * 131)


def test_it_zeroes_the_preamble_and_keeps_the_rest() -> None:
    data = part10()
    scrubbed = scrub_preamble(data)
    assert scrubbed[:PREAMBLE_BYTES] == bytes(PREAMBLE_BYTES)
    assert scrubbed[PREAMBLE_BYTES:] == data[PREAMBLE_BYTES:]


@pytest.mark.parametrize("size", [1, 7, 131, 132, 133, 1000])
def test_it_streams_the_scrubbed_file_in_any_piece_size(size: int) -> None:
    data = part10()
    out, head = feed_all(data, size)
    assert out == scrub_preamble(data)
    assert head.done
    assert head.meta == FileMeta("1.2.840.10008.1.2.1", CT_IMAGE, "1.2.3.4", len(data) - 10)


def test_it_holds_back_bytes_until_the_head_is_complete() -> None:
    head = Part10Head()
    assert head.feed(part10()[:100]) == b""
    assert not head.done


def test_it_passes_later_pieces_through_without_copying() -> None:
    head = Part10Head()
    head.feed(part10())
    piece = b"x" * 4096
    assert head.feed(piece) is piece


def test_it_refuses_a_non_dicom_body_from_its_first_bytes() -> None:
    head = Part10Head()
    with pytest.raises(NotDicom):
        head.feed(b"%PDF-1.7\n" + b"\x00" * 200)


def test_it_finish_refuses_a_short_body() -> None:
    head = Part10Head()
    head.feed(b"\x00" * 131)
    with pytest.raises(NotDicom, match="shorter than a DICOM preamble"):
        head.finish()


def test_it_finish_refuses_a_body_ending_inside_the_meta_group() -> None:
    head = Part10Head()
    head.feed(part10()[:150])
    with pytest.raises(NotDicom, match="ends inside"):
        head.finish()


def test_it_reads_the_meta_of_a_file_written_by_pydicom() -> None:
    data = pydicom_file()
    meta = meta_from_prefix(data)
    assert meta is not None
    assert meta.transfer_syntax_uid == ExplicitVRLittleEndian
    assert meta.media_storage_sop_class_uid == CT_IMAGE


def test_it_needs_more_bytes_until_the_meta_group_is_complete() -> None:
    data = part10()
    end = len(data) - 10  # the trailing data set element is 10 bytes
    for cut in range(HEAD_BYTES, end):
        assert meta_from_prefix(data[:cut]) is None
    assert meta_from_prefix(data[:end]) is not None


def test_it_reads_a_meta_group_without_group_length() -> None:
    data = part10(group_length=False)
    assert meta_from_prefix(data[: len(data) - 10]) is None  # can't tell the group ended yet
    meta = meta_from_prefix(data)
    assert meta is not None and meta.end == len(data) - 10
    assert meta_from_prefix(data[: len(data) - 10], at_eof=True) == meta


def test_it_rejects_dicm_followed_by_something_else() -> None:
    with pytest.raises(NotDicom, match="no File Meta"):
        meta_from_prefix(b"\x00" * 128 + b"DICM" + b"\x08\x00\x60\x00CS\x02\x00CT")


def test_it_rejects_a_meta_group_without_transfer_syntax() -> None:
    with pytest.raises(NotDicom, match="Transfer Syntax"):
        meta_from_prefix(part10(transfer_syntax=None))


def test_it_rejects_a_malformed_uid() -> None:
    with pytest.raises(NotDicom, match="UID"):
        meta_from_prefix(part10(transfer_syntax="1.2.abc"))


def test_it_rejects_a_group_longer_than_64_kib() -> None:
    data = b"\x00" * 128 + b"DICM" + element(0x0000, b"UL", struct.pack("<I", 70_000))
    with pytest.raises(NotDicom, match="longer than allowed"):
        meta_from_prefix(data)


def test_it_rejects_an_oversized_element_before_it_arrives() -> None:
    head = Part10Head()
    with pytest.raises(NotDicom, match="longer than allowed"):
        head.feed(b"\x00" * 128 + b"DICM" + struct.pack("<HH2s2xI", 2, 1, b"OB", 1 << 20))


def test_it_rejects_implicit_vr_meta() -> None:
    data = b"\x00" * 128 + b"DICM" + struct.pack("<HHI", 2, 0, 4) + struct.pack("<I", 10)
    with pytest.raises(NotDicom, match="Explicit VR"):
        meta_from_prefix(data)


def test_it_rejects_undefined_length_in_the_meta_group() -> None:
    data = b"\x00" * 128 + b"DICM" + struct.pack("<HH2s2xI", 2, 1, b"OB", 0xFFFFFFFF)
    with pytest.raises(NotDicom, match="undefined length"):
        meta_from_prefix(data)


@pytest.mark.parametrize(("count", "error"), [(8000, "Transfer Syntax"), (9000, "longer than allowed")])
def test_it_concludes_on_a_meta_group_of_tiny_elements_fed_byte_by_byte(count: int, error: str) -> None:
    data = b"\x00" * 128 + b"DICM" + struct.pack("<HH2sH", 2, 0x0100, b"CS", 0) * count + b"\x08\x00\x60\x00"
    head = Part10Head()
    with pytest.raises(NotDicom, match=error):
        for i in range(len(data)):
            head.feed(data[i : i + 1])
        head.finish()


def test_it_reads_the_meta_of_a_stored_file_as_part10head_does() -> None:
    data = part10()
    _, head = feed_all(data, 1000)
    assert file_meta_read(io.BytesIO(data)) == head.meta
    with pytest.raises(FileMetaTruncated):
        file_meta_read(io.BytesIO(data[:150]))


def test_it_reads_a_meta_group_of_tiny_elements_in_linear_time() -> None:
    data = b"\x00" * 128 + b"DICM" + struct.pack("<HH2sH", 2, 0x0100, b"CS", 0) * 8000 + b"\x08\x00\x60\x00"
    with pytest.raises(NotDicom, match="Transfer Syntax"):
        file_meta_read(io.BytesIO(data))
