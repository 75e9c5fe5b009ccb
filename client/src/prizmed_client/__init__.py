"""PrizMed API v2 client: resumable DICOM upload, studies, FHIR record stream, WADO-RS retrieval.

``PrizMedClient.from_env()`` reads ``PRIZMED_URL`` and ``PRIZMED_API_KEY``; the ``prizmed``
command (prizmed_client.cli) is built on it. See docs/client.md in the PrizMed repository.
"""

from prizmed_client.client import PrizMedClient
from prizmed_client.config import ConfigError, Settings
from prizmed_client.records import RecordEvent
from prizmed_client.report import UploadReport
from prizmed_client.transport import ApiError
from prizmed_client.version import __version__

__all__ = ["ApiError", "ConfigError", "PrizMedClient", "RecordEvent", "Settings", "UploadReport", "__version__"]
