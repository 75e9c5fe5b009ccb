"""GET /dicom/uploads/{id} accounts for every instance sent (issue 12, item 8): over real HTTP, a
multipart body with 3 bad instances of 4 lists each instance's UIDs and outcome, and the counts
add up to what was sent."""

from __future__ import annotations

import httpx
from pydicom import uid as uids

from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.indexing import http_upload, stored_upload, wait_indexed
from tests.support.world import World


def test_it_lists_every_instance_with_its_uids_and_outcome(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    study_uid, series_uid = uids.generate_uid(), uids.generate_uid()
    kept = make_instance(study_uid=study_uid, series_uid=series_uid, sop_uid="1.2.826.9.1", patient_id="P-1")
    wait_indexed(http_upload(api, world.bob, [kept]))
    sent = [
        make_instance(study_uid=study_uid, series_uid=series_uid, sop_uid="1.2.826.9.1", patient_id="P-1"),  # again
        make_instance(study_uid=study_uid, sop_uid="1.2.826.9.2", patient_id="P-2"),
        make_instance(sop_uid="1.2.826.9.3", series_uid="1.2.x"),
        make_instance(sop_uid="1.2.826.9.4", study_description="D" * 600),
        make_instance(sop_uid="1.2.826.09.5", accession="RIS-2020-0000001-A"),
    ]
    request_id = http_upload(api, world.bob, sent)
    wait_indexed(request_id)

    body = api.get(f"/dicom/uploads/{request_id}", headers=world.bob.headers).json()

    instances = body["instances"]
    assert [i["position"] for i in instances] == list(range(len(sent)))
    assert [i["sop_instance_uid"] for i in instances] == [
        "1.2.826.9.1", "1.2.826.9.2", "1.2.826.9.3", "1.2.826.9.4", "1.2.826.09.5"
    ]  # fmt: skip
    assert [(i["outcome"], i["reason_code"]) for i in instances] == [
        ("replaced", ""), ("rejected", "patient-mismatch"), ("rejected", "invalid-uid"),
        ("rejected", "value-too-long"), ("indexed", ""),
    ]  # fmt: skip
    assert (instances[0]["study_instance_uid"], instances[0]["series_instance_uid"]) == (study_uid, series_uid)
    assert instances[1]["study_instance_uid"] == study_uid
    assert sorted(w["code"] for w in instances[4]["warnings"]) == ["non-conformant-uid", "value-too-long"]
    assert all(i["reason"] for i in instances[1:4])
    assert body["instances_accepted"] == len(sent) == len(instances)
    assert body["instances_indexed"] + body["instances_rejected"] == len(sent)
    assert (body["instances_indexed"], body["instances_rejected"]) == (2, 3)
    assert [r["sop_instance_uid"] for r in body["rejections"]] == ["1.2.826.9.2", "1.2.826.9.3", "1.2.826.9.4"]


def test_it_lists_instances_only_once_the_upload_is_finished(api: httpx.Client, world: World) -> None:
    # Stored as ingest stores it but never queued, so it stays in progress while asked.
    request_id = str(stored_upload(world.bob.org, [make_instance(), make_instance()]).pk)

    body = api.get(f"/dicom/uploads/{request_id}", headers=world.bob.headers).json()

    assert (body["state"], body["instances_accepted"], body["instances"], body["rejections"]) == ("queued", 2, None, [])
