"""dicomweb.body: answers planned as segments, cut to a byte range, streamed in paced pieces."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.errors import ApiError
from dicomweb.body import Answer, Part, Slice, boundary_for, byte_range, cut, multipart, send_segments
from studies.objects.store import storage


@pytest.fixture
def stored_object() -> tuple[str, bytes]:
    key, data = "unit/dicomweb-body.bin", bytes(range(256)) * 20_000  # 5 MB: several read pieces
    writer = storage().writer(key)
    writer.write(data)
    writer.commit()
    return key, data


def _send(segments: list[Any]) -> tuple[bytes, list[int], dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    paced: list[int] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def pace(nbytes: int) -> None:
        paced.append(nbytes)

    asyncio.run(send_segments(send, receive, Answer(200, [], segments), pace=pace))
    return b"".join(m.get("body", b"") for m in sent[1:]), paced, sent[0]


def test_it_streams_a_multipart_body_every_byte_paced(stored_object: tuple[str, bytes]) -> None:
    key, data = stored_object
    boundary = boundary_for("a")
    segments = multipart([Part([("Content-Type", "application/dicom")], [Slice(key, 0, len(data))])], boundary)
    body, paced, start = _send(segments)
    assert body == (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data
                    + f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
    assert dict(start["headers"])[b"content-length"] == str(len(body)).encode()
    assert sum(paced) == len(data) and len(paced) > 1  # the stored bytes, piece by piece


def test_it_cuts_any_range_out_of_the_plan(stored_object: tuple[str, bytes]) -> None:
    key, data = stored_object
    segments: list[bytes | Slice] = [b"head", Slice(key, 10, 1000), b"tail"]
    whole = b"head" + data[10:1010] + b"tail"
    for start, stop in ((0, 1008), (2, 6), (5, 1006), (1003, 1008), (0, 4)):
        assert _send(cut(segments, start, stop))[0] == whole[start:stop]


def test_it_reads_range_headers_as_rfc_9110_says() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("bytes=10-19", 100) == (10, 20)
    assert byte_range("bytes=90-", 100) == (90, 100)
    assert byte_range("bytes=-5", 100) == (95, 100)
    assert byte_range("bytes=50-500", 100) == (50, 100)
    assert byte_range("bytes=1-2,5-6", 100) is None  # several ranges: answered whole
    assert byte_range("items=1-2", 100) is None
    with pytest.raises(ApiError) as refused:
        byte_range("bytes=100-", 100)
    assert refused.value.status == 416


def test_it_streams_many_small_slices_and_large_ones_in_order(stored_object: tuple[str, bytes]) -> None:
    key, data = stored_object
    # Small slices are read several to a thread hop, large ones piece by piece: the bytes and
    # their order are the same either way.
    small = [Slice(key, offset, 70_000) for offset in range(0, 3_000_000, 70_000)]
    segments: list[bytes | Slice] = [*small, Slice(key, 5, len(data) - 5), *small[:3], b"end"]
    expected = b"".join(data[s.offset : s.offset + s.length] for s in small) + data[5:]
    expected += b"".join(data[s.offset : s.offset + s.length] for s in small[:3]) + b"end"
    assert _send(segments)[0] == expected


def test_it_fails_a_slice_the_stored_object_is_too_short_for(stored_object: tuple[str, bytes]) -> None:
    key, data = stored_object
    with pytest.raises(OSError, match="shorter than its index says"):
        _send([Slice(key, 0, 100), Slice(key, len(data) - 50, 100)])
