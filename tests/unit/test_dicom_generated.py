"""Generated DICOM (hypothesis) round-trips through dicom.header and studies.index.fhir without loss
(issue 12): Person Names in several character sets with all three component groups, dates and
times with fractions, partial times and zone offsets, UID shapes of the wild, empty Type 2 values."""

from __future__ import annotations

import datetime
import io
import re
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicom.header import InstanceHeader, InvalidInstance, read_header
from dicom.uid import uid_is_acceptable
from studies.index import fhir
from tests.support.dicomfactory import encoded_element, make_instance

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns on odd values
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Character sets and text each can encode: UTF-8, Latin-1, and ISO 2022 with JIS X 0208 (the
# Japanese of PS3.5 Annex H), whose code extensions PN groups switch into and back out of.
_LATIN = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' -éüßøÅç"), max_size=12)
_KANJI = st.text(st.sampled_from("山田太郎花子鈴木一郎佐藤洪吉洞"), max_size=6)
_KANA = st.text(st.sampled_from("やまだたろうはなこすずきいちろう"), max_size=8)
_ANY = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=10)
CHARSETS = {
    "ISO_IR 192": (_ANY, _ANY, _ANY),
    "ISO_IR 100": (_LATIN, _LATIN, _LATIN),
    "\\ISO 2022 IR 87": (_LATIN, _KANJI, _KANA),
}


def _component(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Delimiters and padding are the encoding's, not the value's (PS3.5 §6.2: PN).
    return text.map(lambda s: re.sub(r"[\^=\\]", "", s).strip())


@st.composite
def person_names(draw: st.DrawFn) -> tuple[str, str]:
    """(Specific Character Set, PN): up to three groups of up to five components."""
    charset = draw(st.sampled_from(sorted(CHARSETS)))
    groups = []
    for text in CHARSETS[charset]:
        components = draw(st.lists(_component(text), min_size=0, max_size=5))
        while components and not components[-1]:
            components.pop()  # trailing empty components are not written
        groups.append("^".join(components))
    while groups and not groups[-1]:
        groups.pop()
    return charset, "=".join(groups)


def read(data: bytes) -> InstanceHeader:
    return read_header(io.BytesIO(data))


def _pn_from_human_names(names: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What FHIR kept of each group: representation -> [family, given..., prefix..., suffix...]."""
    kept = {}
    for name in names:
        [extension] = name["extension"]
        parts = [name.get("family", ""), *name.get("given", []), *name.get("prefix", []), *name.get("suffix", [])]
        kept[extension["valueCode"]] = [p for p in parts if p]
    return kept


@SETTINGS
@given(person_names())
def test_person_names_round_trip_through_the_header_and_fhir(case: tuple[str, str]) -> None:
    charset, name = case
    encoded = {
        0x00080005: encoded_element(0x00080005, charset),
        0x00100010: encoded_element(0x00100010, name, charset=charset),
    }
    header = read(make_instance(encoded=encoded))

    assert header.patient_name == name.strip()
    names = fhir.human_names(header.patient_name)
    expected = {}
    for representation, group in zip(fhir.REPRESENTATIONS, name.split("="), strict=False):
        family, given, middle, prefix, suffix = ([*group.split("^"), "", "", "", "", ""])[:5]
        parts = [p.strip() for p in (family, given, middle, prefix, suffix) if p.strip()]
        if parts:
            expected[representation] = parts
    assert _pn_from_human_names(names) == expected
    assert all(n["text"] for n in names)  # text always present


@st.composite
def study_moments(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    """(DA, TM, offset elements, the FHIR dateTime they mean)."""
    day = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)))
    precision = draw(st.sampled_from(["none", "HH", "HHMM", "HHMMSS", "fraction"]))
    moment = draw(st.times()).replace(tzinfo=None)
    offset = draw(
        st.one_of(st.none(), st.tuples(st.sampled_from("+-"), st.integers(0, 14), st.sampled_from([0, 30, 45])))
    )
    digits = draw(st.integers(1, 6))
    tm = {
        "none": None,
        "HH": f"{moment.hour:02d}",
        "HHMM": f"{moment.hour:02d}{moment.minute:02d}",
        "HHMMSS": moment.strftime("%H%M%S"),
        "fraction": moment.strftime("%H%M%S") + "." + f"{moment.microsecond:06d}"[:digits],
    }[precision]
    zone = None if offset is None else f"{offset[0]}{offset[1]:02d}{offset[2]:02d}"
    elements = {"StudyDate": day.strftime("%Y%m%d"), "StudyTime": tm, "TimezoneOffsetFromUTC": zone}
    if tm is None:
        return elements, day.isoformat()
    hour, minute, second = int(tm[:2]), int(tm[2:4] or 0), int(tm[4:6] or 0)
    clock = f"{hour:02d}:{minute:02d}:{second:02d}"
    fraction = tm[7:].rstrip("0")
    if fraction:
        clock += "." + fraction
    zone_text = "+00:00" if zone is None else f"{zone[:3]}:{zone[3:]}"
    return elements, f"{day.isoformat()}T{clock}{zone_text}"


@SETTINGS
@given(study_moments())
def test_dates_and_times_round_trip_to_fhir_exactly(case: tuple[dict[str, Any], str | None]) -> None:
    elements, started = case
    header = read(make_instance(**elements))

    assert fhir.started(header.study_date, header.study_time, header.timezone_offset) == started


_COMPONENT = st.from_regex(r"[1-9][0-9]{0,8}|0", fullmatch=True)
_LEADING_ZERO = st.from_regex(r"0[0-9]{1,4}", fullmatch=True)


@st.composite
def uid_shapes(draw: st.DrawFn) -> tuple[bytes, str | None, list[str]]:
    """(encoded UI value, the UID read or None if refused, warning codes)."""
    components = draw(st.lists(st.one_of(_COMPONENT, _LEADING_ZERO), min_size=2, max_size=8))
    value = ".".join(components)
    fault = draw(st.sampled_from(["none", "letter", "empty-component", "long"]))
    if fault == "letter":
        value += "a"
    elif fault == "empty-component":
        value += ".."
    elif fault == "long":
        value = (value + ".1" * 40)[:65]
    padding = draw(st.sampled_from(["standard", "space", "nuls"]))
    raw = value.encode()
    if padding == "standard":
        raw += b"\0" * (len(raw) % 2)
        odd_padding = False
    else:
        raw += b" " if padding == "space" else b"\0\0"
        odd_padding = True
        if len(raw) % 2:
            raw += b" " if padding == "space" else b"\0"
    if fault != "none" and not (fault == "long" and len(value) <= 64):
        return raw, None, []
    warnings = []
    if any(len(c) > 1 and c[0] == "0" for c in value.split(".")):
        warnings.append("non-conformant-uid")
    if odd_padding:
        warnings.append("uid-padding")
    return raw, value, warnings


@SETTINGS
@given(uid_shapes())
def test_uid_shapes_get_the_one_rules_verdict(case: tuple[bytes, str | None, list[str]]) -> None:
    raw, uid, warnings = case
    element = struct.pack("<HH2sH", 0x0020, 0x000D, b"UI", len(raw)) + raw
    data = make_instance(encoded={0x0020000D: element})

    if uid is None:
        with pytest.raises(InvalidInstance) as caught:
            read(data)
        assert caught.value.code == "invalid-uid"
        return
    header = read(data)
    assert header.study_instance_uid == uid
    assert sorted(w.code for w in header.warnings) == sorted(warnings)
    assert uid_is_acceptable(uid)  # the API parameters' verdict is the same


@SETTINGS
@given(
    st.sampled_from(["absent", "empty", "blank"]),
    st.sampled_from([None, "", " "]),
    st.sampled_from([None, "", "  "]),
)
def test_empty_type_2_values_are_indexed_and_mapped_as_absent(
    patient_id: str, name: str | None, accession: str | None
) -> None:
    value = {"absent": None, "empty": "", "blank": "  "}[patient_id]
    header = read(make_instance(patient_id=value, patient_name=name, accession=accession, study_date=None))

    assert (header.patient_id, header.patient_name, header.accession_number, header.study_date) == ("", "", "", None)
    row = fhir.PatientRow(1, "acme", header.patient_id, header.study_instance_uid, header.patient_name, None, "")
    patient = fhir.patient_resource(row)
    assert "identifier" not in patient and "name" not in patient
    assert patient["id"] == fhir.patient_resource_id(1, "", header.study_instance_uid)
