"""Upload over HTTP → indexed by the real task runner → the API shows what pydicom reads.

In the embedded run (no Redis) the server indexes on its own background thread; in the
services run a real `celery worker` process does it, through the same task code.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import redis
from django.conf import settings
from django.utils import timezone

from outbox.models import OutboxTask
from studies.index.recovery import uploads_stalled_claim
from studies.index.tasks import index_stalled
from studies.models import Instance, ItemState, Study, Upload, UploadItem, UploadState
from tests.support import dicomfactory as dcm
from tests.support import live
from tests.support.indexing import child_storage, http_upload, wait_for, wait_indexed
from tests.support.world import World


def expected_studies(files: list[bytes]) -> dict[str, dict[str, Any]]:
    """Study and series metadata as pydicom reads the files (a re-sent SOP Instance UID
    replaces the earlier copy, as the indexer does)."""
    latest: dict[str, tuple[Any, int]] = {}
    for data in files:
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
        latest[ds.SOPInstanceUID] = (ds, len(data))
    studies: dict[str, dict[str, Any]] = {}
    for ds, size in latest.values():
        study = studies.setdefault(ds.StudyInstanceUID, {"ds": ds, "series": {}, "bytes": 0, "instances": 0})
        study["bytes"] += size
        study["instances"] += 1
        series = study["series"].setdefault(
            ds.SeriesInstanceUID,
            {
                "series_uid": ds.SeriesInstanceUID,
                "number": int(ds.SeriesNumber) if ds.get("SeriesNumber") not in (None, "") else None,
                "modality": ds.get("Modality", ""),
                "description": ds.get("SeriesDescription", ""),
                "body_part": ds.get("BodyPartExamined", ""),
                "instance_count": 0,
                "bytes": 0,
            },
        )
        series["instance_count"] += 1
        series["bytes"] += size
    return studies


def dicom_date(value: str) -> str | None:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if value else None


def test_it_indexes_real_and_synthetic_studies_as_pydicom_reads_them(
    api: httpx.Client, world: World, indexer: live.Process | None, run_dir: Path
) -> None:
    files = [path.read_bytes() for path in dcm.pydicom_testfiles()]
    files += dcm.make_study(n_series=3, per_series=4, patient_id="SYN-1", patient_name="Roe^Ann", modality="MR",
                            study_description="Brain", series_description="T1", accession="A-77")  # fmt: skip
    files += dcm.make_study(n_series=2, per_series=2, patient_id="SYN-2", modality="CT", body_part="HEAD")
    upload_id = http_upload(api, world.bob, files)
    upload = wait_indexed(upload_id)

    assert upload.state == UploadState.DONE, upload.error
    assert upload.instances_indexed == len(files) and upload.instances_rejected == 0
    expected = expected_studies(files)
    assert sorted(upload.study_uids) == sorted(expected)
    for study_uid, want in expected.items():
        ds = want["ds"]
        body = api.get(f"/studies/{study_uid}", headers=world.bob.headers).json()
        assert body["patient"]["patient_id"] == ds.PatientID
        assert body["patient"]["name"] == str(ds.get("PatientName", ""))
        assert body["study_date"] == dicom_date(ds.get("StudyDate", ""))
        assert body["accession_number"] == ds.get("AccessionNumber", "")
        assert body["description"] == ds.get("StudyDescription", "")
        assert body["instance_count"] == want["instances"] and body["bytes"] == want["bytes"]
        series_want = want["series"]
        assert body["series_count"] == len(series_want)
        assert body["modalities"] == sorted({s["modality"] for s in series_want.values() if s["modality"]})
        listed = api.get(f"/studies/{study_uid}/series", headers=world.bob.headers).json()["series"]
        got = {s["series_uid"]: {k: v for k, v in s.items() if k != "storage_location"} for s in listed}
        assert got == series_want
        assert all(s["storage_location"].startswith("file://prizmed/uploads/") for s in listed)

    store = child_storage(run_dir)
    for item in UploadItem.objects.filter(upload_id=upload_id):
        assert item.state == ItemState.INDEXED
    for instance in Instance.objects.filter(organization=world.bob.org):
        with store.open(instance.object_key) as fp:
            assert pydicom.dcmread(fp, stop_before_pixels=True).SOPInstanceUID == instance.sop_uid


@pytest.mark.services
def test_it_indexes_every_instance_exactly_once_after_a_worker_is_killed(
    api: httpx.Client, world: World, child_env: dict[str, str], run_dir: Path
) -> None:
    quick = {"CELERY_VISIBILITY_TIMEOUT": "3"}  # Redis redelivers the lost task after 3 s
    first = live.worker_start(child_env, run_dir, **quick)
    files = dcm.make_study(n_series=4, per_series=150, pixel_bytes=20_000)
    upload_id = http_upload(api, world.bob, files)
    wait_for(
        lambda: Upload.objects.filter(pk=upload_id, state=UploadState.INDEXING, instances_indexed__gt=0).exists(),
        what="indexing to start",
    )
    first.kill()  # SIGKILL: no chance to ack, clean up or finish the batch
    assert Upload.objects.get(pk=upload_id).instances_indexed < len(files)
    # Redis hands the unacknowledged task out again once it is older than the visibility
    # timeout; a worker started after that restores it on its first poll.
    time.sleep(int(quick["CELERY_VISIBILITY_TIMEOUT"]) + 0.5)

    second = live.worker_start(child_env, run_dir, **quick)
    try:
        upload = wait_indexed(upload_id, timeout=120)
    finally:
        second.stop()
    assert upload.state == UploadState.DONE
    assert (upload.instances_indexed, upload.instances_rejected) == (len(files), 0)
    assert Instance.objects.filter(organization=world.bob.org).count() == len(files)
    study = Study.objects.get(organization=world.bob.org)
    assert (study.instance_count, study.series_count, study.bytes) == (len(files), 4, sum(map(len, files)))
    sops = Instance.objects.values_list("sop_uid", flat=True)
    assert len(set(sops)) == len(files)
    positions = UploadItem.objects.filter(upload_id=upload_id, state=ItemState.INDEXED).values_list("position")
    assert sorted(p for (p,) in positions) == list(itertools.islice(itertools.count(), len(files)))


@pytest.mark.services
def test_an_upload_whose_task_the_broker_lost_is_indexed_by_the_stall_sweep(
    api: httpx.Client, world: World, child_env: dict[str, str], run_dir: Path
) -> None:
    files = dcm.make_study(n_series=1, per_series=3)
    upload_id = http_upload(api, world.bob, files)  # no worker yet: its task waits in the broker
    wait_for(lambda: not OutboxTask.objects.exists() or None, what="the task handed to the broker")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = f"{settings.NAMESPACE}:{settings.CELERY_TASK_DEFAULT_QUEUE}"
    assert broker.llen(queue) == 1
    broker.delete(queue)  # the broker restarted without persistence: the acknowledged upload's task is gone
    worker = live.worker_start(child_env, run_dir)
    try:
        time.sleep(1)
        assert Upload.objects.get(pk=upload_id).state == UploadState.QUEUED  # nothing moves it on
        assert index_stalled() == 0  # not stalled yet: moved less than INDEX_STALL_SECONDS ago
        stalled_since = timezone.now() - timedelta(seconds=settings.INDEX_STALL_SECONDS + 1)
        Upload.objects.filter(pk=upload_id).update(updated=stalled_since)
        assert index_stalled() == 1
        assert index_stalled() == 0  # sent again once per stall window, not at every sweep
        upload = wait_indexed(upload_id)
    finally:
        worker.stop()
    assert upload.state == UploadState.DONE and upload.instances_indexed == len(files)


def test_the_stall_sweep_claims_only_uploads_no_indexing_moved(world: World) -> None:
    old = timezone.now() - timedelta(hours=1)
    rows = {
        state: Upload.objects.create(organization=world.bob.org, content_type="application/dicom", state=state)
        for state in (UploadState.QUEUED, UploadState.INDEXING, UploadState.DONE, UploadState.RECEIVING)
    }
    Upload.objects.filter(pk__in=[u.pk for u in rows.values()]).update(updated=old)
    fresh = Upload.objects.create(
        organization=world.bob.org, content_type="application/dicom", state=UploadState.QUEUED
    )
    claimed = uploads_stalled_claim(before=timezone.now() - timedelta(minutes=10))
    assert sorted(claimed) == sorted(str(rows[state].pk) for state in (UploadState.QUEUED, UploadState.INDEXING))
    assert Upload.objects.get(pk=rows[UploadState.QUEUED].pk).updated > old  # once per stall window
    assert uploads_stalled_claim(before=timezone.now() - timedelta(minutes=10)) == []
    assert str(fresh.pk) not in claimed
