"""The storage contract (studies/objects/storage.py), held by both backends: local files, and S3
against moto's standalone server, a real S3-compatible server process over HTTP.

Puts, multipart puts, ranged reads, objects composed from others in the store, deletes,
listings, the sweep, and the failure paths: the store cut mid-upload (503, nothing
half-written, the retry succeeds)."""

from __future__ import annotations

import errno
import io
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

import studies.objects.s3 as s3_module
from core.errors import ApiError
from studies.objects.local import LocalStorage
from studies.objects.s3 import S3Storage
from studies.objects.storage import Extent, Piece, Storage, StorageUnavailable
from tests.support import s3
from tests.support.dicomfactory import make_instance
from tests.support.live import Process, free_port

# Ports of their own, so two suites (or checkouts) on one machine never meet.
MOTO_PORT, RELAY_PORT = free_port(), free_port()
BUCKET = "prizmed-contract"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    proc = s3.moto_server(MOTO_PORT, tmp_path_factory.mktemp("moto"))
    s3.bucket_create(f"http://127.0.0.1:{MOTO_PORT}", BUCKET)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def relay(moto: Process) -> Iterator[s3.Relay]:
    relay = s3.Relay(RELAY_PORT, MOTO_PORT)
    yield relay
    relay.cut()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    relay: s3.Relay = request.getfixturevalue("relay")
    # A fresh prefix per test: tests share the bucket, never each other's objects.
    return s3.s3_storage(relay.endpoint, f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def s3_store(relay: s3.Relay) -> S3Storage:
    return s3.s3_storage(relay.endpoint, f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}")


def put(store: Storage, key: str, data: bytes, piece: int = MIB) -> None:
    writer = store.writer(key)
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])
    writer.commit()


def pattern(size: int) -> bytes:
    """Bytes where every offset reads differently (a misplaced range shows)."""
    block = b"".join(i.to_bytes(4, "big") for i in range(1 << 16))
    return (block * (size // len(block) + 1))[:size]


def in_progress(store: Storage) -> int:
    """Objects begun and neither committed nor aborted (what a crash would leave)."""
    if isinstance(store, S3Storage):
        return len(s3.multipart_uploads(store))
    assert isinstance(store, LocalStorage)
    return len(list((store.root / ".partial").iterdir()))


def test_it_shows_an_object_only_once_committed(store: Storage) -> None:
    writer = store.writer("a/small.dcm")
    writer.write(b"DICM")
    writer.write(b"x" * 5000)
    assert writer.size == 5004 and not store.exists("a/small.dcm")
    writer.commit()
    assert store.exists("a/small.dcm") and store.size("a/small.dcm") == 5004
    with store.open("a/small.dcm") as fp:
        assert fp.read() == b"DICM" + b"x" * 5000


def test_it_writes_a_large_object_in_parts_as_it_arrives(store: Storage) -> None:
    data = pattern(12 * MIB + 12345)  # two full 5 MiB parts and a short last one on S3
    writer = store.writer("big/instance.dcm")
    for start in range(0, len(data), MIB):
        writer.write(data[start : start + MIB])
        if isinstance(store, S3Storage) and start >= 6 * MIB:
            assert s3.multipart_uploads(store) == [store.object_name("big/instance.dcm")]  # parts are going up
    assert not store.exists("big/instance.dcm")
    writer.commit()
    assert store.size("big/instance.dcm") == len(data)
    with store.open("big/instance.dcm") as fp:
        assert fp.read() == data
    assert in_progress(store) == 0


def test_it_puts_an_object_of_exactly_one_part_in_one_request(s3_store: S3Storage) -> None:
    writer = s3_store.writer("one/part.dcm")
    for _ in range(5):
        writer.write(b"p" * MIB)  # 5 MiB: the part size of these tests
    assert s3.multipart_uploads(s3_store) == []  # nothing sent before it is known to be larger
    writer.commit()
    assert s3_store.size("one/part.dcm") == 5 * MIB and s3.multipart_uploads(s3_store) == []


def test_it_defers_many_small_objects_to_one_sync(store: Storage) -> None:
    keys = [f"u/1/{i:06d}.dcm" for i in range(10)]
    for i, key in enumerate(keys):
        writer = store.writer(key, staged=False)
        writer.write(bytes([i]) * 1000)
        writer.commit(durable=False)  # on S3 the PUTs go up in the background, a few at once
    store.sync(keys)
    assert list(store.keys("u/1/")) == keys
    for i, key in enumerate(keys):
        with store.open(key) as fp:
            assert fp.read() == bytes([i]) * 1000


def test_it_raises_at_sync_what_a_background_put_met(s3_store: S3Storage, relay: s3.Relay) -> None:
    keys = [f"u/2/{i:06d}.dcm" for i in range(6)]
    with relay.down():
        for key in keys:
            writer = s3_store.writer(key, staged=False)
            writer.write(b"x" * 1000)
            writer.commit(durable=False)
        with pytest.raises(StorageUnavailable):
            s3_store.sync(keys)
    s3_store.delete_many(keys)  # what the upload's abort does: nothing comes back afterwards
    assert list(s3_store.keys("u/2/")) == []


def test_it_reads_ranges_by_seeking(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "FIRST_RANGE_BYTES", 1000)  # many GETs over a small object
    data = pattern(300_000)
    put(store, "r/obj", data)
    with store.open("r/obj") as fp:
        assert fp.read(10) == data[:10]
        fp.seek(123_456)
        assert fp.read(70_000) == data[123_456:193_456]  # across several ranges
        assert fp.tell() == 193_456
        fp.seek(-5, io.SEEK_END)
        assert fp.read() == data[-5:]
        assert fp.read(1) == b""
        fp.seek(7)
        assert fp.read(3) == data[7:10]  # backwards


def test_it_reads_an_extent_the_index_recorded(store: Storage) -> None:
    data = pattern(9 * MIB)
    put(store, "e/obj", data)
    with store.open_range("e/obj", 3 * MIB + 17, 4 * MIB) as fp:
        got = b"".join(iter(lambda: fp.read(MIB), b""))[: 4 * MIB]
    assert got == data[3 * MIB + 17 : 7 * MIB + 17]
    with store.open_range("e/obj", 5, 0) as fp:
        assert fp.read(0) == b""
    with pytest.raises(FileNotFoundError):
        with store.open_range("e/missing", 0, 10) as fp:
            fp.read(10)


def test_it_reads_extents_into_a_buffer(store: Storage) -> None:
    data = pattern(4 * MIB)
    put(store, "e/obj", data)
    buffer = bytearray(MIB + 10)
    view = memoryview(buffer)
    store.read_into("e/obj", 2 * MIB + 1, view[5:])
    assert buffer[5:] == data[2 * MIB + 1 : 3 * MIB + 6]
    store.read_into("e/obj", 4 * MIB - 7, view[:7])
    assert buffer[:7] == data[-7:]
    store.read_into("e/obj", 5, view[:0])
    with pytest.raises(OSError):
        store.read_into("e/obj", 4 * MIB - 7, view[:8])  # the object ends first
    with pytest.raises(FileNotFoundError):
        store.read_into("e/missing", 0, view[:10])


def test_it_reads_an_extent_with_one_ranged_get_and_no_head(s3_store: S3Storage) -> None:
    data = pattern(9 * MIB)
    put(s3_store, "e/obj", data)
    sent: list[tuple[str, str]] = []
    s3_store.client.meta.events.register(
        "before-call.s3.*", lambda params, model, **_: sent.append((model.name, params["headers"].get("Range", "")))
    )
    with s3_store.open_range("e/obj", 100, 5 * MIB) as fp:
        assert b"".join(fp.read(2 * MIB) for _ in range(3)) == data[100 : 100 + 5 * MIB]
    assert sent == [("GetObject", f"bytes=100-{100 + 5 * MIB - 1}")]


def test_it_reads_a_header_without_fetching_the_pixel_data(s3_store: S3Storage) -> None:
    data = make_instance(pixel_bytes=2 * MIB)  # a small header, then 2 MiB of pixel data
    put(s3_store, "h/instance.dcm", data)
    asked: list[str] = []
    s3_store.client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: asked.append(params["headers"]["Range"])
    )
    with s3_store.open("h/instance.dcm") as fp:
        header = pydicom.dcmread(fp, stop_before_pixels=True)
    assert header.SOPInstanceUID and "PixelData" not in header
    fetched = sum(int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1 for r in asked)
    assert asked and fetched < len(data) // 4  # ranged GETs for the header, not the whole object


def test_it_drops_everything_on_abort(store: Storage) -> None:
    small, large = store.writer("x/small"), store.writer("x/large")
    small.write(b"partial")
    for _ in range(7):
        large.write(b"y" * MIB)  # a part already went up on S3
    small.abort()
    large.abort()
    large.abort()  # twice is fine
    assert not store.exists("x/small") and not store.exists("x/large")
    assert list(store.keys("")) == [] and in_progress(store) == 0


def test_it_keeps_a_committed_object_when_abort_follows(store: Storage) -> None:
    writer = store.writer("k/obj")
    writer.write(b"abc")
    writer.commit()
    writer.abort()
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit()
    with store.open("k/obj") as fp:
        assert fp.read() == b"abc"


def test_it_replaces_an_object_on_a_second_commit(store: Storage) -> None:
    put(store, "k/obj", b"old")
    put(store, "k/obj", b"new!")
    with store.open("k/obj") as fp:
        assert fp.read() == b"new!"


def test_it_deletes_one_and_many_idempotently(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)  # several DeleteObjects requests
    keys = [f"d/{i}.dcm" for i in range(5)]
    for key in keys:
        put(store, key, key.encode())
    store.delete(keys[0])
    store.delete(keys[0])
    assert not store.exists(keys[0])
    store.delete_many([*keys[1:4], "d/never-there.dcm"])
    assert list(store.keys("d/")) == ["d/4.dcm"]
    store.delete_many([])


def test_it_raises_file_not_found_for_a_missing_object(store: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        store.size("missing/key")
    with pytest.raises(FileNotFoundError):
        store.open("missing/key")
    assert not store.exists("missing/key")


def test_it_lists_keys_by_prefix(store: Storage) -> None:
    for key in ["a/1.dcm", "a/2.dcm", "ab/3.dcm", "b/4.dcm"]:
        put(store, key, b"x")
    pending = store.writer("a/5.dcm")
    pending.write(b"x")
    assert list(store.keys("a/")) == ["a/1.dcm", "a/2.dcm"]
    assert list(store.keys("a")) == ["a/1.dcm", "a/2.dcm", "ab/3.dcm"]
    assert list(store.keys("")) == ["a/1.dcm", "a/2.dcm", "ab/3.dcm", "b/4.dcm"]
    assert list(store.keys("missing/")) == []
    pending.abort()


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a//b", ".partial/x", "a b"])
def test_it_refuses_bad_keys(store: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        store.writer(key)
    with pytest.raises(ValueError):
        store.delete(key)


def test_it_names_objects_by_uri_never_by_server_path(store: Storage) -> None:
    uri = store.uri("uploads/1/x.dcm")
    if isinstance(store, S3Storage):
        assert uri == f"s3://{BUCKET}/{store.location.prefix}uploads/1/x.dcm"
    else:
        assert uri == "file://prizmed/uploads/1/x.dcm"


def test_it_sweeps_writes_a_dead_process_left(store: Storage) -> None:
    dead = store.writer("s/dead.dcm")
    for _ in range(6):
        dead.write(b"z" * MIB)  # never committed nor aborted: its process was killed
    assert in_progress(store) == 1
    if isinstance(store, LocalStorage):
        # moto reports every multipart upload as initiated in 2010 (a fixed date), so the age
        # rule can be shown on the local backend only; S3 reads the store's Initiated time.
        assert store.partials_sweep(before=time.time() - 3600) == 0  # too recent
    assert store.partials_sweep(before=time.time() + 60) == 1
    assert in_progress(store) == 0 and not store.exists("s/dead.dcm")


def test_it_answers_503_when_the_store_is_down_mid_upload_and_the_retry_succeeds(
    s3_store: S3Storage, relay: s3.Relay
) -> None:
    data = pattern(11 * MIB)
    writer = s3_store.writer("f/instance.dcm")
    for start in range(0, 6 * MIB, MIB):
        writer.write(data[start : start + MIB])  # the first part is up
    with relay.down():
        with pytest.raises(StorageUnavailable) as raised:
            for start in range(6 * MIB, len(data), MIB):
                writer.write(data[start : start + MIB])
            writer.commit()
        assert isinstance(raised.value, ApiError) and raised.value.status == 503
        assert isinstance(raised.value, OSError)  # the index tasks retry it as they retry a disk
        assert ("Retry-After", "5") in raised.value.headers
        with pytest.raises(StorageUnavailable):
            s3_store.open("f/instance.dcm")
    # Nothing half-written: no object; the upload its abort could not reach is swept.
    assert not s3_store.exists("f/instance.dcm")
    s3_store.partials_sweep(before=time.time() + 60)
    assert s3.multipart_uploads(s3_store) == []
    put(s3_store, "f/instance.dcm", data)  # the client's retry
    with s3_store.open("f/instance.dcm") as fp:
        assert fp.read() == data


def test_it_answers_503_when_the_store_goes_away_mid_read(s3_store: S3Storage, relay: s3.Relay) -> None:
    data = pattern(3 * MIB)
    put(s3_store, "f/read.dcm", data)
    with s3_store.open("f/read.dcm") as fp:
        assert fp.read(1000) == data[:1000]
        with relay.down(), pytest.raises(StorageUnavailable):
            fp.read()


def composed_case(store: Storage) -> tuple[list[Piece], bytes]:
    """Chunk objects as a stream leaves them (one below S3's part minimum) and the pieces of an
    instance spanning them, its preamble zeroed; with the bytes the composition must hold."""
    chunks = {
        "c/0": pattern(6 * MIB),
        "c/1": pattern(100 * 1024)[::-1],
        "c/2": pattern(12 * MIB)[7:],
        "c/3": b"end" * 100,
    }
    for key, data in chunks.items():
        put(store, key, data)
    pieces: list[Piece] = [bytes(128), Extent("c/0", 128, 6 * MIB - 128)]
    pieces += [Extent(key, 0, len(chunks[key])) for key in ("c/1", "c/2", "c/3")]
    return pieces, bytes(128) + b"".join(chunks.values())[128:]


def test_it_composes_an_object_from_bytes_and_extents_of_other_objects(store: Storage) -> None:
    pieces, expected = composed_case(store)
    copied: list[str] = []
    sent: list[int] = []
    if isinstance(store, S3Storage):  # what goes over the wire: ranges copied in the store, bytes sent
        events = store.client.meta.events
        events.register(
            "before-parameter-build.s3.UploadPartCopy", lambda params, **_: copied.append(params["CopySourceRange"])
        )
        events.register("before-parameter-build.s3.UploadPart", lambda params, **_: sent.append(len(params["Body"])))
    assert store.compose("i/000000.dcm", pieces) == len(expected)
    with store.open("i/000000.dcm") as fp:
        assert fp.read() == expected
    assert in_progress(store) == 0
    if isinstance(store, S3Storage):
        # The first part carries the zeroed preamble and all of the first chunk (the rest would be
        # too small to copy); the small chunk tops up the next sent part; the big one is copied.
        assert sent == [6 * MIB, 5 * MIB, 300] and copied == [f"bytes={5 * MIB - 100 * 1024}-{12 * MIB - 8}"]
        assert sum(sent) + (12 * MIB - 7 - (5 * MIB - 100 * 1024)) == len(expected)


def test_it_composes_local_files_by_reading_where_the_filesystem_will_not_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path / "store")
    pieces, expected = composed_case(store)

    def refused(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refused)
    assert store.compose("i/000000.dcm", pieces) == len(expected)
    with store.open("i/000000.dcm") as fp:
        assert fp.read() == expected


def test_it_composes_a_small_object_with_one_put(s3_store: S3Storage) -> None:
    put(s3_store, "c/0", b"0123456789" * 100)
    assert s3_store.compose("i/small.dcm", [b"ab", Extent("c/0", 10, 20)]) == 22
    assert s3.multipart_uploads(s3_store) == []
    with s3_store.open("i/small.dcm") as fp:
        assert fp.read() == b"ab" + b"0123456789" * 2


def test_it_composes_nothing_when_a_source_is_missing(store: Storage) -> None:
    pieces, _ = composed_case(store)
    store.delete("c/2")
    with pytest.raises(FileNotFoundError):
        store.compose("i/000000.dcm", pieces)
    assert not store.exists("i/000000.dcm") and in_progress(store) == 0


def test_it_answers_503_when_the_store_goes_away_mid_compose_and_the_retry_succeeds(
    s3_store: S3Storage, relay: s3.Relay
) -> None:
    pieces, expected = composed_case(s3_store)
    cut = s3_store.client.meta.events.register_first
    cut("before-call.s3.UploadPartCopy", lambda **_: relay.cut(), unique_id="cut-once")
    try:
        with pytest.raises(StorageUnavailable):
            s3_store.compose("i/000000.dcm", pieces)
    finally:
        s3_store.client.meta.events.unregister("before-call.s3.UploadPartCopy", unique_id="cut-once")
        relay.mend()
    assert not s3_store.exists("i/000000.dcm")
    s3_store.partials_sweep(before=time.time() + 60)  # what the abort could not reach
    assert s3.multipart_uploads(s3_store) == []
    s3_store.compose("i/000000.dcm", pieces)
    with s3_store.open("i/000000.dcm") as fp:
        assert fp.read() == expected
