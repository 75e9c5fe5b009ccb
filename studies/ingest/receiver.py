"""The receive pipeline: body bytes in, one stored object per instance out, hashed on the way.

One ``Receiver`` serves every way bytes reach the server: a single HTTP request (fed by the
consumer as `http.request` messages arrive), a reassembled chunked stream (fed from its chunk
objects) and any other transport that can hand over bytes in order (WebSocket). It is
synchronous and does blocking file I/O: async callers run ``feed``/``finish``/``abort`` in a
worker thread, one call at a time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dicom.part10 import FileMeta
from studies.ingest.content_type import ContentType
from studies.ingest.hashing import HashPipe
from studies.ingest.payload_parser import PayloadParser
from studies.objects.storage import ObjectWriter
from studies.objects.store import storage


@dataclass(frozen=True, slots=True)
class StoredItem:
    position: int
    object_key: str
    size: int
    sha256: str
    meta: FileMeta  # its File Meta group, read once here and kept for indexing


@dataclass(frozen=True, slots=True)
class Received:
    items: list[StoredItem]
    bytes_received: int  # body bytes, framing included
    sha256: str  # of the bytes stored: the instance objects, in order


def upload_prefix(organization_id: int, upload_id: str) -> str:
    """Where an upload's instances live (the key scheme the indexer relies on)."""
    return f"uploads/{organization_id}/{upload_id}/"


class InstanceStore:
    """An ``InstanceSink`` writing each instance to ``<prefix><position:06d>.dcm``."""

    def __init__(self, prefix: str, *, many: bool) -> None:
        self._prefix = prefix
        # A single instance's own digest is the upload's; only a multipart body needs a
        # second digest over the concatenation of its instances.
        self._total = hashlib.sha256() if many else None
        # Many instances are made durable together at the end (one parallel sync instead of
        # two fsyncs each): nothing is acknowledged before that, and an upload that dies
        # first is discarded whole (uploads_sweep), torn objects included.
        self._durable_each = not many
        self._writer: ObjectWriter | None = None
        self._hash = hashlib.sha256()
        self._hashing = HashPipe()
        self.items: list[StoredItem] = []

    def _key(self) -> str:
        return f"{self._prefix}{len(self.items):06d}.dcm"

    def begin(self) -> None:
        # Unstaged when many: nothing reads an upload's objects before it completes, and a
        # failed or dead upload is discarded by prefix; one rename less per instance.
        self._writer = storage().writer(self._key(), staged=self._durable_each)
        self._hash = hashlib.sha256()

    def data(self, data: bytes) -> None:
        assert self._writer is not None
        if self._total is None:
            self._hashing.update(data, self._hash)
        else:
            self._hashing.update(data, self._hash, self._total)
        self._writer.write(data)

    def end(self, meta: FileMeta) -> None:
        assert self._writer is not None
        self._hashing.drain()
        writer, self._writer = self._writer, None
        writer.commit(durable=self._durable_each)  # on failure the writer removes its temp file
        self.items.append(StoredItem(len(self.items), self._key(), writer.size, self._hash.hexdigest(), meta))

    def sync(self) -> None:
        if not self._durable_each:
            storage().sync([item.object_key for item in self.items])

    def sha256(self) -> str:
        self._hashing.drain()
        if self._total is None:
            return self.items[0].sha256 if self.items else hashlib.sha256().hexdigest()
        return self._total.hexdigest()

    def abort(self) -> None:
        """Remove everything written: the object in progress and every committed one."""
        try:
            self._hashing.drain()
        except Exception:  # noqa: BLE001 - the upload is being thrown away; its digests with it
            pass
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        for item in self.items:
            storage().delete(item.object_key)
        self.items = []


class Receiver:
    """Parse and store one upload's body: ``feed`` pieces in order, then ``finish`` or ``abort``.

    Raises what PayloadParser raises; after an exception the caller must ``abort``.
    """

    def __init__(self, content_type: ContentType, *, organization_id: int, upload_id: str) -> None:
        self._store = InstanceStore(upload_prefix(organization_id, upload_id), many=content_type.boundary is not None)
        self._parser = PayloadParser(content_type, self._store)
        self.bytes_received = 0

    @property
    def head_checked(self) -> bool:
        return self._parser.head_checked

    def feed(self, data: bytes) -> None:
        self.bytes_received += len(data)
        self._parser.feed(data)

    def finish(self) -> Received:
        self._parser.finish()
        self._store.sync()
        return Received(list(self._store.items), self.bytes_received, self._store.sha256())

    def abort(self) -> None:
        self._store.abort()
