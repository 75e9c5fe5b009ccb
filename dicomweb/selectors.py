"""The stored instances a WADO-RS request names, read for one organization only: another
tenant's study, series or instance is not found (404), as API.md requires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Organization
from core.compiled_lookup import CompiledLookup
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
    found = _found(organization, target, fields)
    if not found:
        raise not_found(f"No such {target.what}.")
    return found


def target_check(*, organization: Organization, target: Target) -> None:
    """Raises ApiError 404 unless the organization has an instance at the target, as
    ``instances_get`` would, reading one row's id instead of every instance's fields."""
    if not _found(organization, target, None):
        raise not_found(f"No such {target.what}.")


def _found(organization: Organization, target: Target, fields: tuple[str, ...] | None) -> list[dict[str, Any]]:
    return _lookup(target.series_uid is not None, target.sop_uid is not None, fields).dicts(
        organization_id=organization.pk,
        study_uid=target.study_uid,
        series_uid=target.series_uid,
        sop_uid=target.sop_uid,
    )


# Every WADO-RS request makes one of these lookups: each shape compiled once (building the
# QuerySet cost ~0.35 ms a request, more than the database's answer; core/compiled_lookup.py).
_lookups: dict[tuple[bool, bool, tuple[str, ...] | None], CompiledLookup[Instance]] = {}


def _lookup(by_series: bool, by_sop: bool, fields: tuple[str, ...] | None) -> CompiledLookup[Instance]:
    """The target's instances with the retrieval fields and ``fields``; ``None``: one id only."""
    shape = (by_series, by_sop, fields)
    lookup = _lookups.get(shape)
    if lookup is None:

        def build(organization_id: int, study_uid: str, series_uid: str = "", sop_uid: str = "") -> Any:
            rows = Instance.objects.filter(organization_id=organization_id, series__study__study_uid=study_uid)
            if by_series:
                rows = rows.filter(series__series_uid=series_uid)
            if by_sop:
                rows = rows.filter(sop_uid=sop_uid)
            if fields is None:
                return rows.values("id")[:1]
            paths = dict.fromkeys(_RETRIEVAL_FIELDS + fields)
            return rows.order_by("series__number", "series_id", "number", "id").values(*paths)

        placeholders: dict[str, object] = {"organization_id": -1, "study_uid": "\x00study"}
        if by_series:
            placeholders["series_uid"] = "\x00series"
        if by_sop:
            placeholders["sop_uid"] = "\x00sop"
        lookup = _lookups[shape] = CompiledLookup(build, **placeholders)
    return lookup
