"""POST /dicom/stream with one Part-10 instance: stored as it arrives, preamble zeroed, queued."""

from __future__ import annotations

import io
import uuid

import httpx

from dicom.part10 import file_meta_read
from studies.models import Upload, UploadItem, UploadState
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import digest_header, objects_dir, pieces, post, sha, stored
from tests.support.world import World

QUEUED_OR_LATER = {UploadState.QUEUED, UploadState.INDEXING, UploadState.DONE, UploadState.FAILED}


def test_it_stores_a_single_instance_and_queues_it(api: httpx.Client, world: World, child_env) -> None:
    instance = make_instance(pixel_bytes=300_000)
    request_id = str(uuid.uuid4())
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}

    response = post(api, instance, {**headers, "Content-Digest": digest_header(instance)})

    assert response.status_code == 202, response.text
    status_url = f"/api/v2/dicom/uploads/{request_id}"
    assert response.json() == {
        "request_id": request_id,
        "state": "queued",
        "bytes_received": len(instance),
        "sha256": sha(instance),
        "instances_accepted": 1,
        "links": {"status": {"href": status_url}},
    }
    assert response.headers["location"] == status_url
    upload = Upload.objects.get(pk=request_id)
    assert upload.organization == world.bob.org and upload.api_key == world.bob.key
    assert upload.state in QUEUED_OR_LATER
    assert (upload.bytes_received, upload.sha256, upload.instances_received) == (len(instance), sha(instance), 1)
    item = UploadItem.objects.get(upload=upload)
    key = f"uploads/{world.bob.org.pk}/{request_id}/000000.dcm"
    assert (item.position, item.object_key, item.size, item.sha256) == (0, key, len(instance), sha(instance))
    assert (objects_dir(child_env) / key).read_bytes() == instance


def test_it_zeroes_an_executable_preamble(api: httpx.Client, world: World, child_env) -> None:
    clean = make_instance()
    polyglot = b"MZ\x90\x00" + b"\xcc" * 124 + clean[128:]  # CVE-2019-11687: a PE header in the preamble
    headers = {**world.bob.headers, "Content-Type": "application/octet-stream"}

    response = post(api, pieces(polyglot, 100), headers)  # Transfer-Encoding: chunked, tiny pieces

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["bytes_received"] == len(polyglot) and body["sha256"] == sha(clean)
    (path,) = stored(child_env, f"uploads/{world.bob.org.pk}/{body['request_id']}")
    assert path.read_bytes() == clean


def test_it_replays_a_completed_request_id_and_stores_nothing_twice(api: httpx.Client, world: World, child_env) -> None:
    instance = make_instance()
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": str(uuid.uuid4())}
    first = post(api, instance, headers)
    assert first.status_code == 202

    again = post(api, instance, headers)  # same id, same payload: the earlier result

    assert again.status_code == 202
    assert {k: v for k, v in again.json().items() if k != "state"} == {
        k: v for k, v in first.json().items() if k != "state"
    }
    assert Upload.objects.filter(pk=headers["X-Request-Id"]).count() == 1
    assert UploadItem.objects.filter(upload_id=headers["X-Request-Id"]).count() == 1
    (path,) = stored(child_env, f"uploads/{world.bob.org.pk}/{headers['X-Request-Id']}")
    assert path.read_bytes() == instance


def test_it_shows_the_upload_to_its_organization_only(api: httpx.Client, world: World) -> None:
    response = post(api, make_instance(), {**world.bob.headers, "Content-Type": "application/dicom"})
    request_id = response.json()["request_id"]

    mine = api.get(f"/dicom/uploads/{request_id}", headers=world.alice.headers)
    theirs = api.get(f"/dicom/uploads/{request_id}", headers=world.carol.headers)

    assert mine.status_code == 200
    assert mine.json()["request_id"] == request_id and mine.json()["instances_accepted"] == 1
    assert theirs.status_code == 404 and theirs.headers["content-type"] == "application/problem+json"


def test_it_gives_a_fresh_id_when_another_organization_used_the_request_id(
    api: httpx.Client, world: World, child_env
) -> None:
    request_id = str(uuid.uuid4())
    acme_instance, globex_instance = make_instance(patient_id="A-1"), make_instance(patient_id="G-1")
    acme = post(
        api, acme_instance, {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}
    )

    globex = post(
        api, globex_instance, {**world.carol.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}
    )

    assert (acme.status_code, globex.status_code) == (202, 202)  # not 409: nothing says the id is taken
    fresh = globex.json()["request_id"]
    assert fresh != request_id and globex.json()["sha256"] == sha(globex_instance)
    assert Upload.objects.get(pk=request_id).organization == world.bob.org
    assert Upload.objects.get(pk=fresh).organization == world.carol.org
    (path,) = stored(child_env, f"uploads/{world.carol.org.pk}/{fresh}")
    assert path.read_bytes() == globex_instance


def test_it_keeps_the_file_meta_it_read_so_indexing_does_not_read_it_again(api: httpx.Client, world: World) -> None:
    instance = make_instance(sop_uid="1.2.826.0.1.3680043.10.511.9")
    request_id = str(uuid.uuid4())
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}

    assert post(api, instance, headers).status_code == 202

    item = UploadItem.objects.get(upload_id=request_id)
    meta = file_meta_read(io.BytesIO(instance))
    assert (item.transfer_syntax_uid, item.media_storage_sop_class_uid, item.media_storage_sop_instance_uid) == (
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.826.0.1.3680043.10.511.9",
    )
    assert item.data_set_offset == meta.end and instance[meta.end : meta.end + 2] == b"\x08\x00"
