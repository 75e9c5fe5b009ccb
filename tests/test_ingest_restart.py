"""A server process killed (SIGKILL) in the middle of a stream; a new one resumes it."""

from __future__ import annotations

from pathlib import Path

import httpx
from django.conf import settings

from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import RawRequest
from tests.support.world import World
from tests.test_ingest_streams import DICOM, MB, assert_assembled, cut, send_chunk


def test_it_resumes_a_stream_after_the_server_was_killed(child_env, run_dir: Path, world: World, clock) -> None:
    env = {**child_env, "PRIZMED_DATA_DIR": str(run_dir / "killed")}  # its own store: a kill leaves debris
    payload = make_instance(pixel_bytes=12 * MB)
    chunks = cut(payload, 2 * MB)
    srv = live.server(env, run_dir)
    try:
        with httpx.Client(base_url=f"{srv.url}/api/v2", timeout=30) as client:
            for seq in (0, 2, 3):
                assert send_chunk(client, world.bob.headers, "crash", seq, chunks[seq]).status_code == 202
        headers = {**world.bob.headers, **DICOM, "X-Stream-Id": "crash", "X-Chunk-Seq": "1"}
        raw = RawRequest(srv.url, "/api/v2/dicom/stream", {**headers, "Content-Length": str(len(chunks[1]))})
        raw.send(chunks[1][:MB])  # chunk 1 half-way when the process dies
        srv.kill()
        raw.close()
    finally:
        srv.stop()

    srv = live.server(env, run_dir)
    # The completed stream is assembled by a worker on the same store (embedded: the server's thread).
    worker = live.worker_start(env, run_dir) if settings.REDIS_URL else None
    try:
        with httpx.Client(base_url=f"{srv.url}/api/v2", timeout=30) as client:
            status = client.get("/dicom/streams/crash", headers=world.bob.headers).json()
            assert [c["seq"] for c in status["chunks"]] == [0, 2, 3]
            assert status["missing"] == [{"first": 1, "last": 1}]
            last = len(chunks) - 1
            for seq in [1, *range(4, last + 1)]:
                response = send_chunk(client, world.bob.headers, "crash", seq, chunks[seq], last=seq == last)
                assert response.status_code == 202, response.text
        assert_assembled(env, world, "crash", payload, response.json())
    finally:
        srv.stop()
        if worker is not None:
            worker.stop()
