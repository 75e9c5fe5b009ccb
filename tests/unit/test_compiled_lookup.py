"""CompiledLookup gives what the QuerySet's .first() gives, in one query, however often it runs;
CompiledListLookup what a QuerySet filtering on lists of keys gives, for every shape of lists."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext

from accounts.models import APIKey, Organization
from accounts.services import organization_ensure
from core.compiled_lookup import CompiledListLookup, CompiledLookup
from studies.models import Patient, Study, Upload

pytestmark = pytest.mark.django_db

study_lookup: CompiledLookup[Study] = CompiledLookup(
    lambda org_id, uid: Study.objects.select_related("patient").filter(organization_id=org_id, study_uid=uid),
    org_id=-1,
    uid="\x00uid",
)


def _study(org: Organization, uid: str, **fields: object) -> Study:
    patient = Patient.objects.create(organization=org, patient_id=f"P-{uid}", name="Doe^Jane",
                                     birth_date=datetime.date(1970, 1, 2))  # fmt: skip
    return Study.objects.create(organization=org, patient=patient, study_uid=uid, **fields)


def _fields(obj: object) -> dict[str, object]:
    return {k: v for k, v in vars(obj).items() if k != "_state"}


def test_it_returns_the_row_the_queryset_returns_with_its_related_row() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    _study(org, "1.2.3", modalities=["CT", "MR"], study_date=datetime.date(2024, 5, 6), instance_count=7)
    _study(org, "1.2.4")
    for uid in ("1.2.3", "1.2.4", "1.2.3"):  # the second 1.2.3 runs the kept plan
        expected = Study.objects.select_related("patient").get(organization=org, study_uid=uid)
        with CaptureQueriesContext(connection) as queries:
            got = study_lookup.first(org_id=org.pk, uid=uid)
            assert got is not None
            assert _fields(got) == _fields(expected)  # converters applied: JSON list, dates
            assert _fields(got.patient) == _fields(expected.patient)
        assert len(queries) == 1  # the patient came with the study
    got = study_lookup.first(org_id=org.pk, uid="1.2.3")
    assert got is not None and got.modalities == ["CT", "MR"] and got.study_date == datetime.date(2024, 5, 6)


def test_it_returns_none_for_no_row_and_never_crosses_its_parameters() -> None:
    acme = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    globex = organization_ensure(slug="globex", plan_slug="professional", name="Globex")
    _study(acme, "1.2.3")
    assert study_lookup.first(org_id=globex.pk, uid="1.2.3") is None
    assert study_lookup.first(org_id=acme.pk, uid="1.2.9") is None


def test_it_loads_a_key_with_its_organization_and_plan() -> None:
    from accounts.auth import _key_by_prefix
    from accounts.services import key_issue

    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    issued, _ = key_issue(organization=org, name="k", role="admin")
    expected = APIKey.objects.select_related("organization__plan").get(pk=issued.pk)
    with CaptureQueriesContext(connection) as queries:
        got = _key_by_prefix.first(prefix=expected.prefix)
        assert got is not None
        assert _fields(got) == _fields(expected)
        assert got.organization.slug == "acme" and got.organization.plan.slug == "professional"
    assert len(queries) == 1


def test_it_refuses_a_placeholder_that_is_not_a_parameter_or_an_annotated_query() -> None:
    unused = CompiledLookup(lambda uid: Study.objects.filter(study_uid="1.2"), uid="\x00uid")
    with pytest.raises(ValueError):
        unused.first(uid="1.2")
    annotated = CompiledLookup(lambda uid: Study.objects.annotate(n=Count("series")).filter(study_uid=uid), uid="\x00")
    with pytest.raises(ValueError):
        annotated.first(uid="1.2")


def test_all_returns_every_row_the_queryset_returns_in_its_order() -> None:
    from studies.models import Series

    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    study, other = _study(org, "1.2.3"), _study(org, "1.2.4")
    for number, uid in ((2, "1.2.3.2"), (None, "1.2.3.9"), (1, "1.2.3.1")):
        Series.objects.create(study=study, series_uid=uid, number=number, modality="CT")
    Series.objects.create(study=other, series_uid="1.2.4.1", number=1)
    lookup = CompiledLookup(lambda sid: Series.objects.filter(study_id=sid).order_by("number", "id"), sid=-1)
    for target in (study, other, study):  # the second run of a study uses the kept plan
        expected = list(Series.objects.filter(study=target).order_by("number", "id"))
        with CaptureQueriesContext(connection) as queries:
            got = lookup.all(sid=target.pk)
        assert [_fields(s) for s in got] == [_fields(s) for s in expected]
        assert len(queries) == 1
    assert lookup.all(sid=-5) == []


def test_dicts_returns_the_rows_a_values_queryset_returns_with_json_converted() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    other = organization_ensure(slug="globex", plan_slug="professional", name="Globex")
    _study(org, "1.2.3", modalities=["CT", "MR"], study_date=datetime.date(2024, 5, 6))
    _study(org, "1.2.4", modalities=["US"])
    _study(other, "1.2.5")

    def build(org_id: int) -> object:
        return (
            Study.objects.filter(organization_id=org_id)
            .order_by("-study_uid")
            .values("study_uid", "modalities", "study_date", "patient__name")
        )

    lookup: CompiledLookup[Study] = CompiledLookup(build, org_id=-1)  # type: ignore[arg-type]
    for org_id in (org.pk, other.pk, org.pk):
        with CaptureQueriesContext(connection) as queries:
            rows = lookup.dicts(org_id=org_id)
        assert rows == list(build(org_id)) and len(queries) == 1  # type: ignore[call-overload]
    assert rows[0]["modalities"] == ["US"] and rows[1]["study_date"] == datetime.date(2024, 5, 6)


def _patients_by(named: list[str], unnamed: list[str], org_id: int) -> object:
    return (
        Patient.objects.filter(Q(patient_id__in=named, study_uid="") | Q(patient_id="", study_uid__in=unnamed),
                               organization_id=org_id)
        .order_by("patient_id", "study_uid")
    )  # fmt: skip


def test_a_list_lookup_returns_what_its_queryset_returns_for_every_shape_in_one_query() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    other = organization_ensure(slug="globex", plan_slug="professional", name="Globex")
    for n in range(4):
        Patient.objects.create(organization=org, patient_id=f"P{n}")
        Patient.objects.create(organization=org, patient_id="", study_uid=f"1.2.{n}")
    Patient.objects.create(organization=other, patient_id="P1")
    lookup: CompiledListLookup[Patient] = CompiledListLookup(_patients_by, kinds=[str, str], longest=4, org_id=-1)  # type: ignore[arg-type]
    shapes = [
        (["P1"], []),
        ([], ["1.2.1"]),
        (["P2", "P0"], ["1.2.3"]),
        (["P1", "P1"], ["1.2.1", "1.2.1"]),  # repeated keys: the same rows
        (["P1"], ["P1"]),  # a key of one list never lands in the other's place
        (["P9", "P3"], ["1.2.0", "1.2.9"]),
        (["P0", "P1", "P2"], ["1.2.0", "1.2.1"]),  # more than `longest`: the QuerySet runs
        ([], []),  # none: the QuerySet runs (no row)
    ]
    for _ in range(2):  # the second round runs the kept plans
        for named, unnamed in shapes:
            expected = list(_patients_by(named, unnamed, org.pk))  # type: ignore[call-overload]
            with CaptureQueriesContext(connection) as queries:
                got = lookup.all([named, unnamed], org_id=org.pk)
            assert [_fields(p) for p in got] == [_fields(p) for p in expected], (named, unnamed)
            assert len(queries) == (1 if named or unnamed else 0)
    assert {p.organization_id for p in lookup.all([["P1"], []], org_id=other.pk)} == {other.pk}


def test_a_list_lookup_binds_uuid_and_integer_keys_and_gives_dicts() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    studies = [_study(org, f"1.2.{n}", instance_count=n) for n in range(3)]
    uploads = [Upload.objects.create(organization=org, content_type="application/dicom") for _ in range(3)]

    def by_ids(ids: list[uuid.UUID]) -> object:
        return Upload.objects.filter(pk__in=ids).order_by("created", "pk")

    def counts(ids: list[int]) -> object:
        return Study.objects.filter(pk__in=ids).order_by("study_uid").values("study_uid", "instance_count")

    by_upload: CompiledListLookup[Upload] = CompiledListLookup(by_ids, kinds=[uuid.UUID])  # type: ignore[arg-type]
    by_study: CompiledListLookup[Study] = CompiledListLookup(counts, kinds=[int])  # type: ignore[arg-type]
    for _ in range(2):
        for ids in ([uploads[1].pk], [uploads[2].pk, uploads[0].pk], [uuid.uuid4()]):
            assert [u.pk for u in by_upload.all([ids])] == [u.pk for u in by_ids(ids)]  # type: ignore[attr-defined]
        for pks in ([studies[2].pk], [studies[0].pk, studies[1].pk], [10**9]):
            assert by_study.dicts([pks]) == list(counts(pks))  # type: ignore[call-overload]
    assert by_study.dicts([[studies[1].pk]]) == [{"study_uid": "1.2.1", "instance_count": 1}]
