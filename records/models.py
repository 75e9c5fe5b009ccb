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

    def __str__(self) -> str:
        return f"organization {self.organization_id} at event {self.last_seq}"


class EventKind(models.TextChoices):
    PATIENT = "Patient"  # created or updated
    STUDY = "ImagingStudy"  # created or updated
    DELETED = "deleted"  # a study was deleted


class RecordEvent(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    patient_id = models.CharField(max_length=512, blank=True)  # DICOM Patient ID, for the filter
    study_uid = models.CharField(max_length=64, blank=True)  # for the filter and `deleted`
    resource = models.JSONField(null=True)  # the FHIR resource as it was at this change
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "seq"], name="event_seq_per_org")]
        indexes = [models.Index(fields=["organization", "created"])]  # retention pruning

    def __str__(self) -> str:
        return f"event {self.seq}: {self.kind} {self.study_uid or self.patient_id}".rstrip()


class RecordSession(models.Model):
    """A named X-Record-Stream session: remembers the last event it delivered."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(APIKey, null=True, on_delete=models.SET_NULL, related_name="+")
    session_id = models.CharField(max_length=128)
    last_seq = models.BigIntegerField(default=0)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "session_id"], name="record_session_per_org")]

    def __str__(self) -> str:
        return f"record stream session {self.session_id}"


class RecordResource(models.Model):
    """The current FHIR resource of each patient and study: the log compacted to its latest state.

    Written by the same transaction as the event that produced it (a `deleted` event removes the
    study's row), so `seq` says which event it reflects. Snapshots and exports read this table,
    which keeps them valid after old events are pruned from the log.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=EventKind.choices)  # Patient or ImagingStudy
    # Patient IDs as long as the index keeps them (dicom.header.MAX_VALUE_CHARS), never cut.
    key = models.CharField(max_length=512)  # DICOM Patient ID or Study Instance UID
    patient_id = models.CharField(max_length=512, blank=True)  # for the `patient` filter
    study_uid = models.CharField(max_length=64, blank=True)  # for the `study` filter
    seq = models.BigIntegerField()
    resource = models.JSONField()
    updated = models.DateTimeField(default=timezone.now)  # when `seq` was written: FHIR meta.lastUpdated

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "kind", "key"], name="record_resource_per_org")]
        indexes = [models.Index(fields=["organization", "id"]), models.Index(fields=["organization", "seq"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


# --- FHIR search index (fhir-rest, issue 13) ---------------------------------------------------
class RecordSearchValue(models.Model):
    """One value of one FHIR search parameter of a current resource (records/search.py says which).

    Replaced with the resource's row in the transaction that writes it, so a search never sees a
    resource and values of two different versions. Token values keep their system; string values
    are folded (lower case, no accents); dates are the half-open UTC range [low, high) they cover.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    resource = models.ForeignKey(RecordResource, on_delete=models.CASCADE, related_name="search_values")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    param = models.CharField(max_length=32)
    system = models.CharField(max_length=255, blank=True)
    value = models.CharField(max_length=512, blank=True)  # records.search.MAX_VALUE
    low = models.DateTimeField(null=True)
    high = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "kind", "param", "value"], name="record_search_value"),
            models.Index(fields=["organization", "kind", "param", "low"], name="record_search_date"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}.{self.param} = {self.system}|{self.value}"
