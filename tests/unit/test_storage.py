"""studies.objects: LocalStorage behind the Storage interface, no Django needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studies.objects.local import LocalStorage
from studies.objects.storage import ObjectWriter, Storage

KEY = "acme/studies/1.2.3/series/4.5.6/7.8.9.dcm"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


def partial_files(storage: LocalStorage) -> list[Path]:
    return list((storage.root / ".partial").iterdir())


def write(storage: Storage, key: str, *pieces: bytes) -> ObjectWriter:
    writer = storage.writer(key)
    for piece in pieces:
        writer.write(piece)
    return writer


def test_it_makes_the_object_visible_only_on_commit(storage: LocalStorage) -> None:
    writer = write(storage, KEY, b"DICM", b"x" * 5000)
    assert not storage.exists(KEY)
    assert writer.size == 5004
    writer.commit()
    assert storage.exists(KEY)
    assert storage.size(KEY) == 5004
    with storage.open(KEY) as f:
        assert f.read() == b"DICM" + b"x" * 5000
    assert storage.path(KEY).read_bytes() == b"DICM" + b"x" * 5000
    assert partial_files(storage) == []


def test_it_leaves_nothing_behind_on_abort(storage: LocalStorage) -> None:
    writer = write(storage, KEY, b"partial bytes")
    assert len(partial_files(storage)) == 1
    writer.abort()
    writer.abort()  # idempotent
    assert not storage.exists(KEY)
    assert partial_files(storage) == []
    assert list(storage.keys("")) == []


def test_it_keeps_a_committed_object_when_abort_follows(storage: LocalStorage) -> None:
    writer = write(storage, KEY, b"abc")
    writer.commit()
    writer.abort()
    assert storage.path(KEY).read_bytes() == b"abc"


def test_it_refuses_writes_after_commit(storage: LocalStorage) -> None:
    writer = write(storage, KEY, b"abc")
    writer.commit()
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit()


def test_it_replaces_an_object_on_a_second_commit(storage: LocalStorage) -> None:
    write(storage, KEY, b"old").commit()
    write(storage, KEY, b"new!").commit()
    assert storage.path(KEY).read_bytes() == b"new!"


def test_it_deletes_idempotently(storage: LocalStorage) -> None:
    write(storage, KEY, b"abc").commit()
    storage.delete(KEY)
    storage.delete(KEY)
    assert not storage.exists(KEY)


def test_it_raises_for_a_missing_object(storage: LocalStorage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.size(KEY)
    with pytest.raises(FileNotFoundError):
        storage.open(KEY)


def test_it_lists_keys_by_prefix_without_partial_files(storage: LocalStorage) -> None:
    for key in ["a/1.dcm", "a/2.dcm", "ab/3.dcm", "b/4.dcm"]:
        write(storage, key, b"x").commit()
    pending = write(storage, "a/5.dcm", b"x")
    assert list(storage.keys("a/")) == ["a/1.dcm", "a/2.dcm"]
    assert list(storage.keys("a")) == ["a/1.dcm", "a/2.dcm", "ab/3.dcm"]
    assert list(storage.keys("")) == ["a/1.dcm", "a/2.dcm", "ab/3.dcm", "b/4.dcm"]
    assert list(storage.keys("missing/")) == []
    assert list(storage.keys(".partial/")) == []
    pending.abort()


def test_it_gives_uris_that_hide_the_server_path(storage: LocalStorage) -> None:
    assert storage.uri(KEY) == f"file://prizmed/{KEY}"
    assert str(storage.root) not in storage.uri(KEY)
    assert LocalStorage(storage.root, uri_prefix="s3://bucket/pre/").uri("k") == "s3://bucket/pre/k"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../b",
        "a/..",
        "a..b",
        "a//b",
        "a/./b",
        "a/",
        ".",
        "a b",
        "a\\b",
        "a\x00b",
        "é.dcm",
        ".partial/x",
        "x" * 513,
    ],
)
def test_it_rejects_bad_keys(storage: LocalStorage, key: str) -> None:
    with pytest.raises(ValueError):
        storage.writer(key)
    with pytest.raises(ValueError):
        storage.path(key)
    with pytest.raises(ValueError):
        storage.delete(key)


def test_it_accepts_a_512_character_key(storage: LocalStorage) -> None:
    key = "/".join(["k" * 127] * 4)
    assert len(key) == 511
    write(storage, key + "k", b"x").commit()
    assert storage.exists(key + "k")


def test_it_defers_durability_to_one_sync_over_many_objects(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    keys = [f"u/1/{i:06d}.dcm" for i in range(5)]
    for i, key in enumerate(keys):
        writer = storage.writer(key)
        writer.write(bytes([i]) * 10)
        writer.commit(durable=False)
    created_dirs = len(synced)  # new directories are made durable as they are created
    assert [storage.open(k).read() for k in keys] == [bytes([i]) * 10 for i in range(5)]  # visible at once
    storage.sync(keys)
    assert len(synced) - created_dirs == 5 + 1  # every file, then their one directory
    with pytest.raises(FileNotFoundError):
        storage.sync(["u/1/missing.dcm"])


def test_it_writes_a_large_object_back_while_it_arrives_and_waits_for_it(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studies.objects.local as module

    monkeypatch.setattr(module, "WRITEBACK_EVERY_BYTES", 1024)
    synced: list[int] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    pieces = [bytes([n]) * 1500 for n in range(8)]
    write(storage, KEY, *pieces).commit()
    assert storage.path(KEY).read_bytes() == b"".join(pieces)
    assert synced and all(size >= 1500 for size in synced)  # started before the commit
    aborted = write(storage, "other/key", *pieces)
    aborted.abort()
    assert partial_files(storage) == []


def test_it_writes_an_unstaged_object_in_place_and_removes_it_on_abort(storage: LocalStorage) -> None:
    writer = storage.writer(KEY, staged=False)
    writer.write(b"DICM")
    assert storage.exists(KEY) and partial_files(storage) == []  # in place, no temp file
    writer.commit(durable=False)
    storage.sync([KEY])
    assert storage.path(KEY).read_bytes() == b"DICM"
    dropped = storage.writer("x/unstaged.dcm", staged=False)
    dropped.write(b"DI")
    dropped.abort()
    assert not storage.exists("x/unstaged.dcm")
