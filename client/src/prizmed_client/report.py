"""What an upload run did: the summary the CLI prints and ``PrizMedClient.upload`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prizmed_client.planning import LocalFile, Skipped

TERMINAL_STATES = ("done", "failed")


class Progress(Protocol):
    """Hears of an upload as it goes (the CLI draws a bar; the default hears nothing)."""

    def start(self, *, total_bytes: int, total_instances: int) -> None:
        """Sending begins: body bytes and instances this run will send."""

    def sent(self, nbytes: int) -> None:
        """``nbytes`` more body bytes went out."""

    def accepted(self, instances: int) -> None:
        """The server acknowledged ``instances`` more instances (a 202)."""

    def indexing(self, *, done: int, total: int) -> None:
        """Waiting for indexing: ``done`` of ``total`` uploads finished."""

    def note(self, text: str) -> None:
        """Something worth a line: a skipped file, a resumed stream, a refusal."""


class NoProgress:
    """The silent ``Progress``."""

    def start(self, *, total_bytes: int, total_instances: int) -> None:
        pass

    def sent(self, nbytes: int) -> None:
        pass

    def accepted(self, instances: int) -> None:
        pass

    def indexing(self, *, done: int, total: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass
class UploadResult:
    """One server upload (a request id): its files in body order and its last known status."""

    request_id: str
    files: list[Path]
    resumed: bool  # the server held it from an earlier run; nothing was sent for it now
    status: dict[str, Any] = field(default_factory=dict)  # GET /dicom/uploads/{id}, or the 202 until then

    @property
    def finished(self) -> bool:
        """Indexing is over (``done`` or ``failed``) and the counts are known: a 202 may already
        say ``done`` (a stream's completing chunk answers once its assembly is over, and a small
        upload can be indexed by then), but only the status read carries what was indexed."""
        return self.status.get("state") in TERMINAL_STATES and "instances_indexed" in self.status


@dataclass(frozen=True)
class Refused:
    """Files the server refused at upload time (HTTP 413/415/422), with its problem detail."""

    path: Path
    status: int
    detail: str


@dataclass(frozen=True)
class Rejection:
    """An instance the indexer rejected: its file, SOP Instance UID and reason."""

    path: Path | None
    sop_instance_uid: str
    reason: str


@dataclass(frozen=True)
class StudyRow:
    """A study the upload touched, as the server describes it now."""

    study_uid: str
    patient_id: str
    patient_name: str
    instances: int  # in the whole study, not only from this upload
    modalities: str


@dataclass
class UploadReport:
    """Counts and lists of one ``prizmed upload`` run (bytes are request body bytes)."""

    files: list[LocalFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    uploads: list[UploadResult] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    studies: list[StudyRow] = field(default_factory=list)
    bytes_planned: int = 0  # what this run set out to send
    bytes_sent: int = 0  # what it sent, retries included
    bytes_resumed: int = 0  # file bytes not sent because the server already held them
    files_resumed: int = 0  # files whose upload the server had completed in an earlier run
    chunks_resumed: int = 0  # chunks of unfinished streams the server already held
    streams_resumed: int = 0
    requests: int = 0
    throttled: int = 0  # 429 answers absorbed (waited out and retried), never shown as errors
    paced_seconds: float = 0.0
    interrupted: bool = False

    def total(self, field_name: str) -> int:
        """Sum of an upload status count (``instances_accepted``, ``_indexed``, ``_rejected``)."""
        return sum(int(u.status.get(field_name) or 0) for u in self.uploads)

    def rejections(self) -> list[Rejection]:
        """Every instance rejected by the indexer, mapped back to its file (whose File Meta names
        the SOP Instance UID when the indexer could not read one)."""
        sop_of = {f.path: f.sop_instance_uid or "" for f in self.files}
        out = []
        for upload in self.uploads:
            for r in upload.status.get("rejections") or []:
                pos = int(r.get("position", -1))
                path = upload.files[pos] if 0 <= pos < len(upload.files) else None
                sop = str(r.get("sop_instance_uid") or (sop_of.get(path, "") if path else ""))
                out.append(Rejection(path, sop, str(r.get("reason", ""))))
        return out

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON types (``prizmed upload --summary-json``)."""
        return {
            "files": len(self.files),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "refused": [{"path": str(r.path), "status": r.status, "detail": r.detail} for r in self.refused],
            "uploads": [
                {"request_id": u.request_id, "resumed": u.resumed, "files": len(u.files), **u.status}
                for u in self.uploads
            ],
            "instances_accepted": self.total("instances_accepted"),
            "instances_indexed": self.total("instances_indexed"),
            "instances_rejected": self.total("instances_rejected"),
            "rejections": [
                {"path": str(r.path), "sop_instance_uid": r.sop_instance_uid, "reason": r.reason}
                for r in self.rejections()
            ],
            "studies": [s.__dict__ for s in self.studies],
            "bytes_planned": self.bytes_planned,
            "bytes_sent": self.bytes_sent,
            "bytes_resumed": self.bytes_resumed,
            "files_resumed": self.files_resumed,
            "chunks_resumed": self.chunks_resumed,
            "streams_resumed": self.streams_resumed,
            "requests": self.requests,
            "throttled": self.throttled,
            "paced_seconds": round(self.paced_seconds, 1),
            "interrupted": self.interrupted,
        }
