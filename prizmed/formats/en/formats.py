"""ISO 8601-like dates in the dashboard: unambiguous, sortable, and narrow enough that the key
and audit lists keep their expiry and revocation columns in view at 1400 px."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
