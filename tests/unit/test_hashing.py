"""studies.ingest.hashing: digests fed off-thread equal the digests fed inline, in any mix of sizes."""

from __future__ import annotations

import hashlib
import os

import pytest

from studies.ingest.hashing import INLINE_BELOW_BYTES, HashPipe


def test_it_gives_the_inline_digests_for_small_and_large_pieces_in_order() -> None:
    pieces = [
        os.urandom(n)
        for n in (10, INLINE_BELOW_BYTES * 3, 7, INLINE_BELOW_BYTES, INLINE_BELOW_BYTES - 1, INLINE_BELOW_BYTES * 5, 1)
    ]
    one, both = hashlib.sha256(), hashlib.sha256()
    pipe = HashPipe()
    for n, piece in enumerate(pieces):
        if n < 3:
            pipe.update(piece, one, both)
        else:
            pipe.update(piece, both)
    pipe.drain()
    assert one.hexdigest() == hashlib.sha256(b"".join(pieces[:3])).hexdigest()
    assert both.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_it_raises_a_failed_update_at_the_next_call() -> None:
    class Broken:
        def update(self, data: bytes) -> None:
            raise RuntimeError("boom")

    pipe = HashPipe()
    pipe.update(bytes(INLINE_BELOW_BYTES), Broken())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        pipe.drain()
    pipe.drain()  # reported once
