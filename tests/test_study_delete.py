"""`DELETE /studies/{uid}`: admin only, rows and bytes gone, crash-safe, audited every time."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pydicom
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from pydicom.filebase import DicomBytesIO

from accounts.audit.log import Actor, audit_verify
from accounts.models import AuditEntry
from core.errors import ApiError
from records.models import EventKind, RecordEvent
from studies.index.services import upload_index_begin, upload_index_part
from studies.models import Instance, Patient, PendingObjectDeletion, Series, Study, UploadItem
from studies.objects import deletion
from studies.objects.deletion import pending_objects_sweep
from studies.objects.store import storage
from studies.services import study_delete
from tests.support import dicomfactory as dcm
from tests.support import live
from tests.support.indexing import child_storage, http_upload, index_now, stored_upload, wait_indexed
from tests.support.world import World


def actor(world: World) -> Actor:
    return Actor(organization=world.alice.org, key=world.alice.key, request_id=str(uuid.uuid4()))


def test_it_deletes_rows_bytes_and_records_an_audit_entry(
    api: httpx.Client, world: World, indexer: live.Process | None, run_dir: Path
) -> None:
    doomed = dcm.make_study(n_series=2, per_series=3, patient_id="DEL-1")
    kept = dcm.make_study(n_series=1, per_series=2, patient_id="DEL-1")
    upload = wait_indexed(http_upload(api, world.bob, doomed + kept))
    study_uid = Instance.objects.get(sop_uid=_sop(doomed[0])).series.study.study_uid
    other_uid = next(uid for uid in upload.study_uids if uid != study_uid)
    store = child_storage(run_dir)
    doomed_keys = list(Instance.objects.filter(series__study__study_uid=study_uid).values_list("object_key", flat=True))
    assert len(doomed_keys) == 6 and all(store.exists(k) for k in doomed_keys)

    request_id = str(uuid.uuid4())
    headers = {**world.alice.headers, "X-Request-Id": request_id, "User-Agent": "pacs-cleanup/1.0"}
    response = api.delete(f"/studies/{study_uid}", headers=headers)

    assert response.status_code == 200, response.text
    removed = sum(map(len, doomed))
    assert response.json() == {"study_uid": study_uid, "patient_id": "DEL-1", "series_count": 2,
                               "instance_count": 6, "bytes": removed}  # fmt: skip
    for path in (f"/studies/{study_uid}", f"/studies/{study_uid}/series"):
        assert api.get(path, headers=world.alice.headers).status_code == 404
    assert api.delete(f"/studies/{study_uid}", headers=world.alice.headers).status_code == 404
    listed = [s["study_uid"] for s in api.get("/studies", headers=world.alice.headers).json()["results"]]
    assert listed == [other_uid]
    assert not Study.objects.filter(study_uid=study_uid).exists()
    assert not Series.objects.filter(study__study_uid=study_uid).exists()
    assert Instance.objects.filter(organization=world.alice.org).count() == 2
    assert Patient.objects.filter(patient_id="DEL-1").exists()  # the other study still has them
    assert not any(store.exists(k) for k in doomed_keys)
    assert all(store.exists(i.object_key) for i in Instance.objects.all())
    assert not PendingObjectDeletion.objects.exists()
    assert RecordEvent.objects.filter(kind=EventKind.DELETED, study_uid=study_uid).count() == 1

    entry = AuditEntry.objects.get(request_id=request_id)
    assert (entry.action, entry.outcome, entry.status_code) == ("study.delete", "success", 200)
    assert (entry.organization_id_value, entry.organization_slug) == (world.alice.org.pk, "acme")
    assert (entry.key_id, entry.key_prefix, entry.key_role) == (world.alice.key.pk, world.alice.key.prefix, "admin")
    assert world.alice.token not in str(entry.__dict__)
    assert (entry.client_address, entry.user_agent) == ("127.0.0.1", "pacs-cleanup/1.0")
    assert (entry.study_uid, entry.patient_id) == (study_uid, "DEL-1")
    assert (entry.series_count, entry.instance_count, entry.bytes) == (2, 6, removed)
    assert audit_verify() is None
    call_command("verify_audit_log")


def test_it_refuses_a_standard_key_and_audits_the_refusal(api: httpx.Client, world: World) -> None:
    study = _indexed(world)
    request_id = str(uuid.uuid4())
    response = api.delete(f"/studies/{study.study_uid}", headers={**world.bob.headers, "X-Request-Id": request_id})

    assert response.status_code == 403
    assert Study.objects.filter(pk=study.pk).exists()
    entry = AuditEntry.objects.get(request_id=request_id)
    assert (entry.outcome, entry.status_code, entry.key_prefix) == ("forbidden", 403, world.bob.key.prefix)
    assert entry.study_uid == study.study_uid and entry.instance_count == 0
    assert audit_verify() is None


def test_it_audits_deletes_of_unknown_other_tenants_and_malformed_studies(api: httpx.Client, world: World) -> None:
    theirs = _indexed(world, org=world.carol.org)
    # "1.2.03" breaks PS3.5 §9.1 but the one UID rule accepts it: unknown, not malformed.
    cases = {
        theirs.study_uid: (404, "not-found"),
        "1.2.3.4.5": (404, "not-found"),
        "1..2": (400, "invalid"),
        "1.2.03": (404, "not-found"),
    }
    for uid, (status, outcome) in cases.items():
        request_id = str(uuid.uuid4())
        response = api.delete(f"/studies/{uid}", headers={**world.alice.headers, "X-Request-Id": request_id})
        assert response.status_code == status
        entry = AuditEntry.objects.get(request_id=request_id)
        assert (entry.outcome, entry.status_code, entry.organization_slug) == (outcome, status, "acme")
    assert Study.objects.filter(pk=theirs.pk).exists()
    assert AuditEntry.objects.count() == len(cases) and audit_verify() is None


def test_it_finishes_a_deletion_interrupted_between_commit_and_unlink(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _indexed(world)
    keys = list(Instance.objects.filter(series__study=study).values_list("object_key", flat=True))
    monkeypatch.setattr(deletion, "objects_purge", lambda *, keys: None)  # the process died here
    study_delete(actor=actor(world), study_uid=study.study_uid)
    assert not Instance.objects.filter(object_key__in=keys).exists()
    assert set(PendingObjectDeletion.objects.values_list("object_key", flat=True)) == set(keys)
    assert all(storage().exists(k) for k in keys)
    monkeypatch.undo()

    assert pending_objects_sweep(older_than=timedelta(0)) == len(keys)
    assert not any(storage().exists(k) for k in keys)
    assert not PendingObjectDeletion.objects.exists()


def test_it_starts_a_new_study_when_indexing_follows_a_delete(world: World) -> None:
    acme = world.alice.org
    first = dcm.make_study(n_series=1, per_series=3)
    study_uid = _study_uid(first[0])
    index_now(stored_upload(acme, first))
    late = stored_upload(acme, dcm.make_study(n_series=1, per_series=2, study_uid=study_uid))
    study_delete(actor=actor(world), study_uid=study_uid)
    index_now(late)

    study = Study.objects.get(organization=acme, study_uid=study_uid)
    assert (study.instance_count, study.series_count) == (2, 1)
    assert Instance.objects.filter(organization=acme).count() == 2


def test_it_races_cleanly_with_a_concurrent_indexing_of_the_same_study(world: World) -> None:
    acme = world.alice.org
    base = dcm.make_study(n_series=2, per_series=10)
    study_uid = _study_uid(base[0])
    index_now(stored_upload(acme, base))
    more = stored_upload(acme, dcm.make_study(n_series=2, per_series=60, study_uid=study_uid, pixel_bytes=256))
    errors: list[BaseException] = []

    def run(fn) -> None:  # type: ignore[no-untyped-def]
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def index() -> None:
        for start, stop in upload_index_begin(upload_id=str(more.pk)):
            upload_index_part(upload_id=str(more.pk), start=start, stop=stop)

    threads = [
        threading.Thread(target=run, args=(index,)),
        threading.Thread(target=run, args=(lambda: study_delete(actor=actor(world), study_uid=study_uid),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors

    # Whatever the interleaving: rows and bytes agree, and the counts are exact.
    live_keys = set(Instance.objects.values_list("object_key", flat=True))
    all_keys = set(UploadItem.objects.values_list("object_key", flat=True))
    assert all(storage().exists(k) for k in live_keys)
    assert not any(storage().exists(k) for k in all_keys - live_keys)
    for study in Study.objects.all():
        rows = Instance.objects.filter(series__study=study)
        assert study.instance_count == rows.count() > 0
        assert study.bytes == rows.aggregate(total=Sum("size"))["total"]
    assert not PendingObjectDeletion.objects.exists()


def _indexed(world: World, org=None) -> Study:  # type: ignore[no-untyped-def]
    upload = index_now(stored_upload(org or world.alice.org, dcm.make_study(n_series=1, per_series=2)))
    return Study.objects.get(study_uid=upload.study_uids[0], organization=org or world.alice.org)


def _sop(data: bytes) -> str:
    return str(pydicom.dcmread(DicomBytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def _study_uid(data: bytes) -> str:
    return str(pydicom.dcmread(DicomBytesIO(data), stop_before_pixels=True).StudyInstanceUID)


def test_it_refuses_and_audits_a_delete_by_a_standard_key_in_the_service_itself(world: World) -> None:
    study = _indexed(world)
    standard = Actor(organization=world.bob.org, key=world.bob.key, request_id=str(uuid.uuid4()))

    with pytest.raises(ApiError) as refused:
        study_delete(actor=standard, study_uid=study.study_uid)

    assert refused.value.status == 403
    assert Study.objects.filter(pk=study.pk).exists()
    entry = AuditEntry.objects.get(request_id=standard.request_id)
    assert (entry.outcome, entry.status_code, entry.study_uid) == ("forbidden", 403, study.study_uid)
