"""dicom.multipart: STOW-RS style framing (PS3.18 §10.5, RFC 2046 §5.1), no Django needed."""

from __future__ import annotations

import itertools
import random

import pytest

from dicom.multipart import (
    MAX_PADDING_BYTES,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_from_content_type,
)
from tests.support.multipart import build_multipart

BOUNDARY = "pzm-7d1f3a"
PARTS = [b"DICM-one\r\n-- not a boundary\r\n", b"", b"\r\n--pzm-7d1f3", b"x" * 300 + b"\r"]


def parse(body: bytes, pieces: list[int] | None = None, boundary: str = BOUNDARY) -> list[tuple[dict[str, str], bytes]]:
    """Feed ``body`` cut at ``pieces`` offsets; return (headers, data) per part. Each part's
    data must be the body's bytes from the offset its PartStart gave (chunk reassembly composes
    instances from that extent)."""
    parser = MultipartParser(boundary)
    cuts = [0, *(pieces or []), len(body)]
    parts: list[tuple[dict[str, str], bytes]] = []
    open_part: list[bytes] | None = None
    offset = -1
    for start, end in itertools.pairwise(cuts):
        for event in parser.feed(body[start:end]):
            if isinstance(event, PartStart):
                assert open_part is None
                parts.append((event.headers, b""))
                open_part, offset = [], event.offset
            elif isinstance(event, PartData):
                assert open_part is not None
                open_part.append(event.data)
            else:
                assert isinstance(event, PartEnd) and open_part is not None
                data = b"".join(open_part)
                assert body[offset : offset + len(data)] == data
                parts[-1] = (parts[-1][0], data)
                open_part = None
    parser.close()
    assert open_part is None
    return parts


def datas(parts: list[tuple[dict[str, str], bytes]]) -> list[bytes]:
    return [data for _, data in parts]


def test_it_round_trips_build_multipart() -> None:
    parts = parse(build_multipart(PARTS, BOUNDARY))
    assert datas(parts) == PARTS
    assert all(headers == {"content-type": "application/dicom"} for headers, _ in parts)


def test_it_gives_the_same_parts_whatever_the_split_offset() -> None:
    body = b"preamble\r\n" + build_multipart(PARTS, BOUNDARY) + b"epilogue"
    for offset in range(len(body) + 1):
        assert datas(parse(body, [offset])) == PARTS, offset


def test_it_gives_the_same_parts_fed_byte_by_byte() -> None:
    body = build_multipart(PARTS, BOUNDARY)
    assert datas(parse(body, list(range(1, len(body))))) == PARTS


def test_it_gives_the_same_parts_in_random_piece_sizes() -> None:
    rng = random.Random(1234)
    parts = [rng.randbytes(rng.randrange(0, 3000)) + b"\r\n--pzm" for _ in range(8)]
    body = build_multipart(parts, BOUNDARY)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randrange(1, 40)))
        assert datas(parse(body, cuts)) == parts


def test_it_skips_preamble_and_epilogue() -> None:
    body = b"This is a preamble --pzm-7d1f3a\r\n\r\n" + build_multipart([b"a"], BOUNDARY) + b"\r\n--pzm-7d1f3a\r\nz"
    assert datas(parse(body)) == [b"a"]


def test_it_refuses_a_body_without_the_close_delimiter() -> None:
    body = build_multipart([b"abc"], BOUNDARY)
    parser = MultipartParser(BOUNDARY)
    parser.feed(body[: -len("--\r\n")])
    with pytest.raises(MultipartError, match="truncated"):
        parser.close()


def test_it_refuses_a_body_without_any_boundary() -> None:
    parser = MultipartParser(BOUNDARY)
    assert parser.feed(b"\x00" * 128 + b"DICM") == []
    with pytest.raises(MultipartError):
        parser.close()


def test_it_accepts_a_part_without_content_type() -> None:
    body = b"--pzm-7d1f3a\r\n\r\nraw\r\n--pzm-7d1f3a\r\nX-Other: 1\r\n\r\nraw2\r\n--pzm-7d1f3a--"
    assert parse(body) == [({}, b"raw"), ({"x-other": "1"}, b"raw2")]


def test_it_keeps_boundary_text_not_preceded_by_crlf_as_data() -> None:
    data = b"abc--pzm-7d1f3a\r\nxyz\n--pzm-7d1f3a\r\n\r--pzm-7d1f3a--"
    body = b"--pzm-7d1f3a\r\n\r\n" + data + b"\r\n--pzm-7d1f3a--\r\n"
    assert datas(parse(body)) == [data]


def test_it_keeps_a_longer_boundary_like_line_as_data() -> None:
    data = b"\r\n--pzm-7d1f3aX\r\n--pzm-7d1f3a \tY"
    body = b"--pzm-7d1f3a\r\n\r\nA" + data + b"\r\n--pzm-7d1f3a--"
    assert datas(parse(body)) == [b"A" + data]


def test_it_accepts_bare_lf_after_boundary_and_header_lines() -> None:
    body = b"--pzm-7d1f3a\nContent-Type: application/dicom\n\nabc\r\n--pzm-7d1f3a\n\ndef\r\n--pzm-7d1f3a--\n"
    assert parse(body) == [({"content-type": "application/dicom"}, b"abc"), ({}, b"def")]


def test_it_ignores_transport_padding_after_a_boundary() -> None:
    body = b"--pzm-7d1f3a \t \r\n\r\nabc\r\n--pzm-7d1f3a\t\r\n\r\ndef\r\n--pzm-7d1f3a--  \r\n"
    assert datas(parse(body)) == [b"abc", b"def"]


def test_it_refuses_endless_transport_padding() -> None:
    parser = MultipartParser(BOUNDARY)
    with pytest.raises(MultipartError, match="padding"):
        parser.feed(b"--pzm-7d1f3a" + b" " * (MAX_PADDING_BYTES + 2))


def test_it_lowercases_header_names_and_joins_repeats() -> None:
    body = b"--pzm-7d1f3a\r\nCONTENT-TYPE : application/dicom\r\nX-A: 1\r\nx-a: 2\r\n\r\n\r\n--pzm-7d1f3a--"
    assert parse(body) == [({"content-type": "application/dicom", "x-a": "1, 2"}, b"")]


def test_it_refuses_part_headers_over_16_kib() -> None:
    parser = MultipartParser(BOUNDARY)
    with pytest.raises(MultipartError, match="16 KiB"):
        parser.feed(b"--pzm-7d1f3a\r\n" + b"X-Big: " + b"a" * 17_000)
    with pytest.raises(MultipartError):
        parser.feed(b"\r\n\r\n")  # a rejected body stays rejected


def test_it_refuses_a_malformed_header_line() -> None:
    with pytest.raises(MultipartError, match="header"):
        MultipartParser(BOUNDARY).feed(b"--pzm-7d1f3a\r\nno colon here\r\n\r\n")


def test_it_streams_part_data_without_accumulating_it() -> None:
    rng = random.Random(7)
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--pzm-7d1f3a\r\n\r\n")
    fed = emitted = 0
    for size in [1, 5, 65536, 3, 100_000] * 20:
        piece = rng.randbytes(size).replace(b"-", b"\r")  # many CRs: many possible delimiter starts
        fed += len(piece)
        emitted += sum(len(e.data) for e in parser.feed(piece) if isinstance(e, PartData))
        assert fed - emitted <= len(BOUNDARY) + 3  # only a possible "\r\n--boundary" prefix is held back
    parser.feed(b"\r\n--pzm-7d1f3a--")
    parser.close()


def test_it_handles_many_parts_and_an_empty_body_list() -> None:
    assert parse(b"--pzm-7d1f3a--\r\n") == []
    parts = [bytes([i]) * i for i in range(50)]
    assert datas(parse(build_multipart(parts, BOUNDARY))) == parts


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("application/dicom+stream; boundary=abc", "abc"),
        ('multipart/related; type="application/dicom"; boundary="a b:c?"', "a b:c?"),
        ("multipart/related;BOUNDARY = abc ; start=<x@y>", "abc"),
        ('multipart/related; start="<a;boundary=no>"; Boundary="x\\(y"', "x(y"),
        ("multipart/related;boundary==_Part_1", "=_Part_1"),
        ("multipart/related; boundary=" + "b" * 70, "b" * 70),
    ],
)
def test_it_reads_the_boundary_parameter(content_type: str, boundary: str) -> None:
    assert boundary_from_content_type(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom+stream",
        "application/dicom+stream; boundary=",
        'application/dicom+stream; boundary=""',
        "application/dicom+stream; boundary=" + "b" * 71,
        'application/dicom+stream; boundary="ends with space "',
        "application/dicom+stream; boundary=a; boundary=b",
        "application/dicom+stream; boundary=a\x00b",
        'application/dicom+stream; boundary="x\\"y"',  # a quote is not a bchar
    ],
)
def test_it_refuses_a_missing_or_invalid_boundary(content_type: str) -> None:
    with pytest.raises(MultipartError):
        boundary_from_content_type(content_type)


def test_it_parses_with_a_boundary_read_from_the_header() -> None:
    boundary = boundary_from_content_type('multipart/related; type="application/dicom"; boundary="a b"')
    assert datas(parse(build_multipart([b"x", b"y"], boundary), boundary=boundary)) == [b"x", b"y"]


def test_it_refuses_to_build_a_part_holding_the_delimiter() -> None:
    with pytest.raises(MultipartError):
        build_multipart([b"a\r\n--pzm-7d1f3a"], BOUNDARY)
