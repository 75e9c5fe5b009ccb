"""dicomweb.accept and dicomweb.qido: what a client asks for, checked (PS3.18 §8.3, §8.7)."""

from __future__ import annotations

import datetime

import pytest

from core.errors import ApiError
from dicomweb.accept import accepts_dicom, accepts_image, accepts_json, accepts_pixels
from dicomweb.attributes import Level
from dicomweb.qido import query_parse

JPEG = "1.2.840.10008.1.2.4.50"


def test_it_negotiates_the_stored_forms() -> None:
    assert accepts_dicom(None, single_allowed=False).multipart
    assert accepts_dicom('multipart/related; type="application/dicom"; transfer-syntax=*', single_allowed=False)
    assert not accepts_dicom("application/dicom", single_allowed=True).multipart
    assert accepts_dicom(f'multipart/related; type="application/dicom"; transfer-syntax={JPEG}',
                         single_allowed=False).transfer_syntax == JPEG  # fmt: skip
    assert accepts_image("image/png") == "image/png"
    assert accepts_image("image/*, image/png") == "image/jpeg"
    assert accepts_image("text/html;q=0, image/png;q=0.5") == "image/png"
    accepts_json("application/json")
    accepts_pixels('multipart/related; type="image/jpeg"', stored_media="image/jpeg", stored_syntax=JPEG)
    accepts_pixels("multipart/related; type=application/octet-stream; transfer-syntax=*",
                   stored_media="application/octet-stream", stored_syntax="1.2.840.10008.1.2.1")  # fmt: skip
    for refused in (
        lambda: accepts_dicom("application/dicom", single_allowed=False),
        lambda: accepts_json("application/dicom+xml"),
        lambda: accepts_image("image/gif"),
        lambda: accepts_pixels(
            'multipart/related; type="application/octet-stream"', stored_media="image/jpeg", stored_syntax=JPEG
        ),
    ):
        with pytest.raises(ApiError) as error:
            refused()
        assert error.value.status == 406


@pytest.mark.django_db
def test_it_reads_the_matching_forms_of_ps3_4() -> None:
    query = query_parse(
        [("PatientName", "Sm*,Jo?es"), ("StudyDate", "20240101-"), ("StudyTime", "-1030"), ("limit", "5"),
         ("includefield", "00081030,StudyDescription,all"), ("fuzzymatching", "true"), ("AccessionNumber", "")],
        level=Level.STUDY,
    )  # fmt: skip
    assert (query.limit, query.offset, query.fuzzy, query.include_all) == (5, 0, True, True)
    names, dates, times = query.matches
    assert names.values == ("Sm*", "Jo?es") and names.wildcard == (True, True)
    assert dates.values == ((datetime.date(2024, 1, 1), None),)
    assert times.values == ((None, datetime.time(10, 30)),)
    assert query.include == {"00081030"}
    for bad in (
        [("NotAKeyword", "1")],
        [("StudyDate", "2024")],
        [("SOPInstanceUID", "1.2")],  # an instance attribute in a study query
        [("limit", "0")],
        [("fuzzymatching", "yes")],
        [("PatientID", "A"), ("PatientID", "B")],
        [("includefield", "Nope")],
    ):
        with pytest.raises(ApiError) as error:
            query_parse(bad, level=Level.STUDY)
        assert error.value.status == 400, bad
    assert query_parse([("SOPInstanceUID", "1.2")], level=Level.INSTANCE).matches
