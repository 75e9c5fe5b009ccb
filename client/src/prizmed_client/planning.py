"""Which files to send and how: walking the paths, skipping non-DICOM, cutting by size.

A file is DICOM for the client when it is Part-10 (``DICM`` at offset 128 and a readable File
Meta group, PS3.10 §7.1): the server refuses anything else with 422, and one such file would
sink a whole batch, so it is skipped and reported before a byte is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prizmed_client.config import Settings
from prizmed_client.multipart import multipart_length
from prizmed_client.part10 import NotPart10, read_file_meta
from prizmed_client.state import FileKey, file_sha256


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A Part-10 file to upload: where, how big (bytes), its resume key and SOP Instance UID."""

    path: Path
    size: int
    key: FileKey
    sop_instance_uid: str | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path not uploaded, and why (not DICOM, unreadable, missing)."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Small files in one ``application/dicom+stream`` request (one file: ``application/dicom``)."""

    files: tuple[LocalFile, ...]

    def body_bytes(self, boundary_len: int = 40) -> int:
        """The request body's size in bytes (multipart framing included)."""
        if len(self.files) == 1:
            return self.files[0].size
        return multipart_length([f.size for f in self.files], "x" * boundary_len)


@dataclass(frozen=True, slots=True)
class Chunked:
    """A large file sent as a chunked, resumable stream."""

    file: LocalFile


Step = Batch | Chunked


def walk(paths: Iterable[Path]) -> Iterable[Path]:
    """Every regular file under ``paths`` (folders recursively, sorted; symlinked folders not followed)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield Path(root) / name
        else:
            yield path


def scan(paths: Iterable[Path], settings: Settings) -> tuple[list[LocalFile], list[Skipped]]:
    """Read each file's head: Part-10 files to send, and the rest with the reason they are skipped.

    Files small enough to be batched are hashed too (their key includes the SHA-256).
    """
    found: list[LocalFile] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for path in walk(paths):
        try:
            meta = read_file_meta(path)
            size = path.stat().st_size
            key = FileKey.of(path, sha256=file_sha256(path) if size <= settings.batch_file_max else None)
        except NotPart10 as exc:
            skipped.append(Skipped(path, f"not DICOM Part-10: {exc}"))
            continue
        except OSError as exc:
            skipped.append(Skipped(path, f"unreadable: {exc.strerror or exc}"))
            continue
        if key.path not in seen:  # the same file named twice on the command line
            seen.add(key.path)
            found.append(LocalFile(path, size, key, meta.sop_instance_uid))
    return found, skipped


def plan(files: Sequence[LocalFile], settings: Settings) -> list[Step]:
    """Cut by size: batches of small files first, then medium files alone, then large streams.

    A batch holds at most ``batch_max_files`` files and ``batch_max_bytes`` bytes of them.
    """
    small = [f for f in files if f.size <= settings.batch_file_max]
    medium = [f for f in files if settings.batch_file_max < f.size <= settings.stream_threshold]
    large = [f for f in files if f.size > settings.stream_threshold]
    steps: list[Step] = []
    current: list[LocalFile] = []
    for f in small:
        if current and (
            len(current) >= settings.batch_max_files or sum(c.size for c in current) + f.size > settings.batch_max_bytes
        ):
            steps.append(Batch(tuple(current)))
            current = []
        current.append(f)
    if current:
        steps.append(Batch(tuple(current)))
    steps += [Batch((f,)) for f in medium]
    steps += [Chunked(f) for f in large]
    return steps
