"""``PrizMedClient``: the PrizMed API v2 from Python (API.md §1, §3, §6, §7).

Every call goes through one ``Transport`` (key, request ids, pacing within the plan's rate,
``Retry-After``, retries), so a program that uploads, searches and follows records at once
from one client never exceeds the rate either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from prizmed_client.config import Settings
from prizmed_client.download import ACCEPT, PartWriter
from prizmed_client.records import RecordEvent, RecordQuery, RecordStream
from prizmed_client.report import Progress, UploadReport
from prizmed_client.state import ResumeState, state_path
from prizmed_client.transport import Transport
from prizmed_client.upload import Uploader


class PrizMedClient:
    """A client of one server with one key. Use as a context manager, or call ``close``."""

    def __init__(self, settings: Settings, *, transport: Transport | None = None) -> None:
        self.settings = settings
        self.transport = transport or Transport(settings)

    @classmethod
    def from_env(cls) -> PrizMedClient:
        """A client configured by ``PRIZMED_URL`` and ``PRIZMED_API_KEY``. Raises ConfigError."""
        return cls(Settings.from_env())

    def __enter__(self) -> PrizMedClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.transport.close()

    def upload(
        self,
        paths: Sequence[Path],
        *,
        progress: Progress | None = None,
        wait: bool = True,
        fresh: bool = False,
        report: UploadReport | None = None,
    ) -> UploadReport:
        """Upload files and folders, resuming what an earlier run left (its state lives in
        ``settings.state_dir``); wait for indexing when ``wait``. ``fresh`` forgets the resume
        state first. ``report`` (optional) is filled in as the run goes, so a caller interrupted
        by KeyboardInterrupt still has it. Raises StateLocked when another run uses the same
        state, ApiError on an answer it cannot handle."""
        path = state_path(self.settings.state_dir, self.settings.url)
        with ResumeState(path) as state:
            if fresh:
                state.forget()
            return Uploader(self.transport, state, progress=progress, report=report).run(list(paths), wait=wait)

    def upload_status(self, request_id: str) -> dict[str, Any]:
        """``GET /dicom/uploads/{request_id}``: state, counts, rejections, study UIDs."""
        return self.transport.get_json(f"/dicom/uploads/{request_id}")

    def stream_status(self, stream_id: str) -> dict[str, Any]:
        """``GET /dicom/streams/{stream_id}``: state, chunks held, ``missing``, the upload."""
        return self.transport.get_json(f"/dicom/streams/{stream_id}")

    def studies(self, *, page_size: int = 50, **filters: str) -> Iterator[dict[str, Any]]:
        """``GET /studies`` (filters: ``patient_id``, ``patient_name``, ``modality``,
        ``date_from``, ``date_to``, ``accession_number``), newest first, following ``next``."""
        page = self.transport.get_json("/studies", params={**filters, "limit": str(page_size)})
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            page = self.transport.get_json(page["next"])

    def study(self, study_uid: str) -> dict[str, Any]:
        """``GET /studies/{study_uid}``: the study's metadata."""
        return self.transport.get_json(f"/studies/{study_uid}")

    def records(
        self,
        *,
        follow: bool = True,
        since: int | None = None,
        patient: str | None = None,
        study: str | None = None,
    ) -> Iterator[RecordEvent]:
        """The record stream over SSE: current resources, then (``follow``) every change live,
        reconnecting with ``Last-Event-ID``. Without ``follow`` it ends at the snapshot's end."""
        return iter(RecordStream(self.transport, RecordQuery(since, patient, study), follow=follow))

    def records_export(
        self, *, since: int | None = None, patient: str | None = None, study: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Current FHIR resources (or those changed after ``since``) as NDJSON, one dict each."""
        params = RecordQuery(since, patient, study).params()
        with self.transport.stream(
            "GET", "/records/stream", headers={"Accept": "application/fhir+ndjson"}, params=params
        ) as response:
            for line in response.iter_lines():
                if line.strip():
                    resource: dict[str, Any] = json.loads(line)
                    yield resource

    def download(self, study_uid: str, dest: Path) -> list[Path]:
        """WADO-RS retrieval of a study (PS3.18 §10.4) into ``dest``, one ``<SOPInstanceUID>.dcm``
        per instance, as stored. Returns the files written. Raises ApiError, MultipartError,
        NotPart10."""
        dest.mkdir(parents=True, exist_ok=True)
        with self.transport.stream("GET", f"/dicomweb/studies/{study_uid}", headers={"Accept": ACCEPT}) as response:
            return PartWriter(dest).write_body(response.headers.get("content-type", ""), response.iter_bytes())
