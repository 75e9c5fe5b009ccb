from __future__ import annotations

from django.db import models
from django.utils import timezone


class Plan(models.Model):
    """Limits of an organization. Empty limit = unlimited. Plans are data, edited in the dashboard."""

    name = models.CharField(max_length=64, unique=True)
    slug = models.SlugField(max_length=64, unique=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    bandwidth_bps = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Streaming bandwidth in bits per second."
    )
    max_study_bytes = models.PositiveBigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Organization(models.Model):
    """The tenant: every study, upload, stream and record belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="organizations")
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    STANDARD = "standard", "Standard (upload, read, stream)"
    ADMIN = "admin", "Admin (also delete)"


class APIKey(models.Model):
    """An API key. Only its SHA-256 digest is stored; `prefix` identifies it in lists and logs."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STANDARD)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    # DRF puts the key in request.user too; it answers the one question DRF asks of a user.
    is_authenticated = True

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class AppendOnlyQuerySet(models.QuerySet["AuditEntry"]):
    """Refuses bulk changes, so no ORM path (code, shell, admin action) can rewrite the log."""

    def update(self, **kwargs: object) -> int:
        raise PermissionError("the audit log is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is append-only")

    def bulk_update(self, *args: object, **kwargs: object) -> int:
        raise PermissionError("the audit log is append-only")


class AuditEntry(models.Model):
    """One append-only audit log entry (API.md §5). Written only by accounts.audit.log.audit_append,
    in the same transaction as the change it records; `entry_hash` chains it to the entry before,
    so any edit or removal of a row is detectable (`manage.py verify_audit_log`).

    The tenant and the key are copied as plain values, not foreign keys: an entry must outlive
    and never cascade with what it describes.
    """

    created = models.DateTimeField(default=timezone.now, editable=False)
    action = models.CharField(max_length=40)  # e.g. "study.delete"
    outcome = models.CharField(max_length=20)  # "success", "forbidden", "not-found", ...
    status_code = models.PositiveSmallIntegerField()
    organization_id_value = models.BigIntegerField(db_index=True)
    organization_slug = models.CharField(max_length=64)
    key_id = models.BigIntegerField(null=True)
    key_prefix = models.CharField(max_length=16, blank=True)
    key_role = models.CharField(max_length=16, blank=True)
    request_id = models.CharField(max_length=36)
    client_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    study_uid = models.CharField(max_length=64, blank=True)
    patient_id = models.CharField(max_length=512, blank=True)  # as indexed, never cut
    series_count = models.PositiveIntegerField(default=0)
    instance_count = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization_id_value", "action", "created"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.study_uid} {self.outcome} ({self.organization_slug})"

    # The one save()/delete() override in the codebase: append-only is a property of the row
    # itself, and Model.save/delete bypass the QuerySet guards above.
    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is append-only")


class UsageMinute(models.Model):
    """One organization's requests answered with one status in one minute, with their body bytes
    (accounts/usage.py writes them; the dashboard's usage page reads them)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage")
    minute = models.DateTimeField()  # its start, UTC
    status = models.PositiveSmallIntegerField()  # the HTTP status: a refusal's is its reason
    requests = models.PositiveIntegerField(default=0)
    bytes_in = models.PositiveBigIntegerField(default=0)  # request bodies: uploads
    bytes_out = models.PositiveBigIntegerField(default=0)  # response bodies: retrievals

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "minute", "status"], name="usage_per_org_minute_status")
        ]

    def __str__(self) -> str:
        return f"organization {self.organization_id}, {self.minute}, status {self.status}: {self.requests} requests"
