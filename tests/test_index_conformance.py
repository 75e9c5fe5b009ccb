"""Real-world DICOM at indexing (issue 12): empty Type 2 Patient IDs, patient consistency, values
longer than their VR, and every instance accounted for with its UIDs, outcome and warnings."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import uid as uids

from records.models import EventKind, RecordEvent
from studies.index.fhir import human_names, patient_resource_id
from studies.models import Instance, ItemState, Patient, Study, UploadItem, UploadState
from studies.objects.store import storage
from studies.views import StudyOutput
from tests.support import dicomfactory as dcm
from tests.support.indexing import index_now, stored_upload
from tests.support.records_support import validate as fhir_valid
from tests.support.world import World
from tests.unit.test_dicom_generated import person_names, study_moments


def latest(organization_id: int, kind: EventKind, **match: str) -> dict[str, Any]:
    event = RecordEvent.objects.filter(organization_id=organization_id, kind=kind, **match).order_by("-seq").first()
    assert event is not None and isinstance(event.resource, dict)
    return event.resource


def test_it_indexes_empty_patient_ids_as_one_patient_per_study_without_an_identifier(world: World) -> None:
    acme = world.alice.org
    empty = dcm.make_study(n_series=1, per_series=2, patient_id="", patient_name="Anon^One")
    absent = dcm.make_study(n_series=1, per_series=1, patient_id=None, patient_name="Anon^Two")
    named = dcm.make_study(n_series=1, per_series=1, patient_id="P-9")
    upload = index_now(stored_upload(acme, [*empty, *absent, *named]))

    assert (upload.state, upload.instances_indexed, upload.instances_rejected) == (UploadState.DONE, 4, 0)
    studies = list(Study.objects.filter(organization=acme).select_related("patient").order_by("id"))
    assert len(studies) == 3
    assert len({study.patient_id for study in studies}) == 3  # never merged into one "" patient
    for study in studies[:2]:
        assert study.patient.patient_id == "" and study.patient.study_uid == study.study_uid
        patient = latest(acme.pk, EventKind.PATIENT, resource__id=study_patient_id(study))
        assert "identifier" not in patient  # none invented
        imaging = latest(acme.pk, EventKind.STUDY, study_uid=study.study_uid)
        assert imaging["subject"]["reference"] == f"Patient/{patient['id']}"
    assert Patient.objects.get(organization=acme, patient_id="P-9").study_uid == ""
    items = list(UploadItem.objects.filter(upload=upload).order_by("position"))
    assert [w["code"] for w in items[2].warnings] == ["patient-id-absent"]
    assert [i.warnings for i in (items[0], items[1], items[3])] == [[], [], []]


def study_patient_id(study: Study) -> str:
    return patient_resource_id(study.organization_id, "", study.study_uid)


def test_it_rejects_an_instance_of_another_patient_and_leaves_the_study_untouched(world: World) -> None:
    acme = world.alice.org
    study_uid = uids.generate_uid()
    first = dcm.make_instance(study_uid=study_uid, patient_id="P-1", study_description="Chest")
    index_now(stored_upload(acme, [first]))
    before = Study.objects.get(organization=acme, study_uid=study_uid)

    intruder = dcm.make_instance(study_uid=study_uid, patient_id="P-2", study_description="Knee")
    # Within one batch as well: the first instance of a new study decides its patient.
    other_uid = uids.generate_uid()
    pair = [dcm.make_instance(study_uid=other_uid, patient_id=p) for p in ("P-3", "P-4")]
    upload = index_now(stored_upload(acme, [intruder, *pair]))

    items = list(UploadItem.objects.filter(upload=upload).order_by("position"))
    assert [(i.state, i.reason_code) for i in items] == [
        (ItemState.REJECTED, "patient-mismatch"), (ItemState.INDEXED, ""), (ItemState.REJECTED, "patient-mismatch")
    ]  # fmt: skip
    assert not storage().exists(items[0].object_key)
    after = Study.objects.select_related("patient").get(pk=before.pk)
    assert (after.patient.patient_id, after.description, after.instance_count, after.bytes) == (
        "P-1", "Chest", 1, before.bytes
    )  # fmt: skip
    assert after.last_received == before.last_received
    assert not Patient.objects.filter(organization=acme, patient_id__in=["P-2", "P-4"]).exists()
    assert Study.objects.get(organization=acme, study_uid=other_uid).patient.patient_id == "P-3"


def test_it_names_every_rejected_instance_by_its_uids(world: World) -> None:
    acme = world.alice.org
    study_uid = uids.generate_uid()
    index_now(stored_upload(acme, [dcm.make_instance(study_uid=study_uid, patient_id="P-1")]))
    sent = {
        "1.2.826.1.1": dcm.make_instance(study_uid=study_uid, patient_id="P-2", sop_uid="1.2.826.1.1"),
        "1.2.826.1.2": dcm.make_instance(sop_uid="1.2.826.1.2", series_uid="1..2"),
        "1.2.826.1.3": dcm.make_instance(sop_uid="1.2.826.1.3", accession="A" * 600),
        "1.2.826.1.4": dcm.make_instance(sop_uid="1.2.826.1.4"),
    }
    upload = index_now(stored_upload(acme, list(sent.values())))

    items = list(UploadItem.objects.filter(upload=upload).order_by("position"))
    assert [i.sop_instance_uid for i in items] == list(sent)
    assert [i.reason_code for i in items] == ["patient-mismatch", "invalid-uid", "value-too-long", ""]
    assert items[0].study_instance_uid == study_uid and items[1].series_instance_uid == ""
    assert all(i.study_instance_uid and i.series_instance_uid for i in (items[2], items[3]))
    assert (upload.instances_indexed, upload.instances_rejected) == (1, 3)


def test_it_records_replacement_and_warnings_on_the_item(world: World) -> None:
    acme = world.alice.org
    sop_uid = "1.2.826.02.7"  # a leading zero: accepted, with a warning
    index_now(stored_upload(acme, [dcm.make_instance(sop_uid=sop_uid)]))
    upload = index_now(stored_upload(acme, [dcm.make_instance(sop_uid=sop_uid, accession="RIS-2020-0000001-A")]))

    item = UploadItem.objects.get(upload=upload)
    assert (item.state, item.replaced) == (ItemState.INDEXED, True)
    assert sorted(w["code"] for w in item.warnings) == ["non-conformant-uid", "value-too-long"]
    assert Instance.objects.filter(organization=acme, sop_uid=sop_uid).count() == 1


def test_it_keeps_accession_numbers_longer_than_sh_whole_and_apart(world: World) -> None:
    acme = world.alice.org
    numbers = ["RIS-2020-0000001-A", "RIS-2020-0000001-B"]
    index_now(stored_upload(acme, [dcm.make_instance(accession=number) for number in numbers]))

    assert sorted(Study.objects.filter(organization=acme).values_list("accession_number", flat=True)) == numbers


def person_name_element(charset: str, name: str) -> dict[int, bytes]:
    """(0008,0005) and (0010,0010) encoded by pydicom in ``charset`` (e.g. ISO 2022 IR 87)."""
    return {
        0x00080005: dcm.encoded_element(0x00080005, charset),
        0x00100010: dcm.encoded_element(0x00100010, name, charset=charset),
    }


def test_it_maps_every_person_name_group_to_fhir(world: World) -> None:
    acme = world.alice.org
    data = dcm.make_instance(
        patient_id="P-JP", encoded=person_name_element("\\ISO 2022 IR 87", "=山田^花子=やまだ^はなこ")
    )
    index_now(stored_upload(acme, [data]))

    patient = Patient.objects.get(organization=acme, patient_id="P-JP")
    assert patient.name == "=山田^花子=やまだ^はなこ"
    resource = latest(acme.pk, EventKind.PATIENT, patient_id="P-JP")
    fhir_valid(resource)
    representation = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
    assert [(n["family"], n["given"], n["text"], n["extension"]) for n in resource["name"]] == [
        ("山田", ["花子"], "山田 花子", [{"url": representation, "valueCode": "IDE"}]),
        ("やまだ", ["はなこ"], "やまだ はなこ", [{"url": representation, "valueCode": "SYL"}]),
    ]
    study = latest(acme.pk, EventKind.STUDY, patient_id="P-JP")
    assert study["subject"]["display"] == "山田 花子"


def test_it_maps_dates_times_fractions_and_the_timezone_offset_exactly(world: World) -> None:
    acme = world.alice.org
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "P-TZ": ({"StudyTime": "101530.25", "TimezoneOffsetFromUTC": "+0930"}, "2024-01-02T10:15:30.25+09:30"),
        "P-FR": ({"StudyTime": "235959.000001"}, "2024-01-02T23:59:59.000001+00:00"),
        "P-HH": ({"StudyTime": "07"}, "2024-01-02T07:00:00+00:00"),
        "P-DO": ({"StudyTime": None, "TimezoneOffsetFromUTC": "-0500"}, "2024-01-02"),
    }
    files = [dcm.make_instance(patient_id=patient, **values) for patient, (values, _) in cases.items()]
    index_now(stored_upload(acme, files))

    for patient, (values, started) in cases.items():
        study = Study.objects.get(organization=acme, patient__patient_id=patient)
        resource = latest(acme.pk, EventKind.STUDY, study_uid=study.study_uid)
        fhir_valid(resource)
        assert resource["started"] == started
        assert study.timezone_offset == {"+0930": "+09:30", "-0500": "-05:00"}.get(
            values.get("TimezoneOffsetFromUTC") or "", ""
        )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person_names(), study_moments(), st.sampled_from(["", "A1", "RIS-2020-0000001-A", "X" * 100]))
def test_generated_instances_round_trip_to_the_studies_api_and_fhir(
    world: World, name: tuple[str, str], moment: tuple[dict[str, Any], str | None], accession: str
) -> None:
    acme = world.alice.org
    charset, person_name = name
    elements, started = moment
    encoded = {0x00080005: dcm.encoded_element(0x00080005, charset),
               0x00100010: dcm.encoded_element(0x00100010, person_name, charset=charset)}  # fmt: skip
    study_uid = uids.generate_uid()
    index_now(stored_upload(acme, [dcm.make_instance(study_uid=study_uid, accession=accession, encoded=encoded,
                                                     patient_id=f"P-{study_uid[-12:]}", **elements)]))  # fmt: skip

    study = Study.objects.select_related("patient").get(organization=acme, study_uid=study_uid)
    shown = StudyOutput(study).data
    assert (shown["patient"]["name"], shown["accession_number"]) == (person_name, accession)
    assert started is not None and shown["study_date"] == started[:10]
    resource = latest(acme.pk, EventKind.STUDY, study_uid=study_uid)
    fhir_valid(resource)
    assert resource.get("started") == started
    patient = latest(acme.pk, EventKind.PATIENT, patient_id=study.patient.patient_id)
    fhir_valid(patient)
    assert [n["text"] for n in patient.get("name", [])] == [n["text"] for n in human_names(person_name)]
