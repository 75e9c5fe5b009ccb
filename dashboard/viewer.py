"""The OHIF Viewer at /viewer/, configured for PrizMed's own DICOMweb (docs/dashboard.md).

`make run` unpacks OHIF's prebuilt ``dist/`` (npm ``@ohif/app``, version pinned in the Makefile)
into ``VIEWER_ROOT`` and moves it under /viewer/ (dashboard/viewer_install.py); its files are
served as static assets (dashboard/static.py). Three things are PrizMed's own: the page, served
for every client-side route; ``app-config.js``, which points the viewer at this server's
DICOMweb; and the link from a study's dashboard page, which grants the viewer read access
(dashboard/viewer_access.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache

from core.links import DICOMWEB_PATH
from dashboard.viewer_access import viewer_access_grant
from studies.models import Study

PREFIX = "/viewer/"


@cache
def _page(root: Path) -> str:
    return (root / "index.html").read_text(encoding="utf-8")  # moved under /viewer/ at install


@never_cache
@staff_member_required
def viewer_page(request: HttpRequest, route: str = "") -> HttpResponse:
    """The viewer's page for any of its client-side routes (``/viewer/viewer?StudyInstanceUIDs=…``)."""
    root = Path(settings.VIEWER_ROOT)
    if not (root / "index.html").is_file():
        raise Http404("The viewer is not installed here: `make viewer` (part of `make run`) installs it.")
    return HttpResponse(_page(root), content_type="text/html; charset=utf-8")


@never_cache
@staff_member_required
def viewer_config(request: HttpRequest) -> HttpResponse:
    """``window.config`` for OHIF v3: one DICOMweb data source, this server's (PS3.18)."""
    # Same origin, by path: the viewer's cookie is sent only there, whatever host serves the page.
    root = DICOMWEB_PATH
    source = {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "prizmed",
        "configuration": {
            "friendlyName": "PrizMed",
            "name": "prizmed",
            "wadoUriRoot": root,
            "qidoRoot": root,
            "wadoRoot": root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "staticWado": False,
            "singlepart": "bulkdata,video",
            "bulkDataURI": {"enabled": True},
            "omitQuotationForMultipartRequest": True,
        },
    }
    config = {
        "routerBasename": PREFIX.rstrip("/"),
        "extensions": [],
        "modes": [],
        "showStudyList": False,  # studies are found in the dashboard, which grants access to one organization
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "showLoadingIndicator": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "prizmed",
        "dataSources": [source],
    }
    body = f"window.config = {json.dumps(config, indent=2)};\n"
    return HttpResponse(body, content_type="text/javascript; charset=utf-8")


@never_cache
@staff_member_required
def viewer_open(request: HttpRequest, study_id: int) -> HttpResponse:
    """From a study's dashboard page into the viewer: grant read access to the study's
    organization (a cookie, never a key) and open the study. 403 without the view permission."""
    if not request.user.has_perm("studies.view_study"):
        raise PermissionDenied
    study = get_object_or_404(Study.objects.only("study_uid", "organization_id"), pk=study_id)
    response = HttpResponseRedirect(f"{PREFIX}viewer?StudyInstanceUIDs={study.study_uid}")
    viewer_access_grant(response, request=request, organization_id=study.organization_id)
    return response
