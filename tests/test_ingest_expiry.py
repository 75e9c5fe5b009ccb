"""Idle streams expire and free their chunks; uploads whose process died are removed; the
upload status shows rejections the indexer recorded."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from studies.ingest.expiry import ingest_expire
from studies.ingest.tasks import expire_streams
from studies.models import ItemState, Stream, StreamState, Upload, UploadItem
from studies.objects.store import storage
from tests.support.dicomfactory import make_instance
from tests.support.indexing import stored_upload
from tests.support.ingest_support import objects_dir, partials, stored
from tests.support.world import World
from tests.test_auth import assert_problem
from tests.test_ingest_streams import send_chunk


@pytest.fixture
def server_storage(child_env) -> Iterator[Path]:
    """Point this process's storage at the servers' store, so services run here see their files."""
    saved = settings.PRIZMED_STORAGE_DIR
    settings.PRIZMED_STORAGE_DIR = objects_dir(child_env)
    storage.cache_clear()
    yield objects_dir(child_env)
    settings.PRIZMED_STORAGE_DIR = saved
    storage.cache_clear()


def test_it_expires_idle_streams_and_frees_their_chunks(
    api: httpx.Client, world: World, child_env, server_storage
) -> None:
    instance = make_instance()
    assert send_chunk(api, world.bob.headers, "idle", 0, instance[:300]).status_code == 202
    assert send_chunk(api, world.bob.headers, "fresh", 0, instance[:300]).status_code == 202
    Stream.objects.filter(stream_id="idle").update(
        updated=timezone.now() - timedelta(seconds=settings.PRIZMED_STREAM_TTL + 1)
    )
    idle, fresh = Stream.objects.get(stream_id="idle"), Stream.objects.get(stream_id="fresh")

    expire_streams()  # the periodic job (CELERY_BEAT_SCHEDULE)

    idle.refresh_from_db()
    fresh.refresh_from_db()
    assert (idle.state, fresh.state) == (StreamState.EXPIRED, StreamState.OPEN)
    assert not stored(child_env, f"streams/{world.bob.org.pk}/{idle.pk}")
    assert stored(child_env, f"streams/{world.bob.org.pk}/{fresh.pk}")
    assert api.get("/dicom/streams/idle", headers=world.bob.headers).json()["state"] == "expired"
    assert_problem(send_chunk(api, world.bob.headers, "idle", 1, instance[300:], last=True), 409)
    assert ingest_expire() == (0, 0, 0)  # nothing more to do: the job is idempotent


def test_it_removes_uploads_left_receiving_by_a_dead_process(world: World, child_env, server_storage) -> None:
    upload = Upload.objects.create(id=uuid.uuid4(), organization=world.bob.org, content_type="application/dicom")
    key = f"uploads/{world.bob.org.pk}/{upload.pk}/000000.dcm"
    writer = storage().writer(key)
    writer.write(b"half an instance")
    writer.commit()
    stale = timezone.now() + timedelta(seconds=settings.PRIZMED_STREAM_TTL + 1)

    assert ingest_expire(now=stale) == (0, 1, 0)

    assert not Upload.objects.filter(pk=upload.pk).exists()
    assert not stored(child_env, f"uploads/{world.bob.org.pk}/{upload.pk}")


def test_it_shows_rejections_and_study_uids(api: httpx.Client, world: World) -> None:
    # Stored as ingest stores it but never queued: an uploaded one could be indexed by the
    # server's task thread while this test writes the outcome below (a race it once lost).
    request_id = str(stored_upload(world.bob.org, [make_instance()]).pk)
    # What the indexer records (studies/index/services.py), written here so the view is tested alone.
    Upload.objects.filter(pk=request_id).update(state="done", instances_rejected=1, study_uids=["1.2.3"])
    UploadItem.objects.filter(upload_id=request_id).update(
        state=ItemState.REJECTED, reason_code="missing-patient-id", reason="no Patient ID", sop_instance_uid="1.2.3.4"
    )

    body = api.get(f"/dicom/uploads/{request_id}", headers=world.bob.headers).json()

    assert body["state"] == "done" and body["study_uids"] == ["1.2.3"]
    assert body["instances_accepted"] == 1 and body["instances_rejected"] == 1
    assert body["rejections"] == [
        {"position": 0, "sop_instance_uid": "1.2.3.4", "reason_code": "missing-patient-id", "reason": "no Patient ID"}
    ]


def test_it_removes_temp_files_a_killed_process_left(world: World, child_env, server_storage) -> None:
    storage().writer("uploads/x/dead.dcm").write(b"never committed: its process was killed")
    [dead_file] = partials(child_env)
    long_ago = time.time() - settings.PRIZMED_STREAM_TTL - 60
    os.utime(dead_file, (long_ago, long_ago))
    alive = storage().writer("uploads/x/alive.dcm")
    alive.write(b"still being written")

    assert ingest_expire() == (0, 0, 1)

    assert not dead_file.exists()
    alive.write(b", and finished")
    alive.commit()
    assert storage().open("uploads/x/alive.dcm").read() == b"still being written, and finished"
