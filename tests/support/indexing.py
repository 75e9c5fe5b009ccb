"""Helpers for the indexing tests: stored uploads (rows + objects, as ingest leaves them),
real HTTP uploads, running the indexer in-process, and bounded waiting."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from django.db import connection

from accounts.models import Organization
from dicom.part10 import NotDicom, file_meta_read
from studies.index.services import upload_index_begin, upload_index_part, uploads_index_queued
from studies.models import Upload, UploadItem, UploadState
from studies.objects.local import LocalStorage
from studies.objects.storage import Storage
from studies.objects.store import storage
from tests.support.multipart import build_multipart
from tests.support.world import Party

BOUNDARY = "pzm-index-test-boundary"
T = TypeVar("T")


def stored_upload(organization: Organization, instances: list[bytes], store: Storage | None = None) -> Upload:
    """A `queued` upload whose instances are stored under the ingest key scheme, with the File
    Meta group ingest keeps (left blank where ingest would not have read one, as for an item
    stored before ingest kept it)."""
    store = store or storage()
    upload = Upload.objects.create(
        organization=organization, content_type="application/dicom+stream", state=UploadState.QUEUED,
        instances_received=len(instances), bytes_received=sum(map(len, instances)),
    )  # fmt: skip
    for position, data in enumerate(instances):
        key = f"uploads/{organization.pk}/{upload.pk}/{position:06d}.dcm"
        writer = store.writer(key)
        writer.write(data)
        writer.commit()
        UploadItem.objects.create(
            upload=upload,
            position=position,
            object_key=key,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            **file_meta_fields(data),
        )
    return upload


def file_meta_fields(data: bytes) -> dict[str, object]:
    """The UploadItem columns ingest fills from an instance's File Meta group (none when ingest
    would not have read one)."""
    try:
        return UploadItem.file_meta_columns(file_meta_read(io.BytesIO(data)))
    except NotDicom:
        return {}


def index_now(upload: Upload) -> Upload:
    """Run the indexing here, in order (what the tasks do, without a broker): one batch for a
    small upload, else every part."""
    _index_parts(str(upload.pk))
    upload.refresh_from_db()
    return upload


def index_concurrently(uploads: list[Upload]) -> list[BaseException]:
    """Index each upload on a thread of its own, all at once; what any of them raised."""
    errors: list[BaseException] = []

    def run(upload_id: str) -> None:
        try:
            _index_parts(upload_id)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(str(upload.pk),)) for upload in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def _index_parts(upload_id: str) -> None:
    if uploads_index_queued(upload_id=upload_id):  # a small upload: one batch
        return
    for start, stop in upload_index_begin(upload_id=upload_id):
        upload_index_part(upload_id=upload_id, start=start, stop=stop)


def http_upload(api: httpx.Client, party: Party, instances: list[bytes]) -> str:
    """POST the instances as one dicom+stream body; the upload (request) id."""
    request_id = str(uuid.uuid4())
    response = api.post(
        "/dicom/stream",
        content=build_multipart(instances, BOUNDARY),
        headers={
            **party.headers,
            "Content-Type": f'application/dicom+stream; boundary="{BOUNDARY}"',
            "X-Request-Id": request_id,
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["instances_accepted"] == len(instances)
    return request_id


def wait_for(condition: Callable[[], T | None], timeout: float = 60, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_indexed(upload_id: str, timeout: float = 60) -> Upload:
    return wait_for(
        lambda: Upload.objects.filter(pk=upload_id, state__in=[UploadState.DONE, UploadState.FAILED]).first(),
        timeout,
        f"upload {upload_id} to be indexed",
    )


def child_storage(run_dir: Path) -> LocalStorage:
    """The object store of the servers and workers the tests start (their PRIZMED_DATA_DIR)."""
    return LocalStorage(run_dir / "data" / "objects")
