"""The record event log (outbox): every change to a patient or study, numbered per organization.

An event is written in the same transaction as the change, taking the next number from its
organization's EventCounter row (locked for the transaction), so numbers are gap-free and
commit in order: a reader that has seen N can always ask for "after N" and miss nothing.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import APIKey, Organization


class EventCounter(models.Model):
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, primary_key=True)
    last_seq = models.BigIntegerField(default=0)


class EventKind(models.TextChoices):
    PATIENT = "Patient"  # created or updated
    STUDY = "ImagingStudy"  # created or updated
    DELETED = "deleted"  # a study was deleted


class RecordEvent(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    patient_id = models.CharField(max_length=64, blank=True)  # DICOM Patient ID, for the filter
    study_uid = models.CharField(max_length=64, blank=True)  # for the filter and `deleted`
    resource = models.JSONField(null=True)  # the FHIR resource as it was at this change
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "seq"], name="event_seq_per_org")]


class RecordSession(models.Model):
    """A named X-Record-Stream session: remembers the last event it delivered."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(APIKey, null=True, on_delete=models.SET_NULL, related_name="+")
    session_id = models.CharField(max_length=128)
    last_seq = models.BigIntegerField(default=0)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "session_id"], name="record_session_per_org")]
