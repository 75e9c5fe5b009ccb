"""The API on S3-compatible storage, over real HTTP: a uvicorn process with PRIZMED_STORAGE_URL
set, moto's server behind a relay the test can cut. A large instance goes up in parts and comes
back by ranges; a multipart body is one object per instance; a chunked stream of chunks below
S3's minimum part size is assembled; the store going away mid-upload is a 503 that leaves
nothing, and the retry succeeds; deleting a study removes its objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from studies.ingest.expiry import ingest_expire
from studies.models import Chunk, Instance, Stream, StreamState, Upload, UploadItem
from studies.objects.s3 import S3Storage
from studies.objects.store import storage
from tests.support import live, s3
from tests.support.dicomfactory import make_instance, make_study
from tests.support.dicomweb_support import as_stored
from tests.support.indexing import http_upload, wait_for, wait_indexed
from tests.support.ingest_support import digest_header, sha
from tests.support.world import Clock, World

# Ports of their own, so two suites (or checkouts) on one machine never meet.
MOTO_PORT, RELAY_PORT = live.free_port(), live.free_port()
BUCKET = "prizmed-http"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3.Relay]:
    moto = s3.moto_server(MOTO_PORT, tmp_path_factory.mktemp("moto"))
    s3.bucket_create(f"http://127.0.0.1:{MOTO_PORT}", BUCKET)
    relay = s3.Relay(RELAY_PORT, MOTO_PORT)
    yield relay
    relay.cut()
    moto.stop()


@pytest.fixture(scope="module")
def url(relay: s3.Relay) -> str:
    return f"s3://{BUCKET}/run-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3_env(child_env: dict[str, str], relay: s3.Relay, url: str) -> dict[str, str]:
    return {**child_env, **s3.server_env(relay.endpoint, url)}


@pytest.fixture(scope="module")
def s3_server(s3_env: dict[str, str], run_dir) -> Iterator[live.Server]:
    srv = live.server(s3_env, run_dir)
    yield srv
    srv.stop()


@pytest.fixture
def s3_indexer(s3_env: dict[str, str], run_dir) -> Iterator[live.Process | None]:
    """A worker on the same store with Redis; without, the server indexes in-process."""
    if not settings.REDIS_URL:
        yield None
        return
    proc = live.worker_start(s3_env, run_dir)
    yield proc
    proc.stop()


@pytest.fixture
def api(s3_server: live.Server, clock: Clock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{s3_server.url}/api/v2", timeout=60) as client:
        yield client


@pytest.fixture
def servers_store(relay: s3.Relay, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point this process's storage() at the servers' store, so services run here see it."""
    for name, value in s3.server_env(relay.endpoint, url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(settings, "PRIZMED_STORAGE_URL", url)
    monkeypatch.setattr(settings, "PRIZMED_S3_PATH_STYLE", True)
    storage.cache_clear()
    yield
    storage.cache_clear()


@pytest.fixture
def store(relay: s3.Relay, url: str) -> S3Storage:
    """The servers' store, as this process reads it to check what they wrote."""
    return s3.s3_storage(relay.endpoint, url)


def instance_path(data: bytes) -> str:
    row = Instance.objects.select_related("series__study").get(sop_uid=_sop(data))
    return f"/dicomweb/studies/{row.series.study.study_uid}/series/{row.series.series_uid}/instances/{row.sop_uid}"


def _sop(data: bytes) -> str:
    from tests.support.dicomweb_support import read_bytes

    return str(read_bytes(data).SOPInstanceUID)


def read(store: S3Storage, key: str) -> bytes:
    with store.open(key) as fp:
        return fp.read()


def test_it_stores_a_large_instance_in_parts_and_serves_it_back_by_ranges(
    api: httpx.Client, world: World, store: S3Storage, s3_indexer: live.Process | None
) -> None:
    data = make_instance(patient_id="S3-1", pixel_bytes=13 * MIB)  # three parts of 5 MiB
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "Content-Digest": digest_header(data)}
    response = api.post("/dicom/stream", content=_pieces(data), headers=headers)
    assert response.status_code == 202, response.text
    item = UploadItem.objects.get(upload_id=response.json()["request_id"])
    assert read(store, item.object_key) == as_stored(data) and s3.multipart_uploads(store) == []
    assert wait_indexed(response.json()["request_id"]).state == "done"

    path = instance_path(data)
    whole = api.get(path, headers={**world.bob.headers, "Accept": "application/dicom"})
    assert whole.status_code == 200 and whole.content == as_stored(data)
    part = api.get(path, headers={**world.bob.headers, "Accept": "application/dicom", "Range": "bytes=7340000-7345000"})
    assert part.status_code == 206 and part.content == as_stored(data)[7340000:7345001]
    frame = api.get(path + "/frames/1", headers=world.bob.headers)
    assert frame.status_code == 200 and as_stored(data)[-13 * MIB :] in frame.content
    study_uid = Instance.objects.get(sop_uid=_sop(data)).series.study.study_uid
    (series,) = api.get(f"/studies/{study_uid}/series", headers=world.bob.headers).json()["series"]
    prefix = item.object_key.rsplit("/", 1)[0]
    assert series["storage_location"] == f"s3://{BUCKET}/{store.location.prefix}{prefix}/"


def test_it_stores_each_instance_of_a_multipart_body_as_its_own_object_and_serves_the_study(
    api: httpx.Client, world: World, store: S3Storage, s3_indexer: live.Process | None
) -> None:
    instances = make_study(n_series=2, per_series=5, patient_id="S3-2")
    upload_id = http_upload(api, world.bob, instances)
    items = UploadItem.objects.filter(upload_id=upload_id).order_by("position")
    assert [read(store, item.object_key) for item in items] == [as_stored(i) for i in instances]
    wait_indexed(upload_id)
    study_uid = Instance.objects.get(sop_uid=_sop(instances[0])).series.study.study_uid
    whole = api.get(f"/dicomweb/studies/{study_uid}", headers=world.bob.headers)  # 10 objects, read ahead
    assert whole.status_code == 200
    assert all(as_stored(i) in whole.content for i in instances)
    assert len(whole.content) < sum(map(len, instances)) + 10 * 400  # each once, and its framing


def send_chunks(
    api: httpx.Client, world: World, stream_id: str, chunks: list[bytes], last: int, first: int = 0
) -> httpx.Response:
    """Send ``chunks`` as seqs ``first``, ``first + 1``, ...; ``last``: the seq marked the last one.
    The last answer."""
    answer = None
    for seq, chunk in enumerate(chunks, start=first):
        headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Stream-Id": stream_id,
                   "X-Chunk-Seq": str(seq), "X-Chunk-Last": "true" if seq == last else "false",
                   "Content-Digest": digest_header(chunk)}  # fmt: skip
        answer = api.post("/dicom/stream", content=chunk, headers=headers)
        assert answer.status_code in (200, 202), answer.text
    assert answer is not None
    return answer


def test_it_assembles_a_stream_of_chunks_below_the_minimum_part_size(
    api: httpx.Client, world: World, store: S3Storage, s3_indexer: live.Process | None
) -> None:
    data = make_instance(patient_id="S3-3", pixel_bytes=6 * MIB)
    chunks = [data[i : i + 2 * MIB] for i in range(0, len(data), 2 * MIB)]  # 2 MiB each: below 5 MiB
    upload = send_chunks(api, world, "s3-small", chunks, len(chunks) - 1).json()["upload"]
    assert upload["sha256"] == sha(as_stored(data))
    item = UploadItem.objects.get(upload_id=upload["request_id"])
    assert read(store, item.object_key) == as_stored(data)
    wait_for(lambda: not list(store.keys(f"streams/{world.bob.org.pk}/")) or None, 15, "chunk objects freed")


def test_it_assembles_a_stream_in_the_store_moving_no_payload_through_the_api_process(
    api: httpx.Client, world: World, store: S3Storage, relay: s3.Relay, s3_env: dict[str, str], url: str, run_dir
) -> None:
    # The worker reaches the store through a relay of its own: what each process moves is counted apart.
    worker_relay = s3.Relay(live.free_port(), MOTO_PORT)
    env = {**s3_env, **s3.server_env(worker_relay.endpoint, url)}
    worker = live.worker_start(env, run_dir) if settings.REDIS_URL else None  # embedded: the server's thread
    try:
        data = make_instance(patient_id="S3-5", pixel_bytes=29 * MIB)
        chunks = [data[i : i + 6 * MIB] for i in range(0, len(data), 6 * MIB)]  # the last one just over 5 MiB
        send_chunks(api, world, "s3-compose", chunks[:-1], len(chunks) - 1)
        api_up, api_down = relay.bytes_up, relay.bytes_down
        upload = send_chunks(api, world, "s3-compose", chunks[-1:], len(chunks) - 1, len(chunks) - 1).json()["upload"]
        api_up, api_down = relay.bytes_up - api_up, relay.bytes_down - api_down
    finally:
        if worker is not None:
            worker.stop()
        worker_relay.cut()
    assert upload["state"] != "receiving" and upload["sha256"] == sha(as_stored(data))
    item = UploadItem.objects.get(upload_id=upload["request_id"])
    assert read(store, item.object_key) == as_stored(data)
    if worker is not None:
        # The API process stored the last chunk and moved nothing more: assembly was the worker's.
        assert api_up < len(chunks[-1]) + MIB and api_down < MIB, (api_up, api_down)
        assembly_up = worker_relay.bytes_up
    else:
        assembly_up = api_up - len(chunks[-1])
    # Only the first chunk, which carries the zeroed preamble, went up again; the rest was copied.
    assert assembly_up < len(chunks[0]) + MIB, assembly_up


@pytest.mark.services  # a worker of its own, on a relay of its own
def test_a_stream_the_worker_cannot_assemble_while_the_store_is_away_answers_503_and_the_resend_completes(
    api: httpx.Client, world: World, store: S3Storage, s3_env: dict[str, str], url: str, run_dir
) -> None:
    worker_relay = s3.Relay(live.free_port(), MOTO_PORT)
    worker = live.worker_start({**s3_env, **s3.server_env(worker_relay.endpoint, url)}, run_dir)
    try:
        data = make_instance(patient_id="S3-6", pixel_bytes=7 * MIB)
        chunks = [data[i : i + 3 * MIB] for i in range(0, len(data), 3 * MIB)]
        last = len(chunks) - 1
        send_chunks(api, world, "s3-away", chunks[:-1], last)
        headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Stream-Id": "s3-away",
                   "X-Chunk-Seq": str(last), "X-Chunk-Last": "true",
                   "Content-Digest": digest_header(chunks[-1])}  # fmt: skip
        with worker_relay.down():  # the API node still reaches the store; the worker does not
            refused = api.post("/dicom/stream", content=chunks[-1], headers=headers)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5", refused.text
        assert refused.json()["type"].endswith("/storage-unavailable")
        stream = Stream.objects.get(organization=world.bob.org, stream_id="s3-away")
        assert stream.state == StreamState.OPEN and stream.upload_id is None  # resumable at once
        assert Chunk.objects.filter(stream=stream).count() == len(chunks)  # the chunk was kept
        upload = send_chunks(api, world, "s3-away", chunks[-1:], last, last).json()["upload"]  # the client's resend
    finally:
        worker.stop()
        worker_relay.cut()
    assert upload["state"] != "receiving" and upload["sha256"] == sha(as_stored(data))
    item = UploadItem.objects.get(upload_id=upload["request_id"])
    assert read(store, item.object_key) == as_stored(data)


def test_it_answers_503_when_the_store_goes_away_mid_upload_leaves_nothing_and_the_retry_succeeds(
    api: httpx.Client, world: World, store: S3Storage, relay: s3.Relay, servers_store: None
) -> None:
    data = make_instance(patient_id="S3-4", pixel_bytes=12 * MIB)
    request_id = str(uuid.uuid4())
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}

    def body() -> Iterator[bytes]:
        for start in range(0, len(data), MIB):
            if start == 7 * MIB:
                relay.cut()  # the first part is up; the second will not be
            yield data[start : start + MIB]

    try:
        response = api.post("/dicom/stream", content=body(), headers=headers)
    finally:
        relay.mend()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"].endswith("/storage-unavailable")
    # Nothing acknowledged, nothing visible: no object, no upload but one left `receiving`,
    # which the server could not clean while the store was away: the expiry sweep's to finish.
    assert not list(store.keys(f"uploads/{world.bob.org.pk}/"))
    assert Upload.objects.get(pk=request_id).state == "receiving"

    # The retry: the same id is still `receiving` (409), so the client sends it under a new one.
    assert api.post("/dicom/stream", content=_pieces(data), headers=headers).status_code == 409
    retry = api.post("/dicom/stream", content=_pieces(data), headers={**headers, "X-Request-Id": str(uuid.uuid4())})
    assert retry.status_code == 202, retry.text
    (item,) = UploadItem.objects.filter(upload_id=retry.json()["request_id"])
    assert read(store, item.object_key) == as_stored(data)

    later = timezone.now() + timedelta(seconds=settings.PRIZMED_STREAM_TTL + 60)
    # The stale upload goes, and any multipart upload whose abort could not reach the store.
    assert ingest_expire(now=later)[1] == 1
    assert not Upload.objects.filter(pk=request_id).exists() and s3.multipart_uploads(store) == []


@pytest.mark.services  # a worker of its own, started while the store is away
def test_indexing_an_acknowledged_upload_waits_out_a_store_outage(
    api: httpx.Client, world: World, relay: s3.Relay, s3_env: dict[str, str], run_dir: Path
) -> None:
    instances = make_study(n_series=1, per_series=3, patient_id="S3-6")
    upload_id = http_upload(api, world.bob, instances)  # acknowledged: every object is in the store
    relay.cut()
    worker = live.worker_start(s3_env, run_dir)  # its first reads of the headers meet the outage
    try:
        wait_for(lambda: "retry in" in worker.log().lower() or None, 30, "a retried indexing task")
        assert Upload.objects.get(pk=upload_id).state not in ("done", "failed")
        relay.mend()
        upload = wait_indexed(upload_id)
    finally:
        relay.mend()
        worker.stop()
    assert (upload.state, upload.instances_indexed, upload.instances_rejected) == ("done", 3, 0)
    study_uid = Instance.objects.get(sop_uid=_sop(instances[0])).series.study.study_uid
    whole = api.get(f"/dicomweb/studies/{study_uid}", headers=world.bob.headers)
    assert whole.status_code == 200 and all(as_stored(i) in whole.content for i in instances)


def test_it_deletes_a_studys_objects_from_the_store(
    api: httpx.Client, world: World, store: S3Storage, s3_indexer: live.Process | None
) -> None:
    instances = make_study(n_series=2, per_series=2, patient_id="S3-5")
    wait_indexed(http_upload(api, world.alice, instances))
    study_uid = Instance.objects.get(sop_uid=_sop(instances[0])).series.study.study_uid
    keys = list(Instance.objects.filter(series__study__study_uid=study_uid).values_list("object_key", flat=True))
    assert len(keys) == 4 and all(store.exists(k) for k in keys)
    assert api.delete(f"/studies/{study_uid}", headers=world.alice.headers).status_code == 200
    assert not any(store.exists(k) for k in keys)


def _pieces(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), MIB):
        yield data[start : start + MIB]


def test_it_is_not_ready_while_the_store_is_unreachable(s3_server: live.Server, relay: s3.Relay) -> None:
    assert httpx.get(f"{s3_server.url}/readyz").json()["checks"]["storage"] == "ok"
    with relay.down():
        ready = httpx.get(f"{s3_server.url}/readyz", timeout=30)
    assert ready.status_code == 503 and ready.json()["checks"]["storage"] == "error"
    assert httpx.get(f"{s3_server.url}/readyz").status_code == 200
