"""Studies: what was uploaded (Upload, Stream, Chunk, UploadItem) and what it indexed to
(Patient, Study, Series, Instance), per organization.

Counts and sizes are kept on the rows by the services that write them, so reads never count.
Reads of these tables go through the selectors (studies/selectors.py, studies/ingest/selectors.py),
scoped to an organization.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from accounts.models import APIKey, Organization
from core.model_fields import ValuesInsertTextField
from dicom.part10 import FileMeta


class UploadState(models.TextChoices):
    RECEIVING = "receiving"
    QUEUED = "queued"
    INDEXING = "indexing"
    DONE = "done"
    FAILED = "failed"


class Upload(models.Model):
    """One upload: a single request (its X-Request-Id) or the payload of a completed stream."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)  # = the request id
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="uploads")
    api_key = models.ForeignKey(APIKey, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=UploadState.choices, default=UploadState.RECEIVING)
    content_type = models.CharField(max_length=200)
    bytes_received = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)  # of the bytes stored, once received
    # Of the request body as sent, when it came with a Content-Digest: a replay's digest is
    # compared with it (issue 10); without one a replay is compared by ``sha256``.
    payload_sha256 = models.CharField(max_length=64, blank=True)
    instances_received = models.PositiveIntegerField(default=0)
    instances_indexed = models.PositiveIntegerField(default=0)
    instances_rejected = models.PositiveIntegerField(default=0)
    study_uids = models.JSONField(default=list)
    error = models.TextField(blank=True)  # why the whole upload failed, for `failed`
    # STOW-RS to one study (POST /dicomweb/studies/{study}): instances of another are rejected.
    required_study_uid = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["state", "updated"])]

    def __str__(self) -> str:
        return str(self.id)


class ItemState(models.TextChoices):
    STORED = "stored"
    INDEXED = "indexed"
    REJECTED = "rejected"


class UploadItem(models.Model):
    """One instance of an upload, stored as its own object and waiting to be indexed."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()  # 0-based order within the upload
    object_key = models.CharField(max_length=512)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=ItemState.choices, default=ItemState.STORED)
    reason = models.CharField(max_length=300, blank=True)  # for rejected: human-readable
    reason_code = models.CharField(max_length=40, blank=True)  # for rejected: machine-friendly
    sop_instance_uid = models.CharField(max_length=64, blank=True)  # (0008,0018), once indexed
    # The File Meta group (PS3.10 §7.1) as ingest read it, so indexing does not read it again.
    # Blank (and no offset) for items stored before ingest kept it: indexing reads those itself.
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)  # (0002,0010)
    media_storage_sop_class_uid = models.CharField(max_length=64, blank=True)  # (0002,0002)
    media_storage_sop_instance_uid = models.CharField(max_length=64, blank=True)  # (0002,0003)
    data_set_offset = models.PositiveIntegerField(null=True)  # where the data set starts
    # The rest of the item's outcome (docs/indexing.md, "Every instance accounted for"): its
    # Study and Series UIDs when readable (sop_instance_uid too, for a rejection), whether it
    # replaced an earlier copy, and what it was indexed with though non-conformant
    # ([{"code", "message"}], dicom.header.ItemWarning).
    study_instance_uid = models.CharField(max_length=64, blank=True)  # (0020,000D)
    series_instance_uid = models.CharField(max_length=64, blank=True)  # (0020,000E)
    replaced = models.BooleanField(default=False)
    warnings = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["upload", "position"], name="uploaditem_position")]

    def __str__(self) -> str:
        return f"{self.upload_id} #{self.position}"

    @staticmethod
    def file_meta_columns(meta: FileMeta) -> dict[str, Any]:
        """The columns that keep ``meta`` (ingest writes them)."""
        return {
            "transfer_syntax_uid": meta.transfer_syntax_uid,
            "media_storage_sop_class_uid": meta.media_storage_sop_class_uid,
            "media_storage_sop_instance_uid": meta.media_storage_sop_instance_uid or "",
            "data_set_offset": meta.end,
        }

    def file_meta(self) -> FileMeta | None:
        """The File Meta group ingest kept (indexing reads it); None for an item stored before."""
        if not self.transfer_syntax_uid or self.data_set_offset is None:
            return None
        return FileMeta(
            transfer_syntax_uid=self.transfer_syntax_uid,
            media_storage_sop_class_uid=self.media_storage_sop_class_uid,
            media_storage_sop_instance_uid=self.media_storage_sop_instance_uid or None,
            end=self.data_set_offset,
        )


class StreamState(models.TextChoices):
    OPEN = "open"
    COMPLETE = "complete"
    ABORTED = "aborted"
    EXPIRED = "expired"


class Stream(models.Model):
    """A chunked, resumable upload (X-Stream-Id): chunks are kept until the payload is whole."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="streams")
    stream_id = models.CharField(max_length=128)  # the client's X-Stream-Id
    state = models.CharField(max_length=16, choices=StreamState.choices, default=StreamState.OPEN)
    content_type = models.CharField(max_length=200)
    last_seq = models.PositiveIntegerField(null=True)  # known once X-Chunk-Last arrived
    upload = models.OneToOneField(Upload, null=True, on_delete=models.SET_NULL, related_name="stream")
    # Why the last assembly refused the payload (studies/ingest/assembly.py): {"upload_id",
    # "status", "slug", "detail", "headers"}; cleared when a chunk claims the assembly again.
    assembly_problem = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "stream_id"], name="stream_per_org")]
        indexes = [models.Index(fields=["state", "updated"])]

    def __str__(self) -> str:
        return f"stream {self.stream_id}"


class Chunk(models.Model):
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    object_key = models.CharField(max_length=512)
    received = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="chunk_seq")]

    def __str__(self) -> str:
        return f"chunk {self.seq} of stream {self.stream_id}"


# Indexed text is kept whole up to dicom.header.MAX_VALUE_CHARS, whatever its VR's maximum.
VALUE_CHARS = 512


class Patient(models.Model):
    """A patient by DICOM Patient ID within an organization. Patient ID is Type 2: an instance
    with an empty one gets a patient of its own per study (``study_uid`` set), never one shared
    by every study that lacks an ID (that would mix people)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="patients")
    patient_id = models.CharField(max_length=VALUE_CHARS, blank=True)  # DICOM (0010,0020)
    study_uid = models.CharField(max_length=64, blank=True)  # only when patient_id is empty
    name = models.CharField(max_length=VALUE_CHARS, blank=True)  # PN, its three groups "="-joined
    birth_date = models.DateField(null=True)
    sex = models.CharField(max_length=1, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "patient_id", "study_uid"], name="patient_per_org_key")
        ]
        indexes = [models.Index(fields=["organization", "name"])]

    def __str__(self) -> str:
        return f"{self.patient_id} ({self.name})" if self.name else f"patient {self.patient_id}"


class Study(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="studies")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_uid = models.CharField(max_length=64)
    study_date = models.DateField(null=True)
    study_time = models.TimeField(null=True)
    # (0008,0201) Timezone Offset From UTC, "+hh:mm", qualifying study_date/study_time; "" unknown.
    timezone_offset = models.CharField(max_length=6, blank=True)
    accession_number = models.CharField(max_length=VALUE_CHARS, blank=True)
    description = models.CharField(max_length=VALUE_CHARS, blank=True)
    referring_physician = models.CharField(max_length=VALUE_CHARS, blank=True)
    modalities = models.JSONField(default=list)  # sorted distinct modalities of its series
    series_count = models.PositiveIntegerField(default=0)
    instance_count = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    first_received = models.DateTimeField(default=timezone.now)
    last_received = models.DateTimeField(default=timezone.now)
    study_id = models.CharField(max_length=VALUE_CHARS, blank=True)  # (0020,0010), a QIDO-RS matching key

    class Meta:
        verbose_name_plural = "studies"
        constraints = [models.UniqueConstraint(fields=["organization", "study_uid"], name="study_per_org")]
        indexes = [
            models.Index(fields=["organization", "study_date", "id"]),
            models.Index(fields=["organization", "accession_number"]),
            models.Index(fields=["organization", "patient"]),
        ]

    def __str__(self) -> str:
        return f"study {self.study_uid}"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(max_length=64)
    number = models.IntegerField(null=True)
    modality = models.CharField(max_length=VALUE_CHARS, blank=True)
    description = models.CharField(max_length=VALUE_CHARS, blank=True)
    body_part = models.CharField(max_length=VALUE_CHARS, blank=True)
    instance_count = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    # Longest "/"-ending key prefix shared by its instances' objects (kept by the indexer), so
    # the API can name the series' storage location without looking at its instances.
    storage_prefix = models.CharField(max_length=512, blank=True)
    # QIDO-RS series matching keys (PS3.18 Table 10.6.1-5), as the newest instance has them;
    # the Request Attributes Sequence's from its first item.
    performed_procedure_step_start_date = models.DateField(null=True)  # (0040,0244)
    performed_procedure_step_start_time = models.TimeField(null=True)  # (0040,0245)
    scheduled_procedure_step_id = models.CharField(max_length=VALUE_CHARS, blank=True)  # (0040,0275) > (0040,0009)
    requested_procedure_id = models.CharField(max_length=VALUE_CHARS, blank=True)  # (0040,0275) > (0040,1001)

    class Meta:
        verbose_name_plural = "series"
        constraints = [models.UniqueConstraint(fields=["study", "series_uid"], name="series_per_study")]

    def __str__(self) -> str:
        return f"series {self.series_uid}"


class Instance(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    transfer_syntax_uid = models.CharField(max_length=64)
    number = models.IntegerField(null=True)
    object_key = models.CharField(max_length=512)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    received = models.DateTimeField(default=timezone.now)
    # What DICOMweb serves without opening the file (studies/index/dicomweb_attributes.py):
    # the image attributes QIDO-RS returns and rendering checks before it allocates anything,
    rows = models.PositiveIntegerField(null=True)  # (0028,0010)
    columns = models.PositiveIntegerField(null=True)  # (0028,0011)
    samples_per_pixel = models.PositiveIntegerField(null=True)  # (0028,0002)
    bits_allocated = models.PositiveIntegerField(null=True)  # (0028,0100)
    number_of_frames = models.PositiveIntegerField(null=True)  # (0028,0008); null: not an image
    # the instance's DICOM JSON (PS3.18 Annex F) with BulkDataURIs relative to the server's base
    # (inserted as VALUES, not UNNEST arrays: core/model_fields.py),
    metadata = ValuesInsertTextField(blank=True)
    # where its pixel data lies ({"vr", "tag", "value", "encapsulated", "offsets", "fragments",
    # "extended"}; null without pixel data) and its other bulk data ({path: [offset, length]}).
    pixel_data = models.JSONField(null=True)
    bulk_data = models.JSONField(default=dict)

    class Meta:
        # A re-sent instance replaces the old one: SOP Instance UIDs are unique per tenant.
        constraints = [models.UniqueConstraint(fields=["organization", "sop_uid"], name="instance_per_org")]
        # QIDO-RS lists a series' instances in Instance Number order.
        indexes = [models.Index(fields=["series", "number"], name="instance_series_number")]

    def __str__(self) -> str:
        return f"instance {self.sop_uid}"


class PendingObjectDeletion(models.Model):
    """Stored objects whose rows are gone: written in the deleting transaction, removed once the
    bytes are. A crash between the two leaves this row, and the next sweep finishes the job."""

    object_key = models.CharField(max_length=512, unique=True)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending deletion of {self.object_key}"
