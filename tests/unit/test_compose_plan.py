"""How an object composed in the store is cut into multipart-upload parts (studies/objects/s3.py
``part_plan``), and how a chunked stream's body offsets map to its chunk objects
(studies/ingest/chunked_body.py): S3's part rules hold for any pieces, and no byte moves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studies.ingest.chunked_body import ChunkedBody
from studies.objects.s3 import part_plan
from studies.objects.storage import Extent, Piece

MIN, MAX = 50, 400  # part bounds scaled down: the rules, not S3's numbers, are under test


def source(key: str, offset: int, length: int) -> bytes:
    """Bytes of the fake object ``key``: every (key, offset) reads differently."""
    seed = sum(map(ord, key))
    return bytes((seed + i * 7 + i // 251) % 256 for i in range(offset, offset + length))


def expand(pieces: list[Piece]) -> bytes:
    return b"".join(p if isinstance(p, bytes) else source(p.key, p.offset, p.length) for p in pieces)


pieces_strategy = st.lists(
    st.one_of(
        st.binary(min_size=0, max_size=MIN),  # literals no larger than a part, like a preamble
        st.builds(Extent, st.sampled_from(["c0", "c1", "c2"]), st.integers(0, 1000), st.integers(0, 1200)),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(pieces_strategy)
def test_it_keeps_every_byte_in_order_and_every_part_within_s3s_rules(pieces: list[Piece]) -> None:
    parts = part_plan(pieces, min_part=MIN, max_part=MAX)
    flat: list[Piece] = []
    for part in parts:
        flat.extend([part] if isinstance(part, Extent) else part)
    assert expand(flat) == expand(pieces)
    sizes = [part.length if isinstance(part, Extent) else len(expand(part)) for part in parts]
    assert all(size >= MIN for size in sizes[:-1])  # only the last part may be small
    for part, size in zip(parts, sizes, strict=True):
        if isinstance(part, Extent):
            assert MIN <= size <= MAX  # copied in the store
        else:
            assert size < 2 * MIN  # sent from the process: bounded memory


def test_it_copies_the_chunks_and_sends_only_a_first_part_with_the_preamble() -> None:
    chunks = [Extent(f"c{i}", 0, 8 * MIN) for i in range(3)]
    pieces: list[Piece] = [bytes(10), Extent("c0", 10, 8 * MIN - 10), *chunks[1:]]
    parts = part_plan(pieces, min_part=MIN, max_part=MAX)
    # The preamble goes up with what it takes to make a part; the rest of the chunks is copied.
    assert parts == [[bytes(10), Extent("c0", 10, MIN - 10)], Extent("c0", MIN, 7 * MIN), chunks[1], chunks[2]]


def test_it_sends_the_rest_of_an_extent_along_when_it_would_be_too_small_to_copy() -> None:
    pieces: list[Piece] = [bytes(10), Extent("c0", 10, MIN + 20), Extent("c1", 0, 3 * MIN)]
    parts = part_plan(pieces, min_part=MIN, max_part=MAX)
    assert parts == [[bytes(10), Extent("c0", 10, MIN + 20)], Extent("c1", 0, 3 * MIN)]


def test_it_splits_an_extent_over_the_largest_part_into_equal_copies() -> None:
    parts = part_plan([Extent("c0", 0, 3 * MAX + 1)], min_part=MIN, max_part=MAX)
    assert [p.length for p in parts if isinstance(p, Extent)] == [301, 301, 301, 298]
    assert sum(p.length for p in parts if isinstance(p, Extent)) == 3 * MAX + 1


def test_it_sends_what_is_all_below_a_part_as_one_part() -> None:
    pieces: list[Piece] = [b"ab", Extent("c0", 0, 10), Extent("c1", 5, 10)]
    assert part_plan(pieces, min_part=MIN, max_part=MAX) == [pieces]


@given(st.lists(st.integers(0, 300), min_size=1, max_size=8), st.data())
def test_chunked_body_maps_any_range_to_the_chunks_holding_it(sizes: list[int], data: st.DataObject) -> None:
    body = ChunkedBody([(f"c{i}", size) for i, size in enumerate(sizes)])
    whole = b"".join(source(f"c{i}", 0, size) for i, size in enumerate(sizes))
    offset = data.draw(st.integers(0, body.size))
    length = data.draw(st.integers(0, body.size - offset))
    extents = body.extents(offset, length)
    assert expand(list(extents)) == whole[offset : offset + length]
    assert all(e.length > 0 for e in extents)


def test_chunked_body_refuses_a_range_outside_the_body() -> None:
    body = ChunkedBody([("c0", 10), ("c1", 5)])
    with pytest.raises(ValueError, match="outside"):
        body.extents(10, 6)
