"""QIDO-RS searches answer the same through their compiled statements (core/compiled_search.py)
as through their QuerySets, for every shape of query: literal, list, wildcard, fuzzy, date and
time ranges, modalities, UIDs, includefield, limit / offset, at the three levels."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import pytest

from accounts.models import Organization
from accounts.services import organization_ensure
from core.compiled_search import Statement
from dicomweb import search as search_module
from dicomweb.attributes import Level
from dicomweb.matching import Scope, search_queryset
from dicomweb.qido import query_parse
from dicomweb.search import Page, search
from studies.models import Instance, Patient, Series, Study

pytestmark = pytest.mark.django_db

BASE = "http://testserver"
S, E, I = Level.STUDY, Level.SERIES, Level.INSTANCE  # noqa: E741
NAMES = ["Doe^Jane", "DOE^John", "100%^Pct", "100X^Pct", "Under_Score^A", "UnderXScore^B", "Smith^Anna=山田^花子"]


def _world(org: Organization) -> None:
    metadata = json.dumps({"00180015": {"vr": "CS", "Value": ["CHEST"]}, "00080070": {"vr": "LO", "Value": ["Acme"]}})
    for n, name in enumerate(NAMES):
        patient = Patient.objects.create(organization=org, patient_id=f"P{n}", name=name, sex="FM"[n % 2],
                                         birth_date=datetime.date(1980 + n, 1, 1))  # fmt: skip
        study = Study.objects.create(
            organization=org, patient=patient, study_uid=f"1.2.{n}", study_date=datetime.date(2024, 1, 1 + n),
            study_time=datetime.time(10, 15 * (n % 4), 30, 500000 if n % 2 else 0), accession_number=f"ACC{n}",
            description=f"Study {n}", referring_physician="Who^Doctor", modalities=[["CT"], ["MR", "SR"]][n % 2],
            series_count=2, instance_count=4, study_id=f"S{n}",
        )  # fmt: skip
        for k in (1, 2):
            series = Series.objects.create(
                study=study, series_uid=f"1.2.{n}.{k}", number=k, modality=["CT", "MR"][n % 2] if k == 1 else "SR",
                description=f"Series {k}", body_part="CHEST", instance_count=2,
                performed_procedure_step_start_date=datetime.date(2024, 2, n + k),
                performed_procedure_step_start_time=datetime.time(9, n + k), scheduled_procedure_step_id=f"SPS{k}",
            )  # fmt: skip
            for m in (1, 2):
                Instance.objects.create(
                    organization=org, series=series, sop_uid=f"1.2.{n}.{k}.{m}", number=m,
                    sop_class_uid="1.2.840.10008.5.1.4.1.1.2", transfer_syntax_uid="1.2.840.10008.1.2.1",
                    object_key=f"k/{n}/{k}/{m}", size=10, sha256="0" * 64, rows=256 * m, columns=256,
                    bits_allocated=16, number_of_frames=1,
                    metadata=metadata if m == 1 else "",
                )  # fmt: skip


# (level, study UID of the path, series UID of the path, query string); those that find nothing
# are marked so: the others must find something, or the equality would prove little.
QUERIES: list[tuple[Level, str | None, str | None, str]] = [
    (S, None, None, ""),
    (S, None, None, "PatientID=P1"),
    (S, None, None, "PatientID=P3"),
    (S, None, None, "PatientID=P1,P3,P1"),
    (S, None, None, "PatientID=P*"),
    (S, None, None, "PatientID=P?"),
    (S, None, None, "PatientID=*3"),
    (S, None, None, "PatientName=doe*"),
    (S, None, None, "PatientName=100%*"),
    (S, None, None, "PatientName=Under_*"),
    (S, None, None, "PatientName=D?E^J*"),
    (S, None, None, "PatientName=DOE^JANE"),
    (S, None, None, "PatientName=smith^anna=山田^花子"),
    (S, None, None, "PatientName=jan&fuzzymatching=true"),
    (S, None, None, "PatientName=100&fuzzymatching=true"),
    (S, None, None, "PatientName=doe*,under_*&fuzzymatching=true"),
    (S, None, None, "StudyDate=20240103"),
    (S, None, None, "StudyDate=20240102-20240104"),
    (S, None, None, "StudyDate=-20240103"),
    (S, None, None, "StudyDate=20240105-"),
    (S, None, None, "StudyDate=20240101,20240105-20240106"),
    (S, None, None, "StudyTime=1000-1030"),
    (S, None, None, "StudyTime=101530.5"),
    (S, None, None, "StudyTime=1045"),
    (S, None, None, "PatientBirthDate=19830101-&PatientSex=F"),
    (S, None, None, "ModalitiesInStudy=CT"),
    (S, None, None, "ModalitiesInStudy=MR,US"),
    (S, None, None, "StudyInstanceUID=1.2.1\\1.2.4"),
    (S, None, None, "AccessionNumber=ACC2&StudyID=S2"),
    (S, None, None, "ReferringPhysicianName=who*&StudyDescription=Study ?"),
    (S, None, None, "PatientID=P1&includefield=StudyDescription&includefield=00180015&includefield=Manufacturer"),
    (S, None, None, "includefield=all&limit=3"),
    (S, None, None, "limit=2"),
    (S, None, None, "limit=2&offset=2"),
    (S, None, None, "offset=6"),
    (S, None, None, "offset=7"),
    (E, None, None, "Modality=CT&limit=5"),
    (E, None, None, "SeriesNumber=1,2&limit=3&offset=4"),
    (E, None, None, "PatientName=doe*"),
    (E, None, None, "PerformedProcedureStepStartDate=20240203-20240205&includefield=all"),
    (E, None, None, "PerformedProcedureStepStartTime=0903-"),
    (E, None, None, "00400275.00400009=SPS2&BodyPartExamined=CHEST"),
    (E, None, None, "ModalitiesInStudy=MR&Modality=SR"),
    (E, "1.2.3", None, ""),
    (E, "1.2.3", None, "Modality=MR&includefield=00080070"),
    (I, None, None, "SOPInstanceUID=1.2.0.1.1,1.2.5.2.2"),
    (I, None, None, "InstanceNumber=2&Rows=512&limit=3"),
    (I, None, None, "InstanceNumber=9999999999"),  # past the columns: runs the QuerySet
    (I, None, None, "PatientID=P2&includefield=00080070"),
    (I, "1.2.4", None, ""),
    (I, "1.2.4", "1.2.4.2", "includefield=all"),
    (I, "1.2.4", "1.2.4.2", "InstanceNumber=1"),
    (I, None, None, "StudyDate=20240102&Modality=MR"),
]
FINDS_NOTHING = {"StudyTime=1045", "offset=7", "InstanceNumber=9999999999"}


class _Plain:
    """The QuerySet itself, as search() ran it before its statements were compiled."""

    def dicts(self, shape: Any, values: Sequence[object], *, offset: int, limit: int) -> list[dict[str, Any]]:
        return list(search_queryset(shape, values)[offset : offset + limit])


def _search(org: Organization, level: Level, study: str | None, series: str | None, text: str) -> Page:
    query = query_parse(parse_qsl(text, keep_blank_values=True), level=level)
    return search(scope=Scope(org, study, series), query=query, base=BASE)


@pytest.fixture
def orgs() -> list[Organization]:
    made = [organization_ensure(slug=slug, plan_slug="professional", name=slug.title()) for slug in ("acme", "globex")]
    for org in made:
        _world(org)
    return made


def test_it_answers_every_shape_as_the_queryset_does(orgs: list[Organization], monkeypatch) -> None:
    ran: list[str] = []
    rows = Statement.rows

    def counted(self: Statement, *args: Any, **kwargs: Any) -> Any:
        ran.append(self.sql)
        return rows(self, *args, **kwargs)

    monkeypatch.setattr(Statement, "rows", counted)
    for second in (False, True):  # the second time through, every shape's kept plan
        for org in orgs:
            for level, study, series, text in QUERIES:
                ran.clear()
                compiled = _search(org, level, study, series, text)
                ran_compiled = len(ran)
                with monkeypatch.context() as plain:
                    plain.setattr(search_module, "_searches", _Plain())
                    expected = _search(org, level, study, series, text)
                assert compiled == expected, (level, study, series, text)
                assert bool(expected.results) != (text in FINDS_NOTHING), text
                # The compiled statement answered (not the QuerySet), except past the columns.
                if second:
                    assert ran_compiled == (text != "InstanceNumber=9999999999"), text


def test_it_finds_what_each_matching_means(orgs: list[Organization]) -> None:
    acme = orgs[0]

    def ids(text: str, level: Level = S) -> list[str]:
        found = _search(acme, level, None, None, text).results
        return sorted(r["00100020"]["Value"][0] for r in found)

    assert ids("PatientName=100%*") == ["P2"]  # % and _ are not wildcards
    assert ids("PatientName=Under_*") == ["P4"]
    assert ids("PatientID=P1,P3") == ["P1", "P3"]
    assert ids("PatientName=jan&fuzzymatching=true") == ["P0"]
    assert ids("StudyDate=20240102-20240104") == ["P1", "P2", "P3"]
    assert ids("StudyTime=1015-1015") == ["P1", "P5"]  # the range's end takes its whole last minute
    assert ids("ModalitiesInStudy=MR") == ["P1", "P3", "P5"]
    page = _search(acme, S, None, None, "limit=2&offset=2")
    assert page.more and [r["00100020"]["Value"][0] for r in page.results] == ["P4", "P3"]
    (study,) = _search(acme, S, None, None, "PatientID=P1&includefield=00180015").results
    assert study["00180015"] == {"vr": "CS", "Value": ["CHEST"]}  # from the stored metadata
    assert _search(orgs[1], S, None, None, "PatientID=P1").results[0]["00100020"]["Value"] == ["P1"]
