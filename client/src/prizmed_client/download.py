"""Retrieving a study over DICOMweb WADO-RS into a folder (DICOM PS3.18 §10.4).

``GET {api}/dicomweb/studies/{study}`` with ``Accept: multipart/related;
type="application/dicom"; transfer-syntax=*`` (the instances as stored, §8.7.3.5.2) answers a
``multipart/related`` body, one Part-10 instance per part (§8.6.1.2). Each part is streamed to
a temporary file in the folder while its first bytes are kept until the File Meta group is
complete; the part's own Media Storage SOP Instance UID (0002,0003) then names it
``<SOPInstanceUID>.dcm``. Memory stays bounded by one piece plus 64 KiB, whatever the study's size.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from prizmed_client.multipart import MultipartError, MultipartReader, PartData, PartEnd, PartStart, boundary_of
from prizmed_client.part10 import READ_AHEAD, NotPart10, read_meta

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
_UID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class PartWriter:
    """Writes the parts of one multipart/related body into ``dest``, named by SOP Instance UID."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.written: list[Path] = []
        self._fh: IO[bytes] | None = None
        self._temp: Path | None = None
        self._head = b""
        self._index = 0

    def write_body(self, content_type: str, pieces: Iterable[bytes]) -> list[Path]:
        """Parse a whole body (its Content-Type carries the boundary). Returns the files written;
        raises MultipartError (framing) or NotPart10 (a part that is not a Part-10 instance),
        leaving no partial file behind."""
        reader = MultipartReader(boundary_of(content_type))
        try:
            for piece in pieces:
                for event in reader.feed(piece):
                    self._event(event)
            reader.close()
        except BaseException:
            self._discard()
            raise
        return self.written

    def _event(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            media = event.headers.get("content-type", "application/dicom").partition(";")[0].strip().lower()
            if media not in ("application/dicom", "application/octet-stream"):
                raise MultipartError(f"part {self._index + 1} is {media}, not application/dicom")
            self._index += 1
            fd, name = tempfile.mkstemp(prefix=".part-", suffix=".dcm", dir=self.dest)
            self._fh, self._temp = os.fdopen(fd, "wb"), Path(name)
            self._head = b""
        elif isinstance(event, PartData):
            assert self._fh is not None
            if len(self._head) < READ_AHEAD:
                self._head += event.data[: READ_AHEAD - len(self._head)]
            self._fh.write(event.data)
        else:
            self._finish_part()

    def _finish_part(self) -> None:
        assert self._fh is not None and self._temp is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        meta = read_meta(self._head)  # NotPart10 for a part that is no DICOM instance
        self._fh.close()
        temp, self._fh, self._temp = self._temp, None, None
        uid = meta.sop_instance_uid
        # The UID becomes a file name: only digits and dots, so no part can write elsewhere.
        name = f"{uid}.dcm" if uid and _UID_RE.fullmatch(uid) else f"part-{self._index:06d}.dcm"
        final = self.dest / name
        temp.replace(final)
        self.written.append(final)

    def _discard(self) -> None:
        if self._fh is not None and self._temp is not None:
            self._fh.close()
            self._temp.unlink(missing_ok=True)
            self._fh = self._temp = None


__all__ = ["ACCEPT", "MultipartError", "NotPart10", "PartWriter"]
