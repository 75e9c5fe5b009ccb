"""The indexer itself (studies/index/services.py), run in-process on uploads stored as ingest stores
them: rows, counts, replacement, rejection, plan limit, idempotency and concurrent copies."""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from pydicom import uid as uids

from dicom import header
from records.models import EventKind, RecordEvent
from studies.index import tasks
from studies.index.services import upload_index_begin, upload_index_part
from studies.models import Instance, ItemState, Patient, PendingObjectDeletion, Series, Study, UploadItem, UploadState
from studies.objects.store import storage
from tests.support import dicomfactory as dcm
from tests.support.indexing import index_concurrently, index_now, stored_upload
from tests.support.world import World


def test_it_indexes_a_multi_series_upload_with_exact_counts(world: World) -> None:
    acme = world.alice.org
    instances = dcm.make_study(n_series=3, per_series=4, patient_id="P-7", modality="MR", study_description="Head")
    upload = index_now(stored_upload(acme, instances))

    assert upload.state == UploadState.DONE
    assert (upload.instances_indexed, upload.instances_rejected) == (12, 0)
    study = Study.objects.get(organization=acme)
    assert upload.study_uids == [study.study_uid]
    assert (study.series_count, study.instance_count, study.bytes) == (3, 12, sum(map(len, instances)))
    assert study.modalities == ["MR"] and study.description == "Head" and study.patient.patient_id == "P-7"
    for series in Series.objects.filter(study=study):
        assert series.instance_count == 4 == series.instances.count()
        assert series.bytes == sum(i.size for i in series.instances.all())
        assert series.storage_prefix == f"uploads/{acme.pk}/{upload.pk}/"
    assert set(UploadItem.objects.filter(upload=upload).values_list("state", flat=True)) == {ItemState.INDEXED}
    for instance in Instance.objects.filter(organization=acme):
        with storage().open(instance.object_key) as fp:
            assert fp.read()[128:132] == b"DICM"
    kinds = list(RecordEvent.objects.filter(organization=acme).values_list("kind", flat=True))
    assert kinds.count(EventKind.PATIENT) == 1 and EventKind.STUDY in kinds


def test_it_indexes_each_instance_once_when_run_again_after_a_crash(world: World) -> None:
    acme = world.alice.org
    upload = stored_upload(acme, dcm.make_study(n_series=1, per_series=6))
    [(start, _)] = upload_index_begin(upload_id=str(upload.pk))
    upload_index_part(upload_id=str(upload.pk), start=start, stop=3)  # a worker died after half
    upload = index_now(upload)  # the redelivered task
    index_now(upload)  # and once more, for good measure

    assert upload.state == UploadState.DONE and upload.instances_indexed == 6
    assert Instance.objects.filter(organization=acme).count() == 6
    assert Study.objects.get(organization=acme).instance_count == 6


def test_it_replaces_a_re_sent_instance_and_its_bytes(world: World) -> None:
    acme = world.alice.org
    study_uid, series_uid, sop_uid = uids.generate_uid(), uids.generate_uid(), uids.generate_uid()
    first = dcm.make_instance(study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid, pixel_bytes=1000)
    other = dcm.make_instance(study_uid=study_uid, series_uid=series_uid, pixel_bytes=1000)
    old = index_now(stored_upload(acme, [first, other]))
    old_key = Instance.objects.get(sop_uid=sop_uid).object_key

    again = dcm.make_instance(study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid, pixel_bytes=3000)
    new = index_now(stored_upload(acme, [again]))

    instance = Instance.objects.get(organization=acme, sop_uid=sop_uid)
    assert instance.size == len(again) and instance.object_key.startswith(f"uploads/{acme.pk}/{new.pk}/")
    study = Study.objects.get(organization=acme)
    assert (study.instance_count, study.bytes) == (2, len(again) + len(other))
    series = Series.objects.get(study=study)
    assert (series.instance_count, series.bytes) == (2, len(again) + len(other))
    assert series.storage_prefix == f"uploads/{acme.pk}/"  # the two uploads' common folder
    assert not storage().exists(old_key) and storage().exists(instance.object_key)
    assert not PendingObjectDeletion.objects.exists()
    assert old.pk != new.pk and new.instances_indexed == 1


def test_it_rejects_malformed_instances_with_reasons_and_removes_their_bytes(world: World) -> None:
    acme = world.alice.org
    good = dcm.make_instance()
    bad = {
        "truncated": dcm.truncated(dcm.make_instance(pixel_bytes=4000), 2500),
        "value-too-long": dcm.make_instance(accession="A" * 600),
        "invalid-uid": dcm.with_bad_uid("study_uid", "1.2..4"),
        "too-deep": dcm.deeply_nested(40),
    }
    upload = index_now(stored_upload(acme, [good, *bad.values()]))

    assert upload.state == UploadState.DONE
    assert (upload.instances_indexed, upload.instances_rejected) == (1, 4)
    items = list(UploadItem.objects.filter(upload=upload).order_by("position"))
    assert items[0].state == ItemState.INDEXED
    assert [i.reason_code for i in items[1:]] == list(bad)
    assert all(i.state == ItemState.REJECTED and i.reason for i in items[1:])
    assert not any(storage().exists(i.object_key) for i in items[1:])
    assert Instance.objects.filter(organization=acme).count() == 1


def test_it_keeps_a_study_within_the_plans_size_and_rejects_the_rest(world: World) -> None:
    acme = world.alice.org
    instances = dcm.make_study(n_series=1, per_series=4, pixel_bytes=2000)
    acme.plan.max_study_bytes = len(instances[0]) * 2 + 10
    acme.plan.save()
    upload = index_now(stored_upload(acme, instances))

    items = list(UploadItem.objects.filter(upload=upload).order_by("position"))
    assert [i.state for i in items] == [ItemState.INDEXED] * 2 + [ItemState.REJECTED] * 2
    assert {i.reason_code for i in items[2:]} == {"study-too-large"}
    study = Study.objects.get(organization=acme)
    assert study.instance_count == 2 and study.bytes <= acme.plan.max_study_bytes
    assert not storage().exists(items[3].object_key)


def test_it_leaves_no_study_behind_when_its_only_instance_is_refused(world: World) -> None:
    acme = world.alice.org
    acme.plan.max_study_bytes = 100
    acme.plan.save()
    upload = index_now(stored_upload(acme, [dcm.make_instance()]))
    assert upload.instances_rejected == 1 and upload.study_uids == []
    assert not Study.objects.filter(organization=acme).exists()


def test_it_leaves_other_organizations_alone_when_a_whole_batch_is_rejected(world: World) -> None:
    index_now(stored_upload(world.carol.org, dcm.make_study(n_series=2, per_series=2)))
    rejected = stored_upload(world.alice.org, [dcm.with_bad_uid(), dcm.truncated(dcm.make_instance(), 400)])

    with CaptureQueriesContext(connection) as queries:
        upload = index_now(rejected)

    assert upload.instances_rejected == 2
    # Rewriting rows it does not own (globex's series, read unlocked) would lose concurrent updates.
    assert not [q["sql"] for q in queries if q["sql"].startswith('UPDATE "studies_series"')]


def test_it_keeps_the_same_study_uid_apart_per_organization(world: World) -> None:
    instances = dcm.make_study(n_series=1, per_series=2)
    index_now(stored_upload(world.alice.org, instances))
    index_now(stored_upload(world.carol.org, instances))
    assert Study.objects.count() == 2 and Instance.objects.count() == 4
    assert Patient.objects.filter(patient_id="P1").count() == 2


@pytest.mark.parametrize("copies", [2, 4])
def test_it_gives_one_row_for_concurrent_copies_of_an_instance(world: World, copies: int) -> None:
    acme = world.alice.org
    instances = dcm.make_study(n_series=2, per_series=5)
    uploads = [stored_upload(acme, instances) for _ in range(copies)]
    assert not index_concurrently(uploads)
    assert Instance.objects.filter(organization=acme).count() == 10
    study = Study.objects.get(organization=acme)
    assert (study.series_count, study.instance_count, study.bytes) == (2, 10, sum(map(len, instances)))
    live_keys = set(Instance.objects.values_list("object_key", flat=True))
    every_key = set(UploadItem.objects.values_list("object_key", flat=True))
    assert all(storage().exists(k) for k in live_keys)
    assert not any(storage().exists(k) for k in every_key - live_keys)  # replaced copies are gone


def test_it_retries_a_part_after_a_transient_database_error(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=3))
    [(start, stop)] = upload_index_begin(upload_id=str(upload.pk))
    calls: list[int] = []

    def flaky(**kwargs: object) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        upload_index_part(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tasks, "upload_index_part", flaky)

    tasks.index_upload_part.apply(args=(str(upload.pk), start, stop)).get()  # eager: retries at once

    upload.refresh_from_db()
    assert len(calls) == 3
    assert (upload.state, upload.instances_indexed) == (UploadState.DONE, 3)


def test_it_fails_cleanly_when_the_errors_do_not_stop(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=3))
    [(start, stop)] = upload_index_begin(upload_id=str(upload.pk))
    keys = list(UploadItem.objects.filter(upload=upload).values_list("object_key", flat=True))

    def broken(**kwargs: object) -> None:
        raise OperationalError("the database is gone")

    monkeypatch.setattr(tasks, "upload_index_part", broken)

    with pytest.raises(OperationalError):
        tasks.index_upload_part.apply(args=(str(upload.pk), start, stop)).get()

    upload.refresh_from_db()
    assert upload.state == UploadState.FAILED and upload.error == tasks.GIVE_UP
    assert upload.instances_rejected == 3
    assert set(UploadItem.objects.filter(upload=upload).values_list("state", "reason_code")) == {
        (ItemState.REJECTED, "indexing-failed")
    }
    assert not any(storage().exists(key) for key in keys)  # no bytes left that nothing points at


@pytest.mark.services  # row locks: the services run's PostgreSQL (SQLite serializes writers)
def test_it_moves_instances_both_ways_between_two_studies_without_a_deadlock(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studies.index import services as indexing

    acme = world.alice.org
    first_uid, second_uid = sorted([uids.generate_uid(), uids.generate_uid()])
    a, b = uids.generate_uid(), uids.generate_uid()
    # Two patients, so the batches share no patient lock either.
    first = functools.partial(dcm.make_instance, study_uid=first_uid, patient_id="P-FIRST")
    second = functools.partial(dcm.make_instance, study_uid=second_uid, patient_id="P-SECOND")
    index_now(stored_upload(acme, [first(sop_uid=a), first(), second(sop_uid=b), second()]))
    # b moves into the first study while a moves into the second, at the same time.
    moves = [stored_upload(acme, [first(sop_uid=b)]), stored_upload(acme, [second(sop_uid=a)])]
    # Each batch waits, holding its locks, until the other holds its own (or 2 s passed): the
    # moment two batches that lock a study after its instances deadlock.
    both_locked = threading.Barrier(2, timeout=2)
    write, write_batch = indexing._write, indexing._write_batch
    failures: list[BaseException] = []

    def paused_write(*args: object, **kwargs: object) -> None:
        try:
            both_locked.wait()
        except threading.BrokenBarrierError:
            pass
        write(*args, **kwargs)  # type: ignore[arg-type]

    def watched_write_batch(*args: object, **kwargs: object) -> None:
        try:
            write_batch(*args, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:
            failures.append(exc)  # a deadlock PostgreSQL broke, retried by _index_batch
            raise

    monkeypatch.setattr(indexing, "_write", paused_write)
    monkeypatch.setattr(indexing, "_write_batch", watched_write_batch)

    assert not index_concurrently(moves)
    assert failures == []
    assert Instance.objects.get(sop_uid=b).series.study.study_uid == first_uid
    assert Instance.objects.get(sop_uid=a).series.study.study_uid == second_uid
    for study in Study.objects.filter(organization=acme):
        assert study.instance_count == 2 == Instance.objects.filter(series__study=study).count()


@pytest.mark.services  # another session's delete, committed between the batch's read and its locks
@pytest.mark.parametrize("patient_too", [False, True])
def test_it_indexes_into_a_study_deleted_between_its_check_and_its_lock(
    world: World, monkeypatch: pytest.MonkeyPatch, patient_too: bool
) -> None:
    from studies.index import services as indexing

    acme = world.alice.org
    study_uid = uids.generate_uid()
    make = functools.partial(dcm.make_instance, study_uid=study_uid, patient_id="P-GONE")
    index_now(stored_upload(acme, [make()]))
    late = stored_upload(acme, [make()])

    def delete_elsewhere() -> None:
        try:
            with transaction.atomic():
                Instance.objects.filter(series__study__study_uid=study_uid).delete()
                Series.objects.filter(study__study_uid=study_uid).delete()
                Study.objects.filter(study_uid=study_uid).delete()
                if patient_too:
                    Patient.objects.filter(patient_id="P-GONE").delete()
        finally:
            connection.close()

    # The batch found the study (so it neither inserts it nor its patient) and is about to lock
    # them when they go: it must run again and create both, not index into nothing.
    patients, deleted = indexing._patients, threading.Event()

    def deleted_first(*args: Any, **kwargs: Any) -> Any:
        if not deleted.is_set():
            deleted.set()
            elsewhere = threading.Thread(target=delete_elsewhere)
            elsewhere.start()
            elsewhere.join(30)
        return patients(*args, **kwargs)

    monkeypatch.setattr(indexing, "_patients", deleted_first)
    upload = index_now(late)

    assert deleted.is_set()
    assert (upload.state, upload.instances_indexed, upload.instances_rejected) == (UploadState.DONE, 1, 0)
    study = Study.objects.get(organization=acme, study_uid=study_uid)
    assert study.patient.patient_id == "P-GONE"
    rows = (Series.objects.filter(study=study).count(), Instance.objects.filter(series__study=study).count())
    assert (study.series_count, study.instance_count) == (1, 1) == rows
    assert Series.objects.get(study=study).instance_count == 1


def test_it_waits_and_tries_again_in_embedded_mode_before_failing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a broker the task runs called directly (core.tasks): the backoff is a wait."""
    healthy = stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=3))
    doomed = stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=2))
    [(start, stop)] = upload_index_begin(upload_id=str(healthy.pk))
    [(d_start, d_stop)] = upload_index_begin(upload_id=str(doomed.pk))
    waits: list[float] = []
    monkeypatch.setattr("studies.index.tasks.time.sleep", waits.append)
    failures = {str(healthy.pk): 2, str(doomed.pk): 100}

    def flaky(*, upload_id: str, start: int, stop: int) -> None:
        if failures[upload_id] > 0:
            failures[upload_id] -= 1
            raise OperationalError("database is locked")
        upload_index_part(upload_id=upload_id, start=start, stop=stop)

    monkeypatch.setattr(tasks, "upload_index_part", flaky)

    tasks.index_upload_part(str(healthy.pk), start, stop)
    healthy.refresh_from_db()
    assert (healthy.state, healthy.instances_indexed, waits) == (UploadState.DONE, 3, [1, 2])

    waits.clear()
    with pytest.raises(OperationalError):
        tasks.index_upload_part(str(doomed.pk), d_start, d_stop)
    doomed.refresh_from_db()
    assert waits == [1, 2, 4, 8, 16]
    assert (doomed.state, doomed.error, doomed.instances_rejected) == (UploadState.FAILED, tasks.GIVE_UP, 2)


def test_it_indexes_with_the_file_meta_ingest_kept_without_reading_the_group_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_again(fp: object) -> None:
        raise AssertionError("the File Meta group was read again at indexing")

    monkeypatch.setattr(header, "file_meta_read", not_again)
    upload = index_now(stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=3)))

    assert (upload.state, upload.instances_indexed) == (UploadState.DONE, 3)
    assert set(Instance.objects.values_list("transfer_syntax_uid", flat=True)) == {"1.2.840.10008.1.2.1"}


def test_it_reads_the_file_meta_of_an_item_stored_before_ingest_kept_it(world: World) -> None:
    upload = stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=2))
    UploadItem.objects.filter(upload=upload).update(transfer_syntax_uid="", data_set_offset=None)

    assert index_now(upload).instances_indexed == 2
