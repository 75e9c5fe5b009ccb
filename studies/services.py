"""Writes of the studies API: permanently deleting a study (API.md §5), its bytes removed
crash-safely after commit (studies/objects/deletion.py)."""

from __future__ import annotations

from typing import NoReturn

from django.db import transaction
from django.db.models import Sum

from accounts.audit.log import Actor, Attempt, Subject, audit_append, audit_append_unauthenticated
from accounts.permissions import ADMIN_ONLY
from core.errors import ApiError, invalid_parameters, not_found
from dicom.uid import uid_is_acceptable
from studies.index.record_events import record_study_deleted
from studies.models import Instance, Series, Study
from studies.objects.deletion import objects_delete_on_commit

STUDY_DELETE = "study.delete"


UID_REFUSAL = "Not a DICOM UID (digits and dots, at most 64 characters)."


def invalid_study_uid() -> ApiError:
    """400 for a study UID the one UID rule refuses (dicom/uid.py)."""
    return invalid_parameters({"study_uid": [UID_REFUSAL]})


def study_not_found() -> ApiError:
    """404 for a study the organization does not have (whoever else may have one)."""
    return not_found("No such study.")


def study_delete(*, actor: Actor, study_uid: str) -> Subject:
    """Permanently delete a study of the actor's organization: rows, bytes (after commit), its
    record event and the audit entry, in one transaction.

    Every refusal is audited here, in a transaction of its own (nothing else changes), and
    raised as an ApiError: a key without the admin role (403), a study UID the UID rule refuses
    (400), no such study in the organization (404, whoever else may have one).

    The study row is locked first, so a concurrent indexing of the same study either finishes
    before (and its instances are deleted too) or runs after (and starts a new study)."""
    if actor.key is None or not actor.key.is_admin:
        _refuse(actor, study_uid, "forbidden", ApiError(403, ADMIN_ONLY))
    if not uid_is_acceptable(study_uid):
        _refuse(actor, study_uid, "invalid", invalid_study_uid())
    with transaction.atomic():
        study = (
            Study.objects.select_for_update()
            .filter(organization=actor.organization, study_uid=study_uid)
            .select_related("patient")
            .first()
        )
        subject = None if study is None else _delete(actor, study)
    if subject is None:
        _refuse(actor, study_uid, "not-found", study_not_found())
    return subject


def study_delete_unauthenticated(*, attempt: Attempt, study_uid: str) -> None:
    """Audit a delete refused for want of a valid key (401: none, unknown, revoked or expired);
    the caller raises the refusal. Nothing else is read or changed."""
    audit_append_unauthenticated(
        action=STUDY_DELETE,
        outcome="unauthenticated",
        status_code=401,
        attempt=attempt,
        subject=Subject(study_uid=study_uid),
    )


def _delete(actor: Actor, study: Study) -> Subject:
    instances = Instance.objects.filter(series__study=study)
    keys = list(instances.values_list("object_key", flat=True))
    totals = Series.objects.filter(study=study).aggregate(instances=Sum("instance_count"), bytes=Sum("bytes"))
    subject = Subject(
        study_uid=study.study_uid,
        patient_id=study.patient.patient_id,
        series_count=study.series_count,
        instance_count=totals["instances"] or 0,
        bytes=totals["bytes"] or 0,
    )
    objects_delete_on_commit(keys)
    instances.delete()
    Series.objects.filter(study=study).delete()
    study.delete()
    record_study_deleted(
        organization_id=actor.organization.pk, study_uid=subject.study_uid, patient_id=subject.patient_id
    )
    audit_append(action=STUDY_DELETE, outcome="success", status_code=200, actor=actor, subject=subject)
    return subject


def _refuse(actor: Actor, study_uid: str, outcome: str, error: ApiError) -> NoReturn:
    """Audit a refused delete, then raise the refusal."""
    audit_append(
        action=STUDY_DELETE,
        outcome=outcome,
        status_code=error.status,
        actor=actor,
        subject=Subject(study_uid=study_uid),
    )
    raise error
