"""The STOW-RS store response of an indexed upload (PS3.18 §10.5.3, Table 10.5.3-1; PS3.4
Annex B.2.3 failure reasons), read from the upload's items and the instances they became."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Organization
from core.links import dicomweb_path
from studies.index.services import FAILED, MISSING, STUDY_MISMATCH, TOO_LARGE
from studies.models import Instance, ItemState, Upload, UploadItem, UploadState

REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
RETRIEVE_URL = "00081190"
FAILURE_REASON = "00081197"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"

OUT_OF_RESOURCES = 0xA700  # the plan's study size
DATA_SET_MISMATCH = 0xA900  # another study than the one the request names
CANNOT_UNDERSTAND = 0xC000  # not an instance PrizMed can index
PROCESSING_FAILURE = 0x0110  # the server failed (indexing gave up, object lost)
_REASONS = {TOO_LARGE: OUT_OF_RESOURCES, STUDY_MISMATCH: DATA_SET_MISMATCH, FAILED: PROCESSING_FAILURE,
            MISSING: PROCESSING_FAILURE}  # fmt: skip


@dataclass(frozen=True)
class StoreOutcome:
    """200 every instance stored, 202 some failed, 409 none stored (Table 10.5.3-1)."""

    status: int
    body: dict[str, Any]


def failure_reason(reason_code: str) -> int:
    """The PS3.4 B.2.3 Failure Reason of an item the index rejected with ``reason_code``."""
    return _REASONS.get(reason_code, CANNOT_UNDERSTAND)


def store_outcome(
    *, organization: Organization, upload_id: str, base: str, study_uid: str | None
) -> StoreOutcome | None:
    """The store response of the organization's upload, or None while it is still indexed."""
    state = Upload.objects.filter(pk=upload_id, organization=organization).values_list("state", flat=True).first()
    if state not in (UploadState.DONE, UploadState.FAILED):
        return None
    items = list(
        UploadItem.objects.filter(upload_id=upload_id)
        .order_by("position")
        .values(
            "state", "reason_code", "sop_instance_uid", "media_storage_sop_class_uid", "media_storage_sop_instance_uid"
        )
    )
    indexed = [item["sop_instance_uid"] for item in items if item["state"] == ItemState.INDEXED]
    where = {
        row["sop_uid"]: row
        for row in Instance.objects.filter(organization=organization, sop_uid__in=indexed).values(
            "sop_uid", "sop_class_uid", "series__series_uid", "series__study__study_uid"
        )
    }
    referenced, failed, studies = [], [], set()
    for item in items:
        sop_uid = item["sop_instance_uid"] or item["media_storage_sop_instance_uid"]
        row = where.get(sop_uid) if item["state"] == ItemState.INDEXED else None
        if row is None:
            reason = failure_reason(item["reason_code"] or FAILED)
            failed.append(_reference(item["media_storage_sop_class_uid"], sop_uid) | {FAILURE_REASON: _us(reason)})
            continue
        studies.add(row["series__study__study_uid"])
        url = base + dicomweb_path(row["series__study__study_uid"], row["series__series_uid"], sop_uid)
        referenced.append(_reference(row["sop_class_uid"], sop_uid) | {RETRIEVE_URL: {"vr": "UR", "Value": [url]}})
    body: dict[str, Any] = {}
    one_study = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
    if one_study is not None and referenced:
        body[RETRIEVE_URL] = {"vr": "UR", "Value": [base + dicomweb_path(one_study)]}
    if failed:
        body[FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}
    if referenced:
        body[REFERENCED_SOP_SEQUENCE] = {"vr": "SQ", "Value": referenced}
    status = 200 if not failed else 202 if referenced else 409
    return StoreOutcome(status, body)


def _reference(sop_class_uid: str, sop_uid: str) -> dict[str, Any]:
    reference: dict[str, Any] = {REFERENCED_SOP_CLASS_UID: {"vr": "UI"}, REFERENCED_SOP_INSTANCE_UID: {"vr": "UI"}}
    if sop_class_uid:
        reference[REFERENCED_SOP_CLASS_UID]["Value"] = [sop_class_uid]
    if sop_uid:
        reference[REFERENCED_SOP_INSTANCE_UID]["Value"] = [sop_uid]
    return reference


def _us(value: int) -> dict[str, Any]:
    return {"vr": "US", "Value": [value]}
