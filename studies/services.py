"""Writes of the studies API: permanently deleting a study (API.md §5), its bytes removed
crash-safely after commit (studies/objects/deletion.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum

from accounts.audit.log import Actor, Subject, audit_append
from studies.index.record_events import record_study_deleted
from studies.models import Instance, Series, Study
from studies.objects.deletion import objects_delete_on_commit

STUDY_DELETE = "study.delete"


@dataclass(frozen=True)
class Refusal:
    """Why a delete was refused, as the audit log records it."""

    outcome: str  # "forbidden", "not-found", "invalid"
    status_code: int


def study_delete(*, actor: Actor, study_uid: str) -> Subject | None:
    """Permanently delete a study of the actor's organization: rows, bytes (after commit), its
    record event and the audit entry, in one transaction. None if there is no such study
    (audited as not-found).

    The study row is locked first, so a concurrent indexing of the same study either finishes
    before (and its instances are deleted too) or runs after (and starts a new study)."""
    with transaction.atomic():
        study = (
            Study.objects.select_for_update()
            .filter(organization=actor.organization, study_uid=study_uid)
            .select_related("patient")
            .first()
        )
        if study is None:
            study_delete_refused(actor=actor, study_uid=study_uid, refusal=Refusal("not-found", 404))
            return None
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


def study_delete_refused(*, actor: Actor, study_uid: str, refusal: Refusal) -> None:
    """Audit a refused delete (role, unknown study, malformed UID): nothing changes but the log."""
    audit_append(
        action=STUDY_DELETE,
        outcome=refusal.outcome,
        status_code=refusal.status_code,
        actor=actor,
        subject=Subject(study_uid=study_uid),
    )
