"""The ``prizmed`` command: upload, studies, records, download.

Configuration comes from the environment only (``PRIZMED_URL``, ``PRIZMED_API_KEY``, and the
tuning variables of ``config.Settings``); there is deliberately no option for the key.
Progress and notes go to stderr, results (tables, record lines) to stdout. Exit codes: 0 done,
1 failed (an API or network error, or files refused), 2 usage or configuration, 130 interrupted
(re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from prizmed_client.client import PrizMedClient
from prizmed_client.config import ConfigError, Settings, parse_size
from prizmed_client.progress import BarProgress
from prizmed_client.records import describe
from prizmed_client.report import UploadReport
from prizmed_client.state import StateLocked
from prizmed_client.transport import ApiError
from prizmed_client.version import __version__

SIZE_OPTIONS = {
    "batch_file_max": "files up to this size are batched (default 4MiB)",
    "batch_max_bytes": "at most this many file bytes per batch (default 32MiB)",
    "stream_threshold": "files over this size go as chunked, resumable streams (default 64MiB)",
    "chunk_bytes": "chunk size of those streams (default 8MiB)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prizmed",
        description="PrizMed API client. Set PRIZMED_URL and PRIZMED_API_KEY in the environment.",
    )
    parser.add_argument("--version", action="version", version=f"prizmed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upload", help="upload DICOM files and folders, resuming an interrupted upload")
    up.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    up.add_argument("--state-dir", type=Path, help="where the resume state lives (default $PRIZMED_STATE_DIR, "
                    "else $XDG_STATE_HOME/prizmed, else ~/.local/state/prizmed)")  # fmt: skip
    up.add_argument("--fresh", action="store_true", help="forget the resume state and send everything")
    up.add_argument("--no-wait", action="store_true", help="do not wait for indexing (no study table)")
    up.add_argument("--summary-json", type=Path, help="also write the summary as JSON to this file")
    up.add_argument("--batch-max-files", type=int, help="at most this many files per batch (default 100)")
    for field, text in SIZE_OPTIONS.items():
        up.add_argument(f"--{field.replace('_', '-')}", type=parse_size, metavar="SIZE", help=text)

    studies = sub.add_parser("studies", help="search studies")
    for name in ("patient-id", "patient-name", "modality", "accession-number", "date-from", "date-to"):
        studies.add_argument(f"--{name}")
    studies.add_argument("--limit", type=int, default=0, help="stop after this many (default: all)")

    rec = sub.add_parser("records", help="FHIR Patient and ImagingStudy records, one line per event")
    rec.add_argument("--follow", "-f", action="store_true", help="keep following changes live")
    rec.add_argument("--since", type=int, help="only events after this sequence number")
    rec.add_argument("--patient", help="DICOM Patient ID")
    rec.add_argument("--study", help="Study Instance UID")
    rec.add_argument("--json", action="store_true", help="print each resource as JSON instead")

    down = sub.add_parser("download", help="retrieve a study over DICOMweb WADO-RS into a folder")
    down.add_argument("study_uid")
    down.add_argument("dir", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    err = _console(stderr=True)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        err.print(f"prizmed: {exc}", markup=False)
        return 2
    if args.command == "upload":
        # Upload options override the settings they name: --state-dir and the tuning sizes.
        fields = (*SIZE_OPTIONS, "batch_max_files", "state_dir")
        changes = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        settings = dataclasses.replace(settings, **changes)
    try:
        with PrizMedClient(settings) as client:
            command = {"upload": _upload, "studies": _studies, "records": _records, "download": _download}
            return command[args.command](client, args, err)
    except ApiError as exc:
        err.print(f"prizmed: the server answered {exc} (request id {exc.request_id})", markup=False)
    except httpx.TransportError as exc:
        err.print(f"prizmed: cannot reach {settings.url}: {exc}", markup=False)
    except (StateLocked, OSError) as exc:
        err.print(f"prizmed: {exc}", markup=False)
    except KeyboardInterrupt:
        err.print("prizmed: interrupted", markup=False)
        return 130
    return 1


def _console(*, stderr: bool = False) -> Console:
    # Piped output keeps lines and whole UIDs whole instead of the 80 columns rich assumes.
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr, highlight=False, soft_wrap=not stream.isatty(), width=None if stream.isatty() else 200
    )


def _out() -> Console:
    return _console()


def _upload(client: PrizMedClient, args: argparse.Namespace, err: Console) -> int:
    report = UploadReport()
    try:
        with BarProgress(err) as progress:
            client.upload(args.paths, progress=progress, wait=not args.no_wait, fresh=args.fresh, report=report)
    except KeyboardInterrupt:
        err.print(
            f"Interrupted after sending {report.bytes_sent:,} bytes this run. "
            "Run the same command again to resume: only what the server lacks is sent.",
            markup=False,
        )
        return 130
    print_summary(report, _out())
    if args.summary_json:
        args.summary_json.write_text(json.dumps(report.as_json(), indent=2))
    return 1 if report.refused else 0


def print_summary(report: UploadReport, out: Console) -> None:
    """The tables and totals of an upload run."""
    if report.studies:
        table = Table(title="Studies")
        for column in ("Study Instance UID", "Patient ID", "Patient name", "Modalities", "Instances"):
            table.add_column(column, overflow="fold")
        for s in report.studies:
            table.add_row(Text(s.study_uid), Text(s.patient_id), Text(s.patient_name), Text(s.modalities),
                          str(s.instances))  # fmt: skip
        out.print(table)
    for title, columns, rows in (
        ("Rejected by the indexer", ("File", "SOP Instance UID", "Reason"),
         [(str(r.path or "?"), r.sop_instance_uid, r.reason) for r in report.rejections()]),
        ("Refused by the server", ("File", "Status", "Detail"),
         [(str(r.path), str(r.status), r.detail) for r in report.refused]),
        ("Skipped (not DICOM)", ("File", "Reason"), [(str(s.path), s.reason) for s in report.skipped]),
    ):  # fmt: skip
        if rows:
            table = Table(title=title)
            for column in columns:
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*(Text(cell) for cell in row))
            out.print(table)
    dicom = len(report.files)
    lines = [
        f"Files: {dicom + len(report.skipped)} found, {dicom} DICOM, {len(report.skipped)} skipped as non-DICOM",
        f"Instances: {report.total('instances_accepted')} accepted, {report.total('instances_indexed')} indexed, "
        f"{report.total('instances_rejected')} rejected, {len(report.refused)} refused",
        f"Studies: {len(report.studies)}",
        f"Bytes sent: {report.bytes_sent:,} (planned {report.bytes_planned:,})",
        f"Resumed: {report.files_resumed} files already uploaded, {report.chunks_resumed} chunks of "
        f"{report.streams_resumed} streams already held, {report.bytes_resumed:,} bytes not sent again",
        f"Requests: {report.requests}, 429 answers absorbed: {report.throttled}, "
        f"waited for the rate limit: {report.paced_seconds:.1f} s",
    ]
    for line in lines:
        out.print(line, markup=False)


def _studies(client: PrizMedClient, args: argparse.Namespace, err: Console) -> int:
    filters = {k: v for k in ("patient_id", "patient_name", "modality", "accession_number", "date_from", "date_to")
               if (v := getattr(args, k))}  # fmt: skip
    table = Table(title="Studies")
    for column in ("Study Instance UID", "Patient ID", "Patient name", "Date", "Modalities", "Series", "Instances"):
        table.add_column(column, overflow="fold")
    for count, s in enumerate(client.studies(**filters), start=1):
        patient = s.get("patient") or {}
        table.add_row(Text(s["study_uid"]), Text(patient.get("patient_id") or ""), Text(patient.get("name") or ""),
                      s.get("study_date") or "", ",".join(s.get("modalities") or []), str(s.get("series_count", "")),
                      str(s.get("instance_count", "")))  # fmt: skip
        if args.limit and count >= args.limit:
            break
    _out().print(table)
    return 0


def _records(client: PrizMedClient, args: argparse.Namespace, err: Console) -> int:
    if args.since is not None and not args.follow:
        for resource in client.records_export(since=args.since, patient=args.patient, study=args.study):
            sys.stdout.write(
                (json.dumps(resource) if args.json else f"{resource['resourceType']}/{resource['id']}") + "\n"
            )
        return 0
    for event in client.records(follow=args.follow, since=args.since, patient=args.patient, study=args.study):
        if event.event == "reset":
            err.print(f"the server reset the stream: {event.data}", markup=False)
        if not event.is_resource:
            continue
        sys.stdout.write((json.dumps(event.data) if args.json else describe(event)) + "\n")
        sys.stdout.flush()
    return 0


def _download(client: PrizMedClient, args: argparse.Namespace, err: Console) -> int:
    written = client.download(args.study_uid, args.dir)
    err.print(f"{len(written)} instances written to {args.dir}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
