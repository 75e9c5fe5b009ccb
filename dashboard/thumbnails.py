"""Thumbnails on the dashboard's study pages: a study's or a series' first image, rendered by
the DICOMweb renderer (PS3.18 §10.4.1.1.5) once and then kept in the cache, so a page of a
2,000-instance study costs one small image per series however often it is opened."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import cache_control

from accounts.models import Organization
from core.errors import ApiError
from dicomweb.rendered import IMAGE_FIELDS
from dicomweb.rendering import THUMBNAIL_PIXELS, Rendering, render
from dicomweb.selectors import Target, instances_get
from studies.models import Series, Study

_JPEG = Rendering(media_type="image/jpeg", viewport=(THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
_KEPT_SECONDS = 7 * 24 * 3600


def thumbnail_jpeg(*, organization: Organization, target: Target) -> bytes:
    """The target's first image as a JPEG within 128 × 128 pixels. Cached under the image's own
    SHA-256, so a replaced instance gets a new thumbnail. Raises Http404 when nothing there holds
    an image that can be rendered."""
    try:
        rows = instances_get(organization=organization, target=target, fields=IMAGE_FIELDS)
    except ApiError:
        raise Http404("No such study or series.") from None
    row = next((r for r in rows if r["number_of_frames"] is not None), None)
    if row is None:
        raise Http404("Nothing here holds an image.")
    key = f"dashboard:thumbnail:{row['sha256']}"
    image: bytes | None = cache.get(key)
    if image is None:
        try:
            image = render(row, frame=1, how=_JPEG)
        except ApiError:
            raise Http404("The image cannot be rendered.") from None
        cache.set(key, image, _KEPT_SECONDS)
    return image


def _answer(request: HttpRequest, organization: Organization, target: Target) -> HttpResponse:
    if not request.user.has_perm("studies.view_study"):
        raise PermissionDenied
    return HttpResponse(thumbnail_jpeg(organization=organization, target=target), content_type="image/jpeg")


@cache_control(private=True, max_age=300)
@staff_member_required
def study_thumbnail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("organization"), pk=study_id)
    return _answer(request, study.organization, Target(study.study_uid))


@cache_control(private=True, max_age=300)
@staff_member_required
def series_thumbnail(request: HttpRequest, series_id: int) -> HttpResponse:
    series = get_object_or_404(Series.objects.select_related("study__organization"), pk=series_id)
    return _answer(request, series.study.organization, Target(series.study.study_uid, series.series_uid))
