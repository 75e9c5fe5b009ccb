"""How a `POST /dicom/stream` body splits into Part-10 instances, each head checked as it arrives.

The parser is push-style and knows nothing of HTTP or storage: the consumer feeds it request
bytes, stream reassembly feeds it chunk objects, and it calls an ``InstanceSink`` for each
instance's bytes (preamble zeroed), so every path shares one validation.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from dicom.multipart import MultipartParser, PartData, PartEnd, PartStart
from dicom.part10 import FileMeta, NotDicom, Part10Head
from studies.ingest.content_type import SINGLE_TYPES, ContentType, UnsupportedMediaType

# Parts of a STOW-RS style body are application/dicom (PS3.18 §10.5); clients also send
# octet-stream or leave the header out.
PART_TYPES = ("", *SINGLE_TYPES)


class InstanceSink(Protocol):
    """Where the parser sends each instance: begin, its bytes in order, end."""

    def begin(self, offset: int) -> None:
        """An instance starts ``offset`` bytes into the body: its bytes are the body's from
        there on, contiguous, except the preamble (its first 128 bytes), sent zeroed."""
        ...

    def data(self, data: bytes) -> None: ...

    def end(self, meta: FileMeta) -> None: ...


class NullSink:
    """Discards everything: for checking bytes that are not stored as instances (chunk 0)."""

    def begin(self, offset: int) -> None:
        pass

    def data(self, data: bytes) -> None:
        pass

    def end(self, meta: FileMeta) -> None:
        pass


class DigestSink:
    """Stores nothing; hashes the instances' bytes as InstanceStore would store them (one
    SHA-256 over them all, in order), so a body's fingerprint can be compared with an upload's
    ``sha256`` without writing it (a replayed request id)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def begin(self, offset: int) -> None:
        pass

    def data(self, data: bytes) -> None:
        self._hash.update(data)

    def end(self, meta: FileMeta) -> None:
        pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class PayloadParser:
    """Split a body into instances and check each one's Part-10 head as its bytes arrive.

    Raises NotDicom (422), MultipartError (422) or UnsupportedMediaType (415, a part that is
    not DICOM). ``head_checked`` turns true once the first instance's 132-byte head passed, so
    a caller can stop reading ahead until then and refuse a non-DICOM body early.
    """

    def __init__(self, content_type: ContentType, sink: InstanceSink) -> None:
        self._sink = sink
        self._head: Part10Head | None = None
        self._multipart = MultipartParser(content_type.boundary) if content_type.boundary else None
        self.instances = 0

    @property
    def head_checked(self) -> bool:
        return self.instances > 1 or (self._head is not None and self._head.done)

    def feed(self, data: bytes) -> None:
        if self._multipart is None:
            if self._head is None:
                self._begin(0)
            self._data(data)
            return
        for event in self._multipart.feed(data):
            if isinstance(event, PartData):
                self._data(event.data)
            elif isinstance(event, PartStart):
                part_type = event.headers.get("content-type", "").partition(";")[0].strip().lower()
                if part_type not in PART_TYPES:
                    raise UnsupportedMediaType(f"part {self.instances + 1} is {part_type}, not application/dicom")
                self._begin(event.offset)
            elif isinstance(event, PartEnd):
                self._end()

    def finish(self) -> None:
        """End of body: complete the last instance; raise if the body was empty or cut short."""
        if self._multipart is None:
            if self._head is None:
                raise NotDicom("the body is empty")
            self._end()
            return
        self._multipart.close()
        if self.instances == 0:
            raise NotDicom("the multipart body holds no instance")

    def _begin(self, offset: int) -> None:
        self._head = Part10Head()
        self.instances += 1
        self._sink.begin(offset)

    def _data(self, data: bytes) -> None:
        assert self._head is not None
        out = self._head.feed(data)
        if out:
            self._sink.data(out)

    def _end(self) -> None:
        assert self._head is not None
        self._head.finish()
        assert self._head.meta is not None
        self._sink.end(self._head.meta)
