"""Reads of ingest (uploads, streams), always scoped to one organization."""

from __future__ import annotations

from django.http import Http404

from accounts.models import Organization
from studies.models import Stream, Upload


def upload_get(*, organization: Organization, upload_id: str) -> Upload:
    """The organization's upload with this id (= request id); Http404 for anyone else's."""
    upload = Upload.objects.filter(organization=organization, pk=upload_id).first()
    if upload is None:
        raise Http404
    return upload


def stream_get(*, organization: Organization, stream_id: str) -> Stream:
    """The organization's stream with this X-Stream-Id; Http404 for anyone else's."""
    stream = Stream.objects.filter(organization=organization, stream_id=stream_id).first()
    if stream is None:
        raise Http404
    return stream
