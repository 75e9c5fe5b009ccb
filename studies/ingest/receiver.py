"""The receive pipeline: body bytes in, one stored object per instance out, hashed on the way.

One ``Receiver`` serves every way bytes reach the server: a single HTTP request (fed by the
consumer as `http.request` messages arrive), a reassembled chunked stream (fed from its chunk
objects) and any other transport that can hand over bytes in order (WebSocket). It is
synchronous and does blocking file I/O: async callers run ``feed``/``finish``/``abort`` in a
worker thread, one call at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from studies.ingest.chunked_body import ChunkedBody
from studies.ingest.content_type import ContentType
from studies.ingest.instance_store import InstanceStore, StoredItem
from studies.ingest.object_keys import upload_prefix
from studies.ingest.payload_parser import PayloadParser


@dataclass(frozen=True, slots=True)
class Received:
    items: list[StoredItem]
    bytes_received: int  # body bytes, framing included
    sha256: str  # of the bytes stored: the instance objects, in order


class Receiver:
    """Parse and store one upload's body: ``feed`` pieces in order, then ``finish`` or ``abort``.

    Raises what PayloadParser raises; after an exception the caller must ``abort``. ``source``:
    the body is a stream's, fed from these chunk objects (InstanceStore composes from them).
    """

    def __init__(
        self, content_type: ContentType, *, organization_id: int, upload_id: str, source: ChunkedBody | None = None
    ) -> None:
        prefix = upload_prefix(organization_id, upload_id)
        self._store = InstanceStore(prefix, many=content_type.boundary is not None, source=source)
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
