"""Where the receive pipeline puts each instance: its own object, hashed as it is written, its
File Meta group kept for indexing.

An instance of a chunked stream's payload is already in the store, in the chunk objects: one
of at least ``Storage.compose_min_bytes`` is composed from their extents in the store (issue
15: reassembly moves no payload bytes back up), only hashed here; a smaller one is written
from the bytes in hand, which costs less than copying pieces of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dicom.part10 import PREAMBLE_BYTES, FileMeta
from studies.ingest.chunked_body import ChunkedBody
from studies.ingest.hashing import HashPipe
from studies.ingest.object_keys import instance_key
from studies.objects.storage import ObjectWriter, Piece
from studies.objects.store import storage


@dataclass(frozen=True, slots=True)
class StoredItem:
    position: int
    object_key: str
    size: int
    sha256: str
    meta: FileMeta  # its File Meta group, read once here and kept for indexing


class InstanceStore:
    """An ``InstanceSink`` writing each instance to ``<prefix><position:06d>.dcm``; with a
    ``source`` (the body's chunk objects), composing the large ones from it instead."""

    def __init__(self, prefix: str, *, many: bool, source: ChunkedBody | None = None) -> None:
        self._prefix = prefix
        self._source = source
        self._offset = 0  # of the current instance in the body
        self._held: bytearray | None = None  # its bytes, while it may still be written from them
        self._size = 0
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
        return instance_key(self._prefix, len(self.items))

    def begin(self, offset: int) -> None:
        self._hash = hashlib.sha256()
        self._offset, self._size = offset, 0
        if self._source is not None:
            self._held = bytearray()
            return
        # Unstaged when many: nothing reads an upload's objects before it completes, and a
        # failed or dead upload is discarded by prefix; one rename less per instance.
        self._writer = storage().writer(self._key(), staged=self._durable_each)

    def data(self, data: bytes) -> None:
        if self._total is None:
            self._hashing.update(data, self._hash)
        else:
            self._hashing.update(data, self._hash, self._total)
        self._size += len(data)
        if self._writer is not None:
            self._writer.write(data)
        elif self._held is not None:
            self._held += data
            if len(self._held) >= storage().compose_min_bytes:
                self._held = None  # large enough to compose from the chunks at its end

    def end(self, meta: FileMeta) -> None:
        self._hashing.drain()
        writer, self._writer = self._writer, None
        if writer is None and self._held is not None:
            writer = storage().writer(self._key(), staged=self._durable_each)
            writer.write(bytes(self._held))
            self._held = None
        if writer is not None:
            writer.commit(durable=self._durable_each)  # on failure the writer removes its temp file
        else:
            storage().compose(self._key(), self._pieces())  # durable when it returns
        self.items.append(StoredItem(len(self.items), self._key(), self._size, self._hash.hexdigest(), meta))

    def _pieces(self) -> list[Piece]:
        """The instance as the body's extents: its bytes are the body's, but for the preamble
        Part10Head zeroed (dicom/part10.py)."""
        assert self._source is not None
        zeroed: list[Piece] = [bytes(PREAMBLE_BYTES)]
        return zeroed + list(self._source.extents(self._offset + PREAMBLE_BYTES, self._size - PREAMBLE_BYTES))

    def sync(self) -> None:
        if not self._durable_each:
            storage().sync([item.object_key for item in self.items])  # composed ones are durable already

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
        self._held = None
        storage().delete_many([item.object_key for item in self.items])
        self.items = []
