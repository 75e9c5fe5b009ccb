"""The attributes QIDO-RS matches and returns (PS3.18 §10.6, Tables 10.6.1-5 and 10.6.3-3/4/5),
each bound to the index column that holds it.

A query runs on one level's rows (studies, series or instances); an attribute is owned by a
level, and ``lookup(level)`` is its ORM path from the query's rows (a series query reaches its
study's attributes through ``study__``). Attributes without a column (anything else a client
names in ``includefield``) come from a representative instance's stored metadata instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag, tag_for_keyword


class Level(enum.Enum):
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


class Kind(enum.Enum):
    UID = "uid"  # UI: single value or list
    TEXT = "text"  # AE, CS, LO, SH: exact, list, wildcard
    PERSON_NAME = "pn"  # PN: as TEXT, but case-insensitive
    DATE = "date"  # DA: exact, list, range
    TIME = "time"  # TM: exact, list, range
    INTEGER = "integer"  # IS, US: exact, list
    MODALITIES = "modalities"  # ModalitiesInStudy: any of the study's series modalities
    COMPUTED = "computed"  # returned, never matched (counts, RetrieveURL, availability)


# From a query's rows to the owning level's row.
_PREFIX = {
    (Level.STUDY, Level.STUDY): "",
    (Level.SERIES, Level.SERIES): "",
    (Level.SERIES, Level.STUDY): "study__",
    (Level.INSTANCE, Level.INSTANCE): "",
    (Level.INSTANCE, Level.SERIES): "series__",
    (Level.INSTANCE, Level.STUDY): "series__study__",
}


@dataclass(frozen=True, slots=True)
class Attribute:
    """One QIDO-RS attribute: its tag path (``GGGGEEEE`` or ``SSSSSSSS.GGGGEEEE``), VR, owner
    level, how it matches, its column on the owner's row (None: computed), and whether it is
    among the attributes every answer at its level returns (PS3.18 Table 10.6.3-3/4/5)."""

    tag: str
    vr: str
    level: Level
    kind: Kind
    column: str | None
    default: bool = True

    def lookup(self, query_level: Level) -> str:
        assert self.column is not None
        return _PREFIX[(query_level, self.level)] + self.column

    def visible_from(self, query_level: Level) -> bool:
        return (query_level, self.level) in _PREFIX


S, E, I = Level.STUDY, Level.SERIES, Level.INSTANCE  # noqa: E741 - the three levels, as PS3.18 names them

ATTRIBUTES: dict[str, Attribute] = {
    attribute.tag: attribute
    for attribute in (
        # Study (Table 10.6.1-5 matching keys; Table 10.6.3-3 returned attributes).
        Attribute("00080020", "DA", S, Kind.DATE, "study_date"),
        Attribute("00080030", "TM", S, Kind.TIME, "study_time"),
        Attribute("00080050", "SH", S, Kind.TEXT, "accession_number"),
        Attribute("00080056", "CS", S, Kind.COMPUTED, None),  # InstanceAvailability
        Attribute("00080061", "CS", S, Kind.MODALITIES, "modalities"),
        Attribute("00080090", "PN", S, Kind.PERSON_NAME, "referring_physician"),
        Attribute("00081030", "LO", S, Kind.TEXT, "description"),
        Attribute("00081190", "UR", S, Kind.COMPUTED, None),  # RetrieveURL
        Attribute("00100010", "PN", S, Kind.PERSON_NAME, "patient__name"),
        Attribute("00100020", "LO", S, Kind.TEXT, "patient__patient_id"),
        Attribute("00100030", "DA", S, Kind.DATE, "patient__birth_date"),
        Attribute("00100040", "CS", S, Kind.TEXT, "patient__sex"),
        Attribute("0020000D", "UI", S, Kind.UID, "study_uid"),
        Attribute("00200010", "SH", S, Kind.TEXT, "study_id"),
        Attribute("00201206", "IS", S, Kind.COMPUTED, "series_count"),
        Attribute("00201208", "IS", S, Kind.COMPUTED, "instance_count"),
        # Series (Table 10.6.3-4).
        Attribute("00080060", "CS", E, Kind.TEXT, "modality"),
        Attribute("0008103E", "LO", E, Kind.TEXT, "description"),
        Attribute("00180015", "CS", E, Kind.TEXT, "body_part", default=False),
        Attribute("0020000E", "UI", E, Kind.UID, "series_uid"),
        Attribute("00200011", "IS", E, Kind.INTEGER, "number"),
        Attribute("00201209", "IS", E, Kind.COMPUTED, "instance_count"),
        Attribute("00400244", "DA", E, Kind.DATE, "performed_procedure_step_start_date"),
        Attribute("00400245", "TM", E, Kind.TIME, "performed_procedure_step_start_time"),
        Attribute("00400275.00400009", "SH", E, Kind.TEXT, "scheduled_procedure_step_id"),
        Attribute("00400275.00401001", "SH", E, Kind.TEXT, "requested_procedure_id"),
        # Instance (Table 10.6.3-5).
        Attribute("00080016", "UI", I, Kind.UID, "sop_class_uid"),
        Attribute("00080018", "UI", I, Kind.UID, "sop_uid"),
        Attribute("00083002", "UI", I, Kind.UID, "transfer_syntax_uid"),  # AvailableTransferSyntaxUID
        Attribute("00200013", "IS", I, Kind.INTEGER, "number"),
        Attribute("00280008", "IS", I, Kind.INTEGER, "number_of_frames"),
        Attribute("00280010", "US", I, Kind.INTEGER, "rows"),
        Attribute("00280011", "US", I, Kind.INTEGER, "columns"),
        Attribute("00280100", "US", I, Kind.INTEGER, "bits_allocated"),
    )
}
# The computed attributes each level's answer carries in place of a column of its own.
INSTANCE_AVAILABILITY = "00080056"
RETRIEVE_URL = "00081190"
MODALITIES_IN_STUDY = "00080061"
REQUEST_ATTRIBUTES_SEQUENCE = "00400275"
OWN_UID = {Level.STUDY: "0020000D", Level.SERIES: "0020000E", Level.INSTANCE: "00080018"}


class UnknownAttribute(ValueError):
    """Not a DICOM keyword or tag (PS3.6); ``str(exc)`` is safe to show."""


def tag_path(name: str) -> str:
    """``name`` (a keyword or ``GGGGEEEE`` tag, dotted for a sequence's item attribute, PS3.18
    §8.3.4.1) as a tag path ``GGGGEEEE[.GGGGEEEE]``; raises UnknownAttribute."""
    return ".".join(_tag(part) for part in name.split("."))


def _tag(part: str) -> str:
    if len(part) == 8 and all(c in "0123456789abcdefABCDEF" for c in part):
        return part.upper()
    tag = tag_for_keyword(part)
    if tag is None:
        raise UnknownAttribute(f"{part!r} is neither a DICOM keyword nor a tag (GGGGEEEE)")
    return f"{tag:08X}"


def keyword(tag: str) -> str:
    """The PS3.6 keyword of a tag path, for messages."""
    return ".".join(keyword_for_tag(int(part, 16)) or part for part in tag.split("."))
