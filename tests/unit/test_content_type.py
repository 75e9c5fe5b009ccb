"""studies.ingest.content_type: the upload body's Content-Type, STOW-RS's own type included."""

from __future__ import annotations

import pytest

from studies.ingest.content_type import BadContentType, Kind, UnsupportedMediaType, content_type_parse


def test_it_takes_stow_rs_multipart_related_as_the_dicom_stream_alias() -> None:
    stow = content_type_parse('multipart/related; type="application/dicom"; boundary=abc')
    alias = content_type_parse("application/dicom+stream; boundary=abc")
    assert (stow.kind, stow.boundary) == (alias.kind, alias.boundary) == (Kind.MULTIPART, "abc")
    assert stow.value == 'multipart/related; type="application/dicom"; boundary="abc"'
    assert content_type_parse('Multipart/Related; TYPE="Application/DICOM"; boundary=x').kind == Kind.MULTIPART


@pytest.mark.parametrize(
    "header",
    ["multipart/related; boundary=abc", 'multipart/related; type="application/dicom+xml"; boundary=abc',
     'multipart/related; type="application/dicom"; type="application/dicom"; boundary=abc'],
)  # fmt: skip
def test_it_refuses_other_multipart_related_bodies(header: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        content_type_parse(header)


def test_it_needs_a_boundary() -> None:
    with pytest.raises(BadContentType):
        content_type_parse('multipart/related; type="application/dicom"')
