"""Multipart framing: the upload bodies the client writes, and the WADO-RS parser that reads a
`multipart/related; type="application/dicom"` answer (PS3.18 §8.6.1.2) into a folder."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
from prizmed_client.client import PrizMedClient
from prizmed_client.config import Settings
from prizmed_client.download import PartWriter
from prizmed_client.multipart import (
    MultipartError,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    multipart_body,
    multipart_length,
)
from prizmed_client.part10 import NotPart10
from prizmed_client.transport import Transport

from dicom.multipart import MultipartParser
from dicom.multipart import PartData as ServerData
from tests.support.dicomfactory import make_instance

BOUNDARY = "wado-boundary-1f2e3d"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'


def related(instances: list[bytes], boundary: str = BOUNDARY) -> bytes:
    """A WADO-RS body as PS3.18 frames it, with a preamble and an epilogue a parser must skip."""
    parts = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n"
        for data in instances
    )
    return b"preamble to ignore\r\n" + parts + b"--" + boundary.encode() + b"--\r\nepilogue"


def pieces(data: bytes, rng: random.Random, largest: int) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, largest)
        out.append(data[pos : pos + size])
        pos += size
    return out


@pytest.mark.parametrize("largest", [1, 7, 130, 65536])
def test_it_writes_each_part_to_its_sop_instance_uid_whatever_the_piece_sizes(tmp_path: Path, largest: int) -> None:
    # The pixel data holds the boundary's prefix bytes, so only a whole delimiter line ends a part.
    trap = b"\r\n--" + BOUNDARY[:-1].encode()
    instances = [make_instance(sop_uid=f"1.2.3.{i}", pixel_bytes=3000 + i, StudyDescription="x") for i in range(4)]
    instances[1] = instances[1][:-200] + trap + instances[1][-200 + len(trap) :]
    body = related(instances)
    written = PartWriter(tmp_path).write_body(CONTENT_TYPE, pieces(body, random.Random(largest), largest))
    assert [p.name for p in written] == [f"1.2.3.{i}.dcm" for i in range(4)]
    assert [p.read_bytes() for p in written] == instances
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temporary left


def test_it_reads_parts_without_headers_and_empty_parts() -> None:
    body = b"--b\r\n\r\nfirst\r\n--b\r\nContent-Type: application/dicom\r\n\r\n\r\n--b--"
    events = MultipartReader("b").feed(body)
    assert events == [
        PartStart({}),
        PartData(b"first"),
        PartEnd(),
        PartStart({"content-type": "application/dicom"}),
        PartEnd(),
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (related([make_instance()])[:-30], MultipartError),  # cut before the closing delimiter
        (
            b"--" + BOUNDARY.encode() + b"\r\nContent-Type: text/html\r\n\r\n<html>\r\n--" + BOUNDARY.encode() + b"--",
            MultipartError,
        ),
        (related([make_instance(), b"not dicom at all" * 20]), NotPart10),
    ],
    ids=["truncated", "not-dicom-type", "not-part10"],
)
def test_it_refuses_a_broken_body_and_leaves_no_partial_file(
    tmp_path: Path, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        PartWriter(tmp_path).write_body(CONTENT_TYPE, [body])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".part-")]


def test_it_refuses_a_part_whose_uid_would_name_a_file_elsewhere(tmp_path: Path) -> None:
    data = make_instance(sop_uid="1.2.3")
    hostile = data.replace(b"1.2.3\0", b"../../", 1)  # the meta's (0002,0003) value, same length
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(NotPart10):
        PartWriter(out).write_body(CONTENT_TYPE, [related([hostile])])
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_upload_body_is_what_the_server_parses(tmp_path: Path) -> None:
    instances = [make_instance(pixel_bytes=n) for n in (10, 5000, 70000)]
    paths = []
    for i, data in enumerate(instances):
        paths.append(tmp_path / f"{i}.dcm")
        paths[-1].write_bytes(data)
    body = b"".join(multipart_body(paths, "client-boundary", read_size=999))
    assert len(body) == multipart_length([len(d) for d in instances], "client-boundary")
    parser = MultipartParser("client-boundary")
    parts: list[bytes] = []
    for event in [*parser.feed(body)]:
        if type(event).__name__ == "PartStart":
            parts.append(b"")
        elif isinstance(event, ServerData):
            parts[-1] += event.data
    parser.close()
    assert parts == instances


def test_download_streams_a_wado_rs_answer_into_the_folder(tmp_path: Path) -> None:
    instances = [make_instance(sop_uid=f"1.2.840.99.{i}", pixel_bytes=100_000) for i in range(3)]
    seen: list[httpx.Request] = []

    def wado(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": CONTENT_TYPE}, content=related(instances))

    settings = Settings(url="http://pacs.test", api_key="pzm_test", state_dir=tmp_path / "state")
    transport = Transport(settings, http=httpx.Client(transport=httpx.MockTransport(wado)))
    with PrizMedClient(settings, transport=transport) as client:
        written = client.download("1.2.840.99", tmp_path / "out")
    assert seen[0].url.path == "/api/v2/dicomweb/studies/1.2.840.99"
    assert seen[0].headers["accept"] == 'multipart/related; type="application/dicom"; transfer-syntax=*'
    assert seen[0].headers["authorization"] == "Bearer pzm_test"
    assert [p.read_bytes() for p in written] == instances
