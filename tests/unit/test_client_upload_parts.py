"""The upload's parts without a server: resume state, planning by size, transport retries."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from prizmed_client.config import MIB, ConfigError, Settings
from prizmed_client.pacing import RatePacer
from prizmed_client.planning import Batch, Chunked, plan, scan
from prizmed_client.state import FileKey, ResumeState, StateLocked, StreamRecord
from prizmed_client.transport import ApiError, Transport
from prizmed_client.upload import Uploader

from tests.support.dicomfactory import make_instance


def settings(tmp_path: Path, **kw) -> Settings:
    return Settings(url="http://x.test", api_key="pzm_k", state_dir=tmp_path / "state", **kw)


def test_the_state_survives_a_torn_line_and_refuses_a_second_user(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    a, b = FileKey("/d/a.dcm", 10, 1, "aa"), FileKey("/d/b.dcm", 20, 2)
    with ResumeState(path) as state:
        state.record_request("r1", [a])
        state.record_stream(b, StreamRecord("s1", 8 * MIB))
        state.record_chunk("s1", 0, "r2")
        with pytest.raises(StateLocked), ResumeState(path):
            pass
    with path.open("a") as fh:
        fh.write('{"t": "request", "request_id": "r3", "fi')  # killed mid-write
    with ResumeState(path) as state:
        assert state.sent == {a.text(): "r1"} and state.requests == {"r1": [a.text()]}
        assert state.streams == {b.text(): StreamRecord("s1", 8 * MIB)}
        state.record_request("r4", [a])  # sent again: r1 is forgotten at the next compaction
    with ResumeState(path) as state:
        assert state.sent == {a.text(): "r4"} and list(state.requests) == ["r4"]
    assert len(path.read_text().splitlines()) == 2  # one line per request and stream


def test_it_plans_batches_singles_and_streams_by_size(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    sizes = {"s1": 100, "s2": 100, "s3": 100, "s4": 3000, "m": 20_000, "l": 200_000}
    for name, pixels in sizes.items():
        (folder / "sub" / f"{name}.dcm").write_bytes(make_instance(pixel_bytes=pixels))
    (folder / "readme.txt").write_text("x")
    (folder / "DICM.txt").write_bytes(b"DICM" * 40)  # the magic in the wrong place
    cfg = settings(tmp_path, batch_file_max=10_000, batch_max_files=2, batch_max_bytes=6000, stream_threshold=100_000)

    files, skipped = scan([folder, folder / "sub" / "s1.dcm"], cfg)

    assert sorted(s.path.name for s in skipped) == ["DICM.txt", "readme.txt"]
    assert len(files) == 6  # s1 named twice, sent once
    steps = plan(files, cfg)
    named = [[f.path.stem for f in s.files] if isinstance(s, Batch) else ["stream", s.file.path.stem] for s in steps]
    assert named == [["s1", "s2"], ["s3", "s4"], ["m"], ["stream", "l"]]
    assert isinstance(steps[-1], Chunked) and isinstance(steps[0], Batch)
    assert all(f.key.sha256 for f in steps[0].files)  # small ones hashed


def test_settings_come_from_the_environment_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PRIZMED_API_KEY"):
        Settings.from_env({"PRIZMED_URL": "http://x"})
    with pytest.raises(ConfigError, match="PRIZMED_CHUNK_BYTES"):
        Settings.from_env({"PRIZMED_URL": "http://x", "PRIZMED_API_KEY": "k", "PRIZMED_CHUNK_BYTES": "lots"})
    cfg = Settings.from_env(
        {"PRIZMED_URL": "http://x/", "PRIZMED_API_KEY": "k", "PRIZMED_CHUNK_BYTES": "4MiB", "XDG_STATE_HOME": "/s"}
    )
    assert cfg.chunk_bytes == 4 * MIB and cfg.api_base == "http://x/api/v2" and cfg.state_dir == Path("/s/prizmed")


def test_it_absorbs_a_429_and_retries_a_dropped_connection_with_the_same_request_id(tmp_path: Path) -> None:
    answers = iter(["429", "drop", "202"])
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        answer = next(answers)
        if answer == "drop":
            raise httpx.RemoteProtocolError("server disconnected")
        if answer == "429":
            return httpx.Response(429, headers={"Retry-After": "3", "X-RateLimit-Remaining": "0"}, json={})
        return httpx.Response(202, json={"request_id": request.headers["x-request-id"]})

    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = RatePacer(monotonic=lambda: clock[0], sleep=sleep)
    http = httpx.Client(transport=httpx.MockTransport(server))
    transport = Transport(settings(tmp_path), pacer=pacer, http=http, sleep=sleep)
    rid = str(uuid.uuid4())
    response = transport.request("POST", "/dicom/stream", body=lambda: [b"abc", b"def"], request_id=rid)

    assert response.status_code == 202
    assert [r.headers["x-request-id"] for r in seen] == [rid] * 3 and [r.content for r in seen] == [b"abcdef"] * 3
    assert transport.stats.throttled == 1 and transport.stats.requests == 3
    assert slept[0] >= 3  # Retry-After waited out before the next send


def test_it_raises_the_problem_of_a_refusal_and_does_not_retry_what_is_not_idempotent(tmp_path: Path) -> None:
    calls = []

    def server(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.method == "DELETE":
            raise httpx.ConnectError("refused")
        return httpx.Response(
            422, json={"title": "Unprocessable", "detail": "no DICM prefix"}, headers={"X-Request-Id": "r"}
        )

    transport = Transport(settings(tmp_path), http=httpx.Client(transport=httpx.MockTransport(server)))
    with pytest.raises(ApiError) as refused:
        transport.request("POST", "/dicom/stream", body=lambda: [b"x"])
    assert refused.value.status == 422 and refused.value.detail == "no DICM prefix" and len(calls) == 1
    with pytest.raises(httpx.ConnectError):
        transport.request("DELETE", "/dicom/streams/s", idempotent=False)
    assert len(calls) == 2


def test_a_batch_refused_whole_is_halved_down_to_the_file_at_fault(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    for i in range(8):
        # Changed after the scan, say: the server finds it broken (422) and refuses the whole body.
        description = "POISON" if i == 5 else "fine"
        (folder / f"{i}.dcm").write_bytes(make_instance(pixel_bytes=100, study_description=description))
    bodies: list[int] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"state": "done", "instances_indexed": 1, "study_uids": []})
        body = request.read()
        bodies.append(body.count(b"DICM"))
        if b"POISON" in body:
            return httpx.Response(422, json={"title": "Unprocessable", "detail": "broken meta"})
        return httpx.Response(202, json={"request_id": request.headers["x-request-id"], "state": "queued"})

    cfg = settings(tmp_path)
    transport = Transport(cfg, http=httpx.Client(transport=httpx.MockTransport(server)))
    with ResumeState(tmp_path / "state.jsonl") as state:
        report = Uploader(transport, state).run([folder])

    assert [r.path.name for r in report.refused] == ["5.dcm"] and report.refused[0].status == 422
    assert sorted(p.name for u in report.uploads for p in u.files) == [f"{i}.dcm" for i in range(8) if i != 5]
    assert bodies == [8, 4, 4, 2, 1, 1, 2]  # all, 0-3, 4-7, 4-5, 4, 5 (refused), 6-7
