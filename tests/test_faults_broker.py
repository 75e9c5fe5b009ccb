"""Issue 10 item 1: a broker outage at upload completion delays indexing, never loses it.

A private Redis (broker, cache and channel layer of a live uvicorn and a real Celery worker with
beat) is stopped while an upload's body is arriving. The upload is acknowledged (202: its bytes
and rows are durable), its index task waits in the outbox, and once Redis is back the sweep
sends it: every acknowledged upload ends indexed exactly once, its bytes' SHA-256 unchanged.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from outbox.models import OutboxTask
from studies.models import Instance, Upload, UploadItem, UploadState
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.faults import PrivateRedis, fault_env, wait_until, worker_with_beat
from tests.support.ingest_support import objects_dir, sha
from tests.support.world import World

pytestmark = [pytest.mark.services, pytest.mark.faults]


@pytest.fixture
def stack(child_env: dict[str, str], run_dir: Path, redis: PrivateRedis) -> Iterator[live.Server]:
    env = fault_env(child_env, redis)
    worker = worker_with_beat(env, run_dir)
    server = live.server(env, run_dir)
    yield server
    server.stop()
    worker.stop()


def upload_done(request_id: str) -> bool:
    return Upload.objects.filter(pk=request_id, state=UploadState.DONE).exists()


def assert_indexed_once(child_env: dict[str, str], request_id: str, instance: bytes, sop_uid: str) -> None:
    upload = Upload.objects.get(pk=request_id)
    assert (upload.state, upload.instances_indexed, upload.instances_rejected) == (UploadState.DONE, 1, 0)
    assert upload.sha256 == sha(instance)
    (item,) = UploadItem.objects.filter(upload=upload)
    assert item.sha256 == sha(instance)
    (row,) = Instance.objects.filter(sop_uid=sop_uid)
    assert sha((objects_dir(child_env) / row.object_key).read_bytes()) == sha(instance)


def test_a_broker_outage_mid_body_delays_indexing_and_loses_nothing(
    stack: live.Server, redis: PrivateRedis, world: World, child_env: dict[str, str]
) -> None:
    url = f"{stack.url}/api/v2/dicom/stream"
    before, during = make_instance(sop_uid="1.2.3.10.1"), make_instance(sop_uid="1.2.3.10.2")
    first_id, outage_id = str(uuid.uuid4()), str(uuid.uuid4())
    headers = {**world.bob.headers, "Content-Type": "application/dicom"}

    response = httpx.post(url, content=before, headers={**headers, "X-Request-Id": first_id}, timeout=30)
    assert response.status_code == 202, response.text
    wait_until(lambda: upload_done(first_id), what="the first upload indexed")

    # The second body stops half-way; Redis goes down; then the rest arrives.
    redis_down = threading.Event()

    def body() -> Iterator[bytes]:
        yield during[: len(during) // 2]
        redis_down.wait(60)
        yield during[len(during) // 2 :]

    answer: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answer.append(
            httpx.post(url, content=body(), headers={**headers, "X-Request-Id": outage_id}, timeout=60)
        )
    )
    sender.start()
    wait_until(lambda: Upload.objects.filter(pk=outage_id, state=UploadState.RECEIVING).exists(), what="mid-body")
    redis.stop()
    redis_down.set()
    sender.join(90)

    assert answer and answer[0].status_code == 202, answer[0].text if answer else "no answer"
    assert answer[0].json()["sha256"] == sha(during)
    # Acknowledged and durable; its index task is in the outbox, not lost with the broker.
    assert Upload.objects.get(pk=outage_id).state == UploadState.QUEUED
    assert OutboxTask.objects.filter(task="studies.index_upload", args=[outage_id]).exists()

    redis.start()  # an empty Redis: the task can only come from the outbox
    wait_until(lambda: upload_done(outage_id), what="the outage's upload indexed after Redis is back")
    wait_until(lambda: not OutboxTask.objects.exists(), what="the outbox emptied")

    assert_indexed_once(child_env, first_id, before, "1.2.3.10.1")
    assert_indexed_once(child_env, outage_id, during, "1.2.3.10.2")
