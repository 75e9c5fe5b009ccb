"""Uploading files to ``POST /api/v2/dicom/stream``, resuming whatever an earlier run began.

A run (``Uploader.run``):

1. scans the paths (planning.scan) and asks the server about every id the state file holds
   for these files: ``GET /dicom/uploads/{request_id}`` (held once no longer ``receiving``:
   the server replays such a request's 202 without reading a body, so the client does not send
   it at all) and ``GET /dicom/streams/{stream_id}`` (the chunks held);
2. plans what is left (planning.plan) and sends it: batches and single instances as one request
   each, large files as chunked streams sending only the chunks the server lacks. Each request
   id and stream id is written to the state file before its request leaves;
3. waits for indexing (upload status polled with backoff, inside the rate) and reads the
   studies touched, for the report.

A batch the server refuses as a whole (422/415/413: one bad instance sinks the body) is split
in two and each half sent again, down to the one file at fault, which is reported as refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prizmed_client.chunks import ChunkedSender, StreamOutcome, chunk_sizes
from prizmed_client.multipart import multipart_body, new_boundary
from prizmed_client.planning import Batch, Chunked, LocalFile, plan, scan
from prizmed_client.report import NoProgress, Progress, Refused, StudyRow, UploadReport, UploadResult
from prizmed_client.state import ResumeState, StreamRecord
from prizmed_client.transport import ApiError, Transport

REFUSALS = (413, 415, 422)
PIECE = 1024 * 1024
SETTLE_TRIES = 6


def file_pieces(path: Path, size: int = PIECE) -> Iterator[bytes]:
    """A file's bytes, ``size`` at a time."""
    with path.open("rb") as fh:
        while piece := fh.read(size):
            yield piece


class Uploader:
    """One upload run over a transport and a resume state; ``run`` returns the report."""

    def __init__(
        self,
        transport: Transport,
        state: ResumeState,
        *,
        progress: Progress | None = None,
        report: UploadReport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.settings = transport.settings
        self.state = state
        self.progress: Progress = progress or NoProgress()
        self.report = report if report is not None else UploadReport()
        self._sleep = sleep
        self._held_chunks: dict[str, dict[int, int]] = {}  # file key -> {seq: bytes} of open streams

    def run(self, paths: list[Path], *, wait: bool = True) -> UploadReport:
        """Upload ``paths`` (files and folders) and return the report. On KeyboardInterrupt the
        report so far stays in ``self.report`` (the state file already says what was tried)."""
        files, skipped = scan(paths, self.settings)
        self.report.files, self.report.skipped = files, skipped
        for s in skipped:
            self.progress.note(f"skipped {s.path}: {s.reason}")
        todo = self._resume(files)
        steps = plan(todo, self.settings)
        self.report.bytes_planned = sum(self._step_bytes(s) for s in steps)
        self.progress.start(total_bytes=self.report.bytes_planned, total_instances=len(todo))
        try:
            for step in steps:
                if isinstance(step, Chunked):
                    self._send_stream(step.file)
                else:
                    self._send_batch(list(step.files))
            if wait:
                self._wait_indexed()
                self._read_studies()
        except KeyboardInterrupt:
            self.report.interrupted = True
            raise
        finally:
            self._tally()
        return self.report

    # -- resuming ---------------------------------------------------------------------------

    def _resume(self, files: list[LocalFile]) -> list[LocalFile]:
        """Files the server does not hold yet; those it holds become resumed uploads."""
        by_key = {f.key.text(): f for f in files}
        todo = []
        held_uploads: dict[str, UploadResult | None] = {}
        for f in files:
            key = f.key.text()
            request_id = self.state.sent.get(key)
            if request_id is not None:
                if request_id not in held_uploads:
                    held_uploads[request_id] = self._held_upload(request_id, by_key)
                if held_uploads[request_id] is not None:
                    self.report.files_resumed += 1
                    self.report.bytes_resumed += f.size
                    continue
            record = self.state.streams.get(key)
            if record is not None and self._stream_held(f, record):
                continue
            todo.append(f)
        resumed = [u for u in held_uploads.values() if u is not None]
        if resumed:
            self.progress.note(f"resumed: {self.report.files_resumed} files already held by the server")
        return todo

    def _held_upload(self, request_id: str, by_key: dict[str, LocalFile]) -> UploadResult | None:
        response = self.transport.request("GET", f"/dicom/uploads/{request_id}", ok=(404,))
        if response.status_code == 404 or response.json().get("state") == "receiving":
            return None
        keys = self.state.requests.get(request_id, [])
        result = UploadResult(request_id, [Path(k.split("|", 1)[0]) for k in keys], True, response.json())
        self.report.uploads.append(result)
        return result

    def _stream_held(self, f: LocalFile, record: StreamRecord) -> bool:
        """True when the stream is complete (resumed whole); for an open one, note its chunks."""
        response = self.transport.request("GET", f"/dicom/streams/{record.stream_id}", ok=(404,))
        if response.status_code == 404:
            return False
        status = response.json()
        if status["state"] == "complete" and status.get("upload"):
            self.report.files_resumed += 1
            self.report.bytes_resumed += f.size
            request_id = status["upload"]["request_id"]
            self.report.uploads.append(UploadResult(request_id, [f.path], True))
            return True
        if status["state"] != "open":  # aborted or expired: that id is spent, a new stream it is
            self.state.streams.pop(f.key.text(), None)
            return False
        expected = chunk_sizes(f.size, record.chunk_bytes)
        held = {c["seq"]: c["bytes"] for c in status["chunks"] if expected.get(c["seq"]) == c["bytes"]}
        self._held_chunks[f.key.text()] = held
        return False

    # -- sending ----------------------------------------------------------------------------

    def _send_batch(self, files: list[LocalFile]) -> None:
        request_id = str(uuid.uuid4())
        self.state.record_request(request_id, [f.key for f in files])
        if len(files) == 1:
            headers = {"Content-Type": "application/dicom", "Content-Length": str(files[0].size)}

            def body() -> Iterator[bytes]:
                return file_pieces(files[0].path)
        else:
            boundary = new_boundary()
            length = Batch(tuple(files)).body_bytes(len(boundary))
            headers = {
                "Content-Type": f'application/dicom+stream; boundary="{boundary}"',
                "Content-Length": str(length),
            }

            def body() -> Iterator[bytes]:
                return multipart_body([f.path for f in files], boundary)

        try:
            response = self.transport.request(
                "POST", "/dicom/stream", headers=headers, body=body, request_id=request_id,
                on_bytes=self.progress.sent, ok=(409,),
            )  # fmt: skip
        except ApiError as exc:
            if exc.status not in REFUSALS:
                raise
            if len(files) > 1:  # find the file at fault; the others go through
                half = len(files) // 2
                self._send_batch(files[:half])
                self._send_batch(files[half:])
                return
            self.report.refused.append(Refused(files[0].path, exc.status, exc.detail))
            self.progress.note(f"refused {files[0].path}: {exc.status} {exc.detail}")
            return
        if response.status_code == 409 and not self._settled(request_id):
            self._send_batch(files)  # the earlier attempt never completed: again, under a new id
            return
        answer = response.json() if response.status_code == 202 else {}
        # The server gives a fresh id when another organization already used this one.
        upload_id = str(answer.get("request_id") or request_id)
        self.report.uploads.append(UploadResult(upload_id, [f.path for f in files], False, answer))
        self.progress.accepted(len(files))

    def _settled(self, request_id: str) -> bool:
        """409 on a retried request: an earlier attempt of this id is still ``receiving`` (its
        connection died; the server is discarding it). True once the server holds it complete."""
        for attempt in range(SETTLE_TRIES):
            response = self.transport.request("GET", f"/dicom/uploads/{request_id}", ok=(404,))
            if response.status_code == 404:
                return False
            if response.json().get("state") != "receiving":
                return True
            self._sleep(0.5 * 2**attempt)
        return False

    def _send_stream(self, f: LocalFile, *, restarted: bool = False) -> None:
        key = f.key.text()
        record = self.state.streams.get(key)
        held = self._held_chunks.get(key, {})
        if record is None or (not held and record.chunk_bytes != self.settings.chunk_bytes):
            record = StreamRecord(f"pzm-{uuid.uuid4().hex}", self.settings.chunk_bytes)
            self.state.record_stream(f.key, record)
            held = {}
        if held:
            self.report.streams_resumed += 1
            self.report.chunks_resumed += len(held)
            self.report.bytes_resumed += sum(held.values())
            self.progress.note(f"resuming {f.path}: {len(held)} chunks already held")
        sender = ChunkedSender(self.transport, self.state, on_bytes=self.progress.sent)
        outcome: StreamOutcome = sender.send(f.path, f.size, record, held)
        if outcome.refused is not None:
            status, detail = outcome.refused
            self.report.refused.append(Refused(f.path, status, detail))
            self.progress.note(f"refused {f.path}: {status} {detail}")
            return
        if outcome.restart and not restarted:  # the server holds other bytes under this id: anew
            self.state.streams.pop(key, None)
            self._held_chunks.pop(key, None)
            self._send_stream(f, restarted=True)
            return
        if outcome.upload is None:
            self.report.refused.append(Refused(f.path, 409, "the stream conflicts with what the server holds"))
            return
        self.report.uploads.append(UploadResult(outcome.upload["request_id"], [f.path], False, outcome.upload))
        self.progress.accepted(1)

    # -- after sending ----------------------------------------------------------------------

    def _wait_indexed(self) -> None:
        """Poll each unfinished upload, oldest first, with backoff (0.5 s to 5 s) while it is not."""
        uploads = self.report.uploads
        delay = 0.5
        done = sum(u.finished for u in uploads)
        self.progress.indexing(done=done, total=len(uploads))
        for upload in uploads:
            while not upload.finished:
                upload.status = self.transport.get_json(f"/dicom/uploads/{upload.request_id}")
                if upload.finished:
                    done += 1
                    self.progress.indexing(done=done, total=len(uploads))
                    delay = 0.5
                    break
                self._sleep(delay)
                delay = min(delay * 1.5, 5.0)

    def _read_studies(self) -> None:
        uids = sorted({uid for u in self.report.uploads for uid in u.status.get("study_uids") or []})
        for uid in uids:
            response = self.transport.request("GET", f"/studies/{uid}", ok=(404,))
            if response.status_code == 404:
                continue
            study: dict[str, Any] = response.json()
            patient = study.get("patient") or {}
            self.report.studies.append(
                StudyRow(
                    study_uid=uid,
                    patient_id=str(patient.get("patient_id") or ""),
                    patient_name=str(patient.get("name") or ""),
                    instances=int(study.get("instance_count") or 0),
                    modalities=",".join(study.get("modalities") or []),
                )
            )

    def _tally(self) -> None:
        stats = self.transport.stats
        self.report.bytes_sent = stats.bytes_sent
        self.report.requests = stats.requests
        self.report.throttled = stats.throttled
        self.report.paced_seconds = self.transport.pacer.waited

    def _step_bytes(self, step: Batch | Chunked) -> int:
        if isinstance(step, Batch):
            return step.body_bytes()
        held = self._held_chunks.get(step.file.key.text(), {})
        return step.file.size - sum(held.values())
