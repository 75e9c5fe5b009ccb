"""The `prizmed` command driven as a user drives it (a subprocess with PRIZMED_URL and
PRIZMED_API_KEY) against a real uvicorn: upload a mixed folder, resume after Ctrl-C, follow
records, search studies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db.models import Sum
from prizmed_client.part10 import read_meta

from studies.models import Chunk, Instance, Stream, Study, Upload, UploadItem, UploadState
from tests.support import live
from tests.support.client import (
    BIG_MB,
    MIB,
    Background,
    cli_env,
    files_under,
    prizmed,
    pydicom_folder,
    server_accepts,
    summary,
)
from tests.support.dicomfactory import make_instance, make_study
from tests.support.ingest_support import set_plan, wait_for
from tests.support.world import Clock, World


@pytest.fixture
def env(server: live.Server, world: World, clock: Clock, tmp_path: Path) -> dict[str, str]:
    return cli_env(server.url, world.bob.token, tmp_path / "state")


def big_instance(folder: Path, patient_id: str = "BIG1") -> Path:
    """A multi-frame instance of BIG_MB MiB of pixel data: sent as a chunked stream."""
    path = folder / "big" / "multiframe.dcm"
    path.parent.mkdir(parents=True)
    path.write_bytes(make_instance(pixel_bytes=BIG_MB * MIB, patient_id=patient_id, modality="US"))
    return path


def test_it_uploads_a_folder_of_pydicom_files_a_large_instance_and_a_text_file(
    env: dict[str, str], world: World, indexer, tmp_path: Path
) -> None:
    set_plan(world.bob.org, requests_per_minute=600, bandwidth_bps=None)  # unpaced: the bytes are not the point
    folder = pydicom_folder(tmp_path / "data")
    (folder / "notes.txt").write_text("not an image\n")
    big = big_instance(folder)
    everything = files_under(folder)
    dicom = [p for p in everything if server_accepts(p)]

    run = prizmed(env, "upload", str(folder), "--summary-json", str(tmp_path / "summary.json"))

    assert run.code == 0, run.err
    report = summary(tmp_path / "summary.json")
    assert f"Files: {len(everything)} found, {len(dicom)} DICOM, {len(everything) - len(dicom)} skipped" in run.out
    assert {Path(s["path"]) for s in report["skipped"]} == set(everything) - set(dicom)
    assert "notes.txt" in run.out and "no DICM prefix at offset 128" in run.out
    # Every DICOM file was accepted once, and indexing decided on each: indexed or rejected.
    assert (
        report["instances_accepted"]
        == len(dicom)
        == UploadItem.objects.filter(upload__organization=world.bob.org).count()
    )
    assert report["instances_indexed"] + report["instances_rejected"] == len(dicom)
    assert (
        report["instances_rejected"]
        == UploadItem.objects.filter(upload__organization=world.bob.org, state="rejected").count()
        > 0
    )
    assert "file ends inside the pixel data" in run.out  # a rejection (pydicom's cut-off files), with its reason
    assert report["refused"] == []
    assert report["bytes_sent"] == report["bytes_planned"] > BIG_MB * MIB
    # The large instance went as a chunked stream of 8 MiB chunks.
    stream = Stream.objects.get(organization=world.bob.org)
    assert stream.state == "complete" and Chunk.objects.filter(stream=stream).count() == -(
        -big.stat().st_size // (8 * MIB)
    )
    # The studies exist, as the summary lists them.
    listed = {s["study_uid"]: s for s in report["studies"]}
    stored = {s.study_uid: s for s in Study.objects.filter(organization=world.bob.org).select_related("patient")}
    assert set(listed) == set(stored) and len(stored) > 10
    for uid, study in stored.items():
        assert (
            listed[uid]["instances"] == study.instance_count and listed[uid]["patient_id"] == study.patient.patient_id
        )
        assert uid in run.out
    assert Study.objects.get(organization=world.bob.org, patient__patient_id="BIG1").instance_count == 1
    # pydicom ships a few files sharing a SOP Instance UID: each indexed, the later replacing the earlier.
    indexed = UploadItem.objects.filter(upload__organization=world.bob.org, state="indexed")
    assert indexed.count() == report["instances_indexed"]
    assert (
        Instance.objects.filter(organization=world.bob.org).count()
        == indexed.values("sop_instance_uid").distinct().count()
    )

    listing = prizmed(env, "studies", "--patient-id", "BIG1")
    assert listing.code == 0 and stored_uid(world, "BIG1") in listing.out


def stored_uid(world: World, patient_id: str) -> str:
    return Study.objects.get(organization=world.bob.org, patient__patient_id=patient_id).study_uid


def test_it_resumes_an_upload_interrupted_by_ctrl_c_sending_only_the_rest(
    env: dict[str, str], world: World, indexer, tmp_path: Path
) -> None:
    # 200 Mbps: ~0.3 s per 8 MiB chunk, so the interrupt lands among the chunks even on a busy machine.
    set_plan(world.bob.org, requests_per_minute=600, bandwidth_bps=200_000_000)
    folder = tmp_path / "data"
    (folder / "study").mkdir(parents=True)
    for i, data in enumerate(make_study(n_series=2, per_series=5, patient_id="P7")):
        (folder / "study" / f"{i:02d}.dcm").write_bytes(data)
    big = big_instance(folder, patient_id="BIG2")
    chunks = -(-big.stat().st_size // (8 * MIB))
    files = files_under(folder)

    first = Background(env, "upload", str(folder))
    # Interrupt once the server holds over half of the large file's chunks (the batch is done).
    wait_for(lambda: Chunk.objects.filter(stream__organization=world.bob.org).count() > chunks // 2, timeout=300)
    interrupted = first.interrupt()

    assert interrupted.code == 130, interrupted.err
    assert "Run the same command again to resume" in interrupted.err
    sent_first = interrupted.number("Interrupted after sending")
    stream = Stream.objects.get(organization=world.bob.org)
    held = Chunk.objects.filter(stream=stream).count()
    assert stream.state == "open" and chunks // 2 < held < chunks

    second = prizmed(env, "upload", str(folder), "--summary-json", str(tmp_path / "second.json"))

    assert second.code == 0, second.err
    report = summary(tmp_path / "second.json")
    sent_second = report["bytes_sent"]
    print(f"first run (interrupted): {sent_first:,} bytes sent; second run:", *second.out.splitlines()[-3:], sep="\n")
    full = sum(p.stat().st_size for p in files)
    # Only the chunks the server lacked (the one in flight at Ctrl-C may have landed after all).
    assert report["chunks_resumed"] in (held, held + 1)
    assert sent_second == big.stat().st_size - report["chunks_resumed"] * 8 * MIB
    assert sent_second < sent_first and sent_second < full
    assert report["files_resumed"] == len(files) - 1
    assert report["streams_resumed"] == 1 and report["bytes_resumed"] == full - sent_second
    assert f"Bytes sent: {sent_second:,}" in second.out
    resumed = f"Resumed: {len(files) - 1} files already uploaded, {report['chunks_resumed']} chunks of 1 streams"
    assert resumed in second.out
    # Every instance stored and indexed exactly once, across both runs.
    org = world.bob.org
    assert Upload.objects.filter(organization=org).aggregate(n=Sum("instances_received"))["n"] == len(files)
    assert set(Upload.objects.filter(organization=org).values_list("state", flat=True)) == {UploadState.DONE}
    assert Instance.objects.filter(organization=org).count() == len(files) == report["instances_indexed"]
    assert report["instances_accepted"] == len(files)

    third = prizmed(env, "upload", str(folder))
    assert third.code == 0 and third.number("Bytes sent:") == 0  # nothing left to send


def test_it_follows_records_and_prints_an_event_for_an_upload(
    env: dict[str, str], world: World, indexer, tmp_path: Path
) -> None:
    # From the log's start: the upload's events come numbered whether they are committed before
    # the follower connects or after (without --since, an early one would be in the snapshot).
    follower = Background(env, "records", "--follow", "--since", "0")
    try:
        folder = tmp_path / "data"
        folder.mkdir()
        instance = make_instance(patient_id="FOLLOW1", patient_name="Follow^Me")
        (folder / "one.dcm").write_bytes(instance)
        run = prizmed(env, "upload", str(folder))
        assert run.code == 0, run.err
        study_uid = stored_uid(world, "FOLLOW1")

        line = follower.wait_line(r"ImagingStudy\s+ImagingStudy/" + re.escape(study_uid) + r"\s")
        patient = follower.wait_line(r"Patient\s+Patient/\w+ Follow Me")
    finally:
        follower.interrupt()
    seq, event = line.split()[:2]
    assert int(seq) > 0 and event == "ImagingStudy" and "instances=1" in line
    assert patient


def test_it_downloads_a_study_byte_identical_to_the_uploads_preamble_aside(
    env: dict[str, str], world: World, indexer, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    instances = [b"\xff" * 128 + data[128:] for data in make_study(n_series=2, per_series=2, patient_id="DL1")]
    for i, data in enumerate(instances):
        (folder / f"{i}.dcm").write_bytes(data)
    assert prizmed(env, "upload", str(folder)).code == 0

    run = prizmed(env, "download", stored_uid(world, "DL1"), str(tmp_path / "out"))

    assert run.code == 0, run.err
    got = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    # The server stores (and serves) each instance with its preamble zeroed (CVE-2019-11687).
    assert got == {f"{read_meta(data).sop_instance_uid}.dcm": bytes(128) + data[128:] for data in instances}
