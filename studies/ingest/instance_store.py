"""Where the receive pipeline puts each instance: its own object, hashed as it is written, its
File Meta group kept for indexing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dicom.part10 import FileMeta
from studies.ingest.hashing import HashPipe
from studies.ingest.object_keys import instance_key
from studies.objects.storage import ObjectWriter
from studies.objects.store import storage


@dataclass(frozen=True, slots=True)
class StoredItem:
    position: int
    object_key: str
    size: int
    sha256: str
    meta: FileMeta  # its File Meta group, read once here and kept for indexing


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
        return instance_key(self._prefix, len(self.items))

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
        storage().delete_many([item.object_key for item in self.items])
        self.items = []
