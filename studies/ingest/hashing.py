"""SHA-256 beside the write: an upload's digests are computed on a hashing thread while the
bytes go to disk on the caller's.

hashlib and file writes both release the GIL, so the two run on two cores; hashing inline
made the write wait for it (SHA-256 is the largest CPU cost of a single-instance upload,
docs/benchmarks.md). Pieces are hashed in order, one in flight per ``HashPipe``: memory stays
bounded and the shared pool serves many uploads.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

_hashers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prizmed-hash")
# Below this, handing a piece to another thread costs about what running the hash beside the
# write saves, or more when indexing competes for the cores (measured with multipart bodies of
# 80 kB and 0.5 MB instances). Single instances arrive in batches of at least 1 MiB.
INLINE_BELOW_BYTES = 1024 * 1024


class HashPipe:
    """Feeds the same bytes to several SHA-256 digests, in order, off the caller's thread."""

    def __init__(self) -> None:
        self._pending: Future[None] | None = None

    def update(self, data: bytes, *digests: hashlib._Hash) -> None:
        """Queue ``data`` for ``digests``; returns once the previous piece is hashed."""
        self.drain()
        if len(data) < INLINE_BELOW_BYTES:
            _update(data, digests)
        else:
            self._pending = _hashers.submit(_update, data, digests)

    def drain(self) -> None:
        """Wait until every queued piece is hashed (before reading a digest)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()


def _update(data: bytes, digests: tuple[hashlib._Hash, ...]) -> None:
    for digest in digests:
        digest.update(data)
