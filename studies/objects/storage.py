"""Where uploaded DICOM bytes live: one small interface, the backends behind it.

Callers see only ``Storage`` and ``ObjectWriter``: the local backend (studies/objects/local.py)
and the S3-compatible one (studies/objects/s3.py: multipart upload in ``write``, complete in
``commit``, abort in ``abort``) are interchangeable. Any method may raise ``StorageUnavailable``
(503) when the store cannot be reached. Keys come from ids and hashes the server
makes, never from payload content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeAlias

from core.errors import ApiError

MAX_KEY_CHARS = 512
PARTIAL_DIR = ".partial"  # where objects being written are staged, out of every key's reach
KEY_RE = re.compile(r"[A-Za-z0-9._/-]+")


class StorageUnavailable(ApiError, OSError):
    """The object store cannot be reached or keeps failing (after the backend's own retries):
    503 with Retry-After, nothing acknowledged; the client sends the request again. An OSError
    too, so what retries a failing disk (the index tasks) retries an unreachable store alike."""

    def __init__(self) -> None:
        super().__init__(503, "The object store is unavailable; try again shortly.", slug="storage-unavailable",
                         headers=[("Retry-After", "5")])  # fmt: skip


@dataclass(frozen=True, slots=True)
class Extent:
    """``length`` bytes of the object ``key`` from ``offset``: a piece ``Storage.compose`` copies."""

    key: str
    offset: int
    length: int


Piece: TypeAlias = bytes | Extent  # of an object being composed: literal bytes, or an extent to copy


class ObjectWriter(Protocol):
    """An object being written: invisible to readers until ``commit``."""

    size: int  # bytes written so far

    def write(self, data: bytes) -> None: ...

    def commit(self, *, durable: bool = True) -> None:
        """Make the object visible under its key, replacing any previous one; durable unless
        ``durable=False``, which defers that to one ``Storage.sync`` over many objects (and, on
        S3, the PUT itself: nothing may read the object, nor count on it, before that sync)."""
        ...

    def abort(self) -> None:
        """Drop what was written; safe to call twice, and a no-op after ``commit``."""
        ...


class Storage(Protocol):
    """A flat key -> bytes store; "/" in keys is only a naming convention."""

    # An object smaller than this costs less written from bytes in hand than composed from
    # extents (S3: the smallest part a multipart upload takes but the last).
    compose_min_bytes: int

    def writer(self, key: str, *, staged: bool = True) -> ObjectWriter:
        """``staged=False`` may show the object under its key, incomplete, while it is written:
        only for keys nothing reads until the caller says so (an upload's own instances, which
        its discard removes by prefix), where staging would cost a rename per object."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A seekable reader; FileNotFoundError if the key is missing. Reads fetch only what
        they ask for (a header read never transfers the whole object)."""
        ...

    def open_range(self, key: str, offset: int, length: int) -> BinaryIO:
        """A reader positioned at ``offset`` for the ``length`` bytes from there (an extent the
        index recorded): the caller reads at most that much. FileNotFoundError if the key is
        missing, at open or at the first read."""
        ...

    def read_into(self, key: str, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the object's bytes from ``offset`` (an extent the index recorded),
        at the least cost per object the backend allows (many small extents in a row: a WADO-RS
        study). FileNotFoundError if the key is missing; OSError if the object ends first."""
        ...

    def compose(self, key: str, pieces: Sequence[Piece]) -> int:
        """Make ``key`` the concatenation of ``pieces`` (literal bytes, and extents of other
        objects, which the store copies itself: server-side part copy on S3, copy_file_range
        on local files, so they never pass through this process where the store allows),
        durably, replacing any object; returns its size in bytes. Nothing is visible under
        ``key`` unless this returns. FileNotFoundError if a source is missing; an extent past a
        source's end is refused (OSError locally, the store's InvalidRange on S3); on any
        failure what was written is dropped."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is fine (deletes are retried)."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove these objects, in as few requests as the backend allows; missing keys are fine."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def uri(self, key: str) -> str: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def sync(self, keys: Sequence[str]) -> None:
        """Make objects committed with ``durable=False`` durable, all at once."""
        ...

    def check(self) -> None:
        """Raise (OSError, StorageUnavailable) unless the store takes requests now: readiness."""
        ...

    def partials_sweep(self, *, before: float) -> int:
        """Remove objects still being written that nobody wrote to since ``before`` (epoch
        seconds): what a process killed mid-write left. Returns how many."""
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative name; raise ValueError otherwise.

    Safe: 1-512 chars of ``[A-Za-z0-9._/-]``, no leading or trailing "/", no empty segment,
    no "." or ".." anywhere a path could climb, and not inside the ``.partial/`` area.
    """
    if not 0 < len(key) <= MAX_KEY_CHARS or not KEY_RE.fullmatch(key):
        raise ValueError("storage key must be 1-512 characters of [A-Za-z0-9._/-]")
    segments = key.split("/")
    if ".." in key or any(s in ("", ".") for s in segments) or segments[0] == PARTIAL_DIR:
        raise ValueError("storage key must be a plain relative path")
    return key
