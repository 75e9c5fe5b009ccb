"""A client generated from /api/schema/ by openapi-python-client drives every operation against a
running uvicorn: what the schema promises is what a generated client can use (issue 14)."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.support import dicomfactory as dcm
from tests.support import live
from tests.support.indexing import wait_for
from tests.support.world import World

PACKAGE = "prizmed_generated_client"


@pytest.fixture(scope="module")
def generated(server: live.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the served schema, imported."""
    root = tmp_path_factory.mktemp("generated")
    schema = root / "openapi.json"
    schema.write_bytes(httpx.get(f"{server.url}/api/schema/", params={"format": "json"}, timeout=30).content)
    bin_dir = Path(sys.executable).parent  # the generator formats its output with ruff from here
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    argv = [str(bin_dir / "openapi-python-client"), "generate", "--path", str(schema),
            "--output-path", str(root / PACKAGE), "--meta", "none"]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _op(name: str) -> Any:
    """``tag.operation_id`` of the generated package, e.g. ``studies.studies_read``."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def _model(name: str) -> Any:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def _part10(**kw: Any) -> Any:
    file_type = importlib.import_module(f"{PACKAGE}.types").File
    return file_type(payload=io.BytesIO(dcm.make_instance(**kw)), mime_type="application/octet-stream")


def test_a_generated_client_drives_every_operation(
    generated: ModuleType, server: live.Server, world: World, clock: object, indexer: object
) -> None:
    admin = generated.AuthenticatedClient(base_url=server.url, token=world.alice.token, raise_on_unexpected_status=True)
    standard = generated.AuthenticatedClient(
        base_url=server.url, token=world.bob.token, raise_on_unexpected_status=True
    )
    problem = _model("Problem")

    organization = _op("organization.organization_read").sync(client=standard)
    assert isinstance(organization, _model("OrganizationOutput"))
    assert organization.slug == "acme" and organization.key.role == "standard"

    # A whole payload: upload, then its status until indexed.
    study_uid = generate_uid()
    accepted = _op("dicom.dicom_stream").sync(
        client=standard, body=_part10(study_uid=study_uid, modality="MR", patient_id="GEN-1")
    )
    assert isinstance(accepted, _model("UploadAccepted")) and accepted.instances_accepted == 1
    status = wait_for(
        lambda: (
            (s := _op("dicom.upload_status").sync(client=standard, request_id=accepted.request_id)).state
            in ("done", "failed")
            and s
        ),
        what="the upload to be indexed",
    )
    assert status.state == "done" and status.study_uids == [study_uid]

    # Studies: search (any case), read, series.
    page = _op("studies.studies_list").sync(client=standard, modality="mr", patient_id="GEN-1", limit=10)
    assert isinstance(page, _model("StudyPageOutput"))
    assert [s.study_uid for s in page.results] == [study_uid] and page.next_ is None
    study = _op("studies.studies_read").sync(client=standard, study_uid=study_uid)
    assert isinstance(study, _model("StudyOutput")) and study.patient.patient_id == "GEN-1"
    assert study.modalities == ["MR"] and study.links.series.href == f"/api/v2/studies/{study_uid}/series"
    series = _op("studies.studies_series_list").sync(client=standard, study_uid=study_uid)
    assert isinstance(series, _model("SeriesPageOutput")) and [s.modality for s in series.series] == ["MR"]

    # A chunked stream: one chunk, its status, the last chunk completes it into an upload.
    payload = dcm.make_instance(patient_id="GEN-2")
    first, second = payload[:1000], payload[1000:]
    chunk_file = importlib.import_module(f"{PACKAGE}.types").File
    last = _model("DicomStreamXChunkLast")
    stream = _op("dicom.dicom_stream")
    chunk = stream.sync(client=standard, body=chunk_file(payload=io.BytesIO(first)), x_stream_id="gen-1", x_chunk_seq=0)
    assert isinstance(chunk, _model("ChunkAccepted")) and chunk.stream_state == "open" and chunk.upload is None
    held = _op("dicom.stream_status").sync(client=standard, stream_id="gen-1")
    assert isinstance(held, _model("StreamOutput")) and [c.seq for c in held.chunks] == [0]
    done = stream.sync(
        client=standard,
        body=chunk_file(payload=io.BytesIO(second)),
        x_stream_id="gen-1",
        x_chunk_seq=1,
        x_chunk_last=last.TRUE,
    )
    assert isinstance(done, _model("ChunkAccepted")) and done.stream_state == "complete"
    assert isinstance(done.upload, _model("UploadAccepted")) and done.upload.instances_accepted == 1
    completed = _op("dicom.stream_status").sync(client=standard, stream_id="gen-1")
    assert completed.state == "complete" and completed.upload.request_id == done.upload.request_id

    # Abort another stream.
    stream.sync(client=standard, body=chunk_file(payload=io.BytesIO(first)), x_stream_id="gen-2", x_chunk_seq=0)
    assert _op("dicom.stream_abort").sync_detailed(client=standard, stream_id="gen-2").status_code == 204
    assert _op("dicom.stream_status").sync(client=standard, stream_id="gen-2").state == "aborted"

    # The record stream as a Bundle.
    bundle = _op("records.records_stream").sync(client=standard, study=study_uid)
    assert bundle.resource_type == "Bundle"

    # Delete: refused to a standard key (403 problem), done for an admin key (200 with what went).
    refused = _op("studies.studies_delete").sync(client=standard, study_uid=study_uid)
    assert isinstance(refused, problem) and refused.status == 403
    deleted = _op("studies.studies_delete").sync(client=admin, study_uid=study_uid)
    assert isinstance(deleted, _model("StudyDeletedOutput")) and deleted.instance_count == 1
    missing = _op("studies.studies_read").sync(client=standard, study_uid=study_uid)
    assert isinstance(missing, problem) and missing.status == 404

    # The audit log (admin keys): the deletion is in it.
    events = _op("audit_events.audit_events_list").sync(client=admin)
    assert study_uid in str(events.to_dict())
