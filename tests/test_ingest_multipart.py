"""POST /dicom/stream with application/dicom+stream: many instances, one object each."""

from __future__ import annotations

import hashlib

import httpx

from studies.models import Upload, UploadItem
from tests.support.dicomfactory import make_instance, make_study
from tests.support.ingest_support import BOUNDARY, objects_dir, pieces, post, sha
from tests.support.multipart import build_multipart
from tests.support.world import World


def test_it_stores_fifty_instances_of_a_multipart_stream(api: httpx.Client, world: World, child_env) -> None:
    instances = make_study(n_series=5, per_series=10, pixel_bytes=20_000)
    body = build_multipart(instances, BOUNDARY)
    headers = {**world.bob.headers, "Content-Type": f'application/dicom+stream; boundary="{BOUNDARY}"'}

    response = post(api, pieces(body, 64 * 1024), headers)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["instances_accepted"] == 50 and answer["bytes_received"] == len(body)
    assert answer["sha256"] == sha(b"".join(instances))  # the stored bytes: the instances, in order
    upload = Upload.objects.get(pk=answer["request_id"])
    assert upload.instances_received == 50 and upload.content_type == headers["Content-Type"].replace("'", '"')
    items = list(UploadItem.objects.filter(upload=upload).order_by("position"))
    assert [i.position for i in items] == list(range(50))
    for item, instance in zip(items, instances, strict=True):
        assert item.object_key == f"uploads/{world.bob.org.pk}/{upload.pk}/{item.position:06d}.dcm"
        assert (item.size, item.sha256) == (len(instance), sha(instance))
        assert (objects_dir(child_env) / item.object_key).read_bytes() == instance


def test_it_tolerates_what_real_clients_send(api: httpx.Client, world: World, child_env) -> None:
    instances = [make_instance(), make_instance()]
    dash = f"--{BOUNDARY}".encode()
    # No part headers at all, a preamble, transport padding after the boundary, an epilogue.
    body = b"".join(
        [
            b"ignored preamble\r\n",
            dash + b"  \r\n\r\n",
            instances[0],
            b"\r\n" + dash + b"\r\nContent-Type: application/dicom; transfer-syntax=*\r\n\r\n",
            instances[1],
            b"\r\n" + dash + b"--\r\nepilogue",
        ]
    )
    headers = {**world.bob.headers, "Content-Type": f"Application/DICOM+Stream ; Boundary = {BOUNDARY}"}

    response = post(api, body, headers)

    assert response.status_code == 202, response.text
    assert response.json()["instances_accepted"] == 2
    digest = hashlib.sha256(b"".join(instances)).hexdigest()
    assert Upload.objects.get(pk=response.json()["request_id"]).sha256 == digest
