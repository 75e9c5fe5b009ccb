"""PrizMed past one machine: two API nodes and a Celery worker, each with its own local data
directory and no disk in common, sharing only PostgreSQL, Redis and an S3-compatible store
(moto's server). An upload through node A is indexed by the worker and read back through node
B byte for byte; a chunked stream's chunks alternate between A and B; a delete through B
reaches an SSE client on A as a `deleted` event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studies.models import Instance, UploadItem
from studies.objects.s3 import S3Storage
from tests.support import live, s3
from tests.support.dicomfactory import make_instance, make_study
from tests.support.dicomweb_support import as_stored, read_bytes
from tests.support.indexing import http_upload, wait_indexed
from tests.support.ingest_support import digest_header
from tests.support.records_support import SseClient, stream_timeout
from tests.support.world import Clock, World

pytestmark = pytest.mark.services

MOTO_PORT = live.free_port()  # a port of its own: two suites on one machine never meet
BUCKET = "prizmed-nodes"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    moto = s3.moto_server(MOTO_PORT, tmp_path_factory.mktemp("moto"))
    s3.bucket_create(f"http://127.0.0.1:{MOTO_PORT}", BUCKET)
    yield f"s3://{BUCKET}/cluster"
    moto.stop()


def node_env(child_env: dict[str, str], store_url: str, data_dir: Path) -> dict[str, str]:
    """A node of its own: its own PRIZMED_DATA_DIR (no shared disk), the shared services."""
    return {**child_env, **s3.server_env(f"http://127.0.0.1:{MOTO_PORT}", store_url), "PRIZMED_DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
def nodes(child_env: dict[str, str], store_url: str, run_dir: Path) -> Iterator[tuple[live.Server, live.Server]]:
    a = live.server(node_env(child_env, store_url, run_dir / "node-a"), run_dir)
    b = live.server(node_env(child_env, store_url, run_dir / "node-b"), run_dir)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def s3_worker(child_env: dict[str, str], store_url: str, run_dir: Path) -> Iterator[live.Process]:
    proc = live.worker_start(node_env(child_env, store_url, run_dir / "node-w"), run_dir)
    yield proc
    proc.stop()


@pytest.fixture
def store(store_url: str) -> S3Storage:
    return s3.s3_storage(f"http://127.0.0.1:{MOTO_PORT}", store_url)


def client(node: live.Server) -> httpx.Client:
    return httpx.Client(base_url=f"{node.url}/api/v2", timeout=60)


def instance_path(data: bytes) -> str:
    row = Instance.objects.select_related("series__study").get(sop_uid=str(read_bytes(data).SOPInstanceUID))
    return f"/dicomweb/studies/{row.series.study.study_uid}/series/{row.series.series_uid}/instances/{row.sop_uid}"


def local_objects(run_dir: Path) -> list[Path]:
    """Object files under any node's data directory: there must be none."""
    return [
        p for node in ("node-a", "node-b", "node-w") for p in (run_dir / node / "objects").rglob("*") if p.is_file()
    ]


def test_it_runs_on_two_nodes_and_a_worker_sharing_only_the_services(
    nodes: tuple[live.Server, live.Server], s3_worker: live.Process, store: S3Storage, world: World,
    clock: Clock, run_dir: Path,
) -> None:  # fmt: skip
    node_a, node_b = nodes
    with client(node_a) as a, client(node_b) as b:
        # Upload through A, indexed by the worker, every instance read back through B.
        study = make_study(n_series=2, per_series=2, patient_id="NODES-1")
        upload = wait_indexed(http_upload(a, world.bob, study))
        assert upload.state == "done" and upload.instances_indexed == 4
        for data in study:
            got = b.get(instance_path(data), headers={**world.bob.headers, "Accept": "application/dicom"})
            assert got.status_code == 200 and got.content == as_stored(data)

        # A chunked stream whose chunks alternate between A and B.
        big = make_instance(patient_id="NODES-1", pixel_bytes=9 * MIB)
        chunks = [big[i : i + 2 * MIB] for i in range(0, len(big), 2 * MIB)]
        for seq, chunk in enumerate(chunks):
            headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Stream-Id": "nodes",
                       "X-Chunk-Seq": str(seq), "X-Chunk-Last": "true" if seq == len(chunks) - 1 else "false",
                       "Content-Digest": digest_header(chunk)}  # fmt: skip
            answer = (a if seq % 2 == 0 else b).post("/dicom/stream", content=chunk, headers=headers)
            assert answer.status_code == 202, answer.text
        assembled = wait_indexed(answer.json()["upload"]["request_id"])
        assert assembled.state == "done"
        (item,) = UploadItem.objects.filter(upload=assembled)
        with store.open(item.object_key) as fp:
            assert fp.read() == as_stored(big)
        got = a.get(instance_path(big), headers={**world.bob.headers, "Accept": "application/dicom"})
        assert got.content == as_stored(big)

        # A delete through B reaches an SSE client on A.
        study_uid = Instance.objects.get(sop_uid=str(read_bytes(study[0]).SOPInstanceUID)).series.study.study_uid
        keys = list(Instance.objects.filter(series__study__study_uid=study_uid).values_list("object_key", flat=True))
        sse_headers = {**world.bob.headers, "Accept": "text/event-stream", "X-Record-Id": str(uuid.uuid4())}
        with (
            httpx.Client(base_url=node_a.url, headers=sse_headers, timeout=stream_timeout()) as listener,
            listener.stream("GET", "/api/v2/records/stream") as stream,
        ):
            assert stream.status_code == 200
            sse = SseClient(stream)
            sse.until("snapshot-end")
            assert b.delete(f"/studies/{study_uid}", headers=world.alice.headers).status_code == 200
            event = next(e for e in iter(sse.next, None) if e.event == "deleted")
        assert event.json["resourceType"] == "ImagingStudy" and event.json["id"] == study_uid
        assert not any(store.exists(key) for key in keys)
    assert local_objects(run_dir) == []  # every byte went to the shared store, none to a node's disk
