"""The stored instances a WADO-RS request names, read for one organization only: another
tenant's study, series or instance is not found (404), as API.md requires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Organization
from core.errors import not_found
from studies.models import Instance

_RETRIEVAL_FIELDS = (
    "id",
    "sop_uid",
    "sop_class_uid",
    "transfer_syntax_uid",
    "object_key",
    "size",
    "sha256",
    "series__series_uid",
    "series__study__study_uid",
)


@dataclass(frozen=True, slots=True)
class Target:
    """A WADO-RS resource: a study, a series of it, or an instance of that (PS3.18 §10.4.1)."""

    study_uid: str
    series_uid: str | None = None
    sop_uid: str | None = None

    @property
    def what(self) -> str:
        return "instance" if self.sop_uid else "series" if self.series_uid else "study"


def instances_get(*, organization: Organization, target: Target, fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The target's instances (the retrieval fields and ``fields``), in series and instance
    number order. Raises ApiError 404 when the organization has none there."""
    rows = Instance.objects.filter(organization=organization, series__study__study_uid=target.study_uid)
    if target.series_uid is not None:
        rows = rows.filter(series__series_uid=target.series_uid)
    if target.sop_uid is not None:
        rows = rows.filter(sop_uid=target.sop_uid)
    found = list(
        rows.order_by("series__number", "series_id", "number", "id").values(*dict.fromkeys(_RETRIEVAL_FIELDS + fields))
    )
    if not found:
        raise not_found(f"No such {target.what}.")
    return found
