from __future__ import annotations

from django.apps import AppConfig


class DicomwebConfig(AppConfig):
    """DICOMweb (PS3.18) over the studies index: no models of its own."""

    name = "dicomweb"
    verbose_name = "DICOMweb"
