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
