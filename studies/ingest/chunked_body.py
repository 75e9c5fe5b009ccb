"""A chunked stream's payload as its chunk objects lie in the store: body offsets to extents."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from studies.objects.storage import Extent


class ChunkedBody:
    """The payload of a stream: its chunks' objects, in seq order, end to end."""

    def __init__(self, chunks: Sequence[tuple[str, int]]) -> None:
        """``chunks``: (object key, size in bytes) of each chunk, in seq order."""
        self.chunks = list(chunks)
        self._starts = [0]
        for _, size in self.chunks:
            self._starts.append(self._starts[-1] + size)
        self.size = self._starts[-1]

    def extents(self, offset: int, length: int) -> list[Extent]:
        """The extents of the chunk objects holding body bytes ``[offset, offset + length)``.
        ValueError if the range leaves the body."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"bytes {offset}+{length} are outside the {self.size}-byte body")
        out = []
        at = bisect.bisect_right(self._starts, offset) - 1
        while length:
            key, size = self.chunks[at]
            inside = offset - self._starts[at]
            take = min(length, size - inside)
            if take:
                out.append(Extent(key, inside, take))
            offset, length, at = offset + take, length - take, at + 1
        return out
