"""How the embedded viewer reads DICOMweb without an API key in the browser.

Opening a study from the dashboard (a staff session) sets a short-lived cookie, signed with the
secret key, that names the study's organization and the staff user. The cookie is HttpOnly (no
script reads it), SameSite=Strict and scoped to the DICOMweb path, so the browser sends it only
on the viewer's own same-origin requests; it authorizes reads only (GET/HEAD), so a forged
cross-site request can neither send it nor change anything with it. It expires after
``VIEWER_ACCESS_SECONDS``; a user who is no longer active staff loses access at the next request.
docs/dashboard.md says why this, rather than a token in the viewer's URL: a URL ends up in
history and proxy logs, a cookie does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.http import HttpRequest, HttpResponse

from accounts.models import Organization
from core.asgi import ASGIApp, Receive, Scope, Send
from core.headers import header
from core.links import DICOMWEB_PATH
from dicomweb.request import ORGANIZATION

COOKIE = "prizmed_viewer"
_SALT = "prizmed.dashboard.viewer-access"


@dataclass(frozen=True, slots=True)
class ViewerGrant:
    """What a viewer cookie grants: reading one organization's DICOMweb, for one staff user."""

    organization_id: int
    user_id: int


def viewer_access_grant(response: HttpResponse, *, request: HttpRequest, organization_id: int) -> None:
    """Set the viewer cookie on ``response`` for the request's (staff) user and the organization."""
    value = signing.dumps({"o": organization_id, "u": request.user.pk}, salt=_SALT, compress=True)
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.VIEWER_ACCESS_SECONDS,
        path=f"{DICOMWEB_PATH}/",
        secure=request.is_secure(),
        httponly=True,
        samesite="Strict",
    )


def viewer_grant_read(value: str | None) -> ViewerGrant | None:
    """The grant a cookie value carries, or None when it is missing, forged or expired."""
    if not value:
        return None
    try:
        data = signing.loads(value, salt=_SALT, max_age=settings.VIEWER_ACCESS_SECONDS)
        return ViewerGrant(organization_id=int(data["o"]), user_id=int(data["u"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def _cookie(scope: Scope) -> str | None:
    raw = header(scope, b"cookie")
    if raw is None:
        return None
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip('"')
    return None


def _organization_for(grant: ViewerGrant) -> Organization | None:
    # Checked on every request: staff rights taken away end the viewer's access at once.
    user = get_user_model().objects.filter(pk=grant.user_id, is_active=True, is_staff=True).first()
    if user is None or not user.has_perm("studies.view_study"):
        return None
    return Organization.objects.select_related("plan").filter(pk=grant.organization_id).first()


class ViewerAccessMiddleware:
    """In front of the DICOMweb app: a request without a Bearer key but with a valid viewer cookie
    reads as the cookie's organization (``scope[ORGANIZATION]``); the app refuses its writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("api_key") is None and header(scope, b"authorization") is None:
            grant = viewer_grant_read(_cookie(scope))
            if grant is not None:
                organization = await database_sync_to_async(_organization_for)(grant)
                if organization is not None:
                    scope = dict(scope, **{ORGANIZATION: organization})
        await self.app(scope, receive, send)
